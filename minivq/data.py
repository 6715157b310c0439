"""Image datasets as channels-last float32 arrays in [0, 1], and minibatch iterators.

Every loader returns a `Dataset(x_train, y_train, x_test, y_test)`: x has shape
(N, H, W, C) float32 in [0, 1], y is int64 (N,) or None when there are no labels.

Sources, chosen with `load_dataset(spec)`:
- 'mnist-embedded' (default): 4500 + 500 MNIST digits shipped with the package
  (`assets/mnist_5k.npz`, see `assets/README.md`); works offline.
- 'mnist', 'fashion-mnist': the four standard IDX files, read from
  `$MINIVQ_DATA/<name>` (default `~/.cache/minivq/<name>`), MD5-checked; fetched only when
  `download=True` (CLI `--download`).
- a .npy/.npz file, or a folder of .png images.
"""
import collections
import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request

import numpy as onp

Dataset = collections.namedtuple("Dataset", ["x_train", "y_train", "x_test", "y_test"])

# IDX type codes (byte 3 of the magic number); all multi-byte values are big-endian.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

# Mirrors and official MD5 checksums, as listed in torchvision/datasets/mnist.py.
IDX_SOURCES = {
    "mnist": {
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/"],
        "md5": {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
                "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
    },
    "fashion-mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "md5": {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
    },
}

SPECS = ("mnist-embedded", "mnist", "fashion-mnist", "<file.npy|file.npz>", "<folder of .png>")


def to_images(x, source="array"):
    """Validate pixels and return them as (N, H, W, C) float32 in [0, 1].

    Accepts (N, H, W) or (N, H, W, C) with C in {1, 3}; uint8 in 0..255 (divided by 255)
    or float in [0, 1]. `source` names the input in error messages.
    """
    x = onp.asarray(x)
    shape, expected = x.shape, "(N, H, W) or (N, H, W, C) with C in {1, 3}"
    if x.dtype == bool or not (onp.issubdtype(x.dtype, onp.integer) or onp.issubdtype(x.dtype, onp.floating)):
        raise ValueError(f"{source}: expected uint8 (0..255) or float (0..1) pixels, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]  # (N, H, W) -> (N, H, W, 1)
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or 0 in x.shape:
        raise ValueError(f"{source}: expected shape {expected}, got {shape}")
    if x.dtype == onp.uint8:
        return x.astype(onp.float32) / onp.float32(255)
    if onp.issubdtype(x.dtype, onp.integer):
        raise ValueError(f"{source}: integer pixels must be uint8 (0..255), got {x.dtype}; "
                         "convert with x.astype(np.uint8) or pass floats in [0, 1]")
    if not onp.all(onp.isfinite(x)):
        raise ValueError(f"{source}: pixels must be finite, got NaN or inf")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(f"{source}: float pixels must lie in [0, 1], got range "
                         f"[{x.min():g}, {x.max():g}] (divide 0..255 data by 255)")
    return x.astype(onp.float32)


def _labels(y, n, source):
    """Integer labels (n,) -> int64, or None."""
    if y is None:
        return None
    y = onp.asarray(y)
    if not onp.issubdtype(y.dtype, onp.integer) or y.shape != (n,):
        raise ValueError(f"{source}: expected integer labels of shape ({n},), got {y.dtype} {y.shape}")
    return y.astype(onp.int64)


def _split(x, y, test_fraction, rng_seed):
    """Random train/test split of x (and y): round(N * test_fraction) test rows, at least one of each."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    n = len(x)
    if n < 2:
        raise ValueError(f"need at least 2 images to split into train and test, got {n}")
    n_test = min(max(int(round(n * test_fraction)), 1), n - 1)
    order = onp.random.default_rng(rng_seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    return Dataset(x[train], None if y is None else y[train], x[test], None if y is None else y[test])


def load_mnist_embedded():
    """The 5000-digit MNIST subset shipped with the package: 4500 train + 500 test (50 per digit)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "mnist_5k.npz")
    with onp.load(path, allow_pickle=False) as f:
        arrays = {key: f[key] for key in Dataset._fields}
    expected = {"x_train": (4500, 28, 28), "y_train": (4500,), "x_test": (500, 28, 28), "y_test": (500,)}
    for key, shape in expected.items():
        if arrays[key].shape != shape or arrays[key].dtype != onp.uint8:
            raise ValueError(f"{path} is damaged: {key} should be uint8 {shape}, "
                             f"got {arrays[key].dtype} {arrays[key].shape}")
    return Dataset(to_images(arrays["x_train"]), arrays["y_train"].astype(onp.int64),
                   to_images(arrays["x_test"]), arrays["y_test"].astype(onp.int64))


def load_idx(path):
    """Parse an IDX file (raw or gzipped) into an array of its stored dtype and shape.

    Layout: magic = 0x00 0x00 <type code> <ndim>, then ndim big-endian uint32 sizes, then
    the values in C order, big-endian.
    """
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":  # gzip magic number
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError) as error:
            raise ValueError(f"{path}: corrupt or truncated gzip stream ({error})") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file: expected magic 00 00 <type in "
                         f"{sorted(hex(c) for c in IDX_DTYPES)}> <ndim>, got {raw[:4].hex(' ')}")
    dtype, ndim = onp.dtype(IDX_DTYPES[raw[2]]), raw[3]
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise ValueError(f"{path}: truncated header: {ndim} dims need {offset} bytes, got {len(raw)}")
    shape = tuple(int(s) for s in onp.frombuffer(raw, ">u4", count=ndim, offset=4))
    n_bytes = int(onp.prod(shape, dtype=onp.int64)) * dtype.itemsize
    if len(raw) - offset != n_bytes:
        raise ValueError(f"{path}: shape {shape} of {dtype.name} needs {n_bytes} data bytes, "
                         f"got {len(raw) - offset} (truncated or corrupt file)")
    values = onp.frombuffer(raw, dtype, offset=offset).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # copy in native byte order


def data_root(name):
    """Folder for the IDX files of `name`: `$MINIVQ_DATA/<name>`, default `~/.cache/minivq/<name>`."""
    base = os.environ.get("MINIVQ_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "minivq")
    return os.path.join(base, name)


def _md5(path):
    digest = hashlib.md5()  # the official checksums are MD5: integrity, not security
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(filename, folder, mirrors, md5):
    """Fetch `filename` into `folder` via a temp file, check its MD5, then rename into place."""
    os.makedirs(folder, exist_ok=True)
    failures = []
    for mirror in mirrors:
        url = mirror + filename
        fd, tmp = tempfile.mkstemp(prefix=filename + ".", suffix=".part", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
            got = _md5(tmp)
            if got != md5:
                raise ValueError(f"checksum mismatch for {url}: expected md5 {md5}, got {got}; "
                                 "the download was discarded")
            os.replace(tmp, os.path.join(folder, filename))
            return
        except OSError as error:  # URLError, timeouts and connection resets are all OSErrors
            failures.append(f"{url}: {error}")
        finally:
            if os.path.exists(tmp):  # a failed or rejected download leaves nothing behind
                os.remove(tmp)
    raise ConnectionError(f"could not download {filename}: you appear to be offline or the mirror is down.\n  "
                          + "\n  ".join(failures) + f"\nFetch it by hand from {' or '.join(mirrors)} "
                          f"and put it in {folder}")


def load_idx_dataset(name, root=None, download=False):
    """MNIST or Fashion-MNIST from the four standard IDX files: 60000 train + 10000 test, 28x28x1.

    Files are looked up in `root` (default `data_root(name)`); missing files are fetched
    only if `download` is true. Every file's MD5 is checked against the official table
    at each load (about 0.1 s), so a corrupt or partial file is reported, never parsed.
    """
    if name not in IDX_SOURCES:
        raise ValueError(f"unknown IDX dataset {name!r}; expected one of {sorted(IDX_SOURCES)}")
    source = IDX_SOURCES[name]
    folder = data_root(name) if root is None else os.fspath(root)
    missing = [f for f in IDX_FILES if not os.path.isfile(os.path.join(folder, f))]
    if missing and not download:
        raise FileNotFoundError(
            f"{name}: missing {', '.join(missing)} in {folder}. Put the files there "
            f"(from {source['mirrors'][0]}), set MINIVQ_DATA to another folder, or pass "
            "download=True (CLI: --download) to fetch them.")
    for filename in missing:
        _download(filename, folder, source["mirrors"], source["md5"][filename])
    for filename in IDX_FILES:
        path, expected = os.path.join(folder, filename), source["md5"][filename]
        got = _md5(path)
        if got != expected:
            raise ValueError(f"{path} is corrupt: expected md5 {expected}, got {got}. "
                             "Delete it and load again with download=True (CLI: --download).")
    x_train, y_train, x_test, y_test = (load_idx(os.path.join(folder, f)) for f in IDX_FILES)
    return Dataset(to_images(x_train, f"{name} train images"), _labels(y_train, len(x_train), name),
                   to_images(x_test, f"{name} test images"), _labels(y_test, len(x_test), name))


def load_array_file(path, test_fraction=0.1, rng_seed=0):
    """Images from a .npy (x only) or .npz (keys x [+ y], or x_train [+ y_train, x_test, y_test]).

    Pixels as in `to_images`. Without an explicit test set, a random `test_fraction` of the
    images (permutation seeded by `rng_seed`) becomes the test set. Pickles are refused.
    """
    path = os.fspath(path)
    if path.endswith(".npy"):
        return _split(to_images(onp.load(path, allow_pickle=False), path), None, test_fraction, rng_seed)
    if not path.endswith(".npz"):
        raise ValueError(f"expected a .npy or .npz file, got {path}")
    with onp.load(path, allow_pickle=False) as f:
        arrays = {key: f[key] for key in f.files}
    prefix = "x_train" if "x_train" in arrays else "x" if "x" in arrays else None
    if prefix is None:
        raise ValueError(f"{path}: expected key 'x' or 'x_train', found {sorted(arrays)}")
    y_key = "y_train" if prefix == "x_train" else "y"
    x = to_images(arrays[prefix], f"{path}[{prefix}]")
    y = _labels(arrays.get(y_key), len(x), f"{path}[{y_key}]")
    if "x_test" not in arrays:
        return _split(x, y, test_fraction, rng_seed)
    x_test = to_images(arrays["x_test"], f"{path}[x_test]")
    y_test = _labels(arrays.get("y_test"), len(x_test), f"{path}[y_test]")
    if x_test.shape[1:] != x.shape[1:]:
        raise ValueError(f"{path}: x_test images {x_test.shape[1:]} differ from x_train images {x.shape[1:]}")
    if (y is None) != (y_test is None):
        raise ValueError(f"{path}: give labels for both train and test ({y_key}, y_test) or for neither")
    return Dataset(x, y, x_test, y_test)


def load_png_folder(path, test_fraction=0.1, rng_seed=0):
    """Every *.png in a folder (sorted by name), all of one size, split as in `load_array_file`.

    Alpha is dropped. C = 1 if every image is grayscale (or RGB with equal channels),
    otherwise C = 3 with grayscale images repeated over channels. No labels (y is None).
    """
    import matplotlib.image  # deferred: only this loader needs matplotlib

    names = sorted(n for n in os.listdir(path) if n.lower().endswith(".png"))
    if not names:
        raise ValueError(f"no .png files in {path}")
    images = []
    for name in names:
        image = onp.asarray(matplotlib.image.imread(os.path.join(path, name)), dtype=onp.float32)
        image = image[..., None] if image.ndim == 2 else image[..., :3]  # (H, W[, 3|4]) -> (H, W, 1|3)
        if image.shape[-1] == 3 and onp.array_equal(image, image[..., :1].repeat(3, axis=-1)):
            image = image[..., :1]  # gray stored as RGB
        if images and image.shape[:2] != images[0].shape[:2]:
            raise ValueError(f"{path}: all images must share one size; {names[0]} is "
                             f"{images[0].shape[:2]} but {name} is {image.shape[:2]}")
        images.append(image)
    channels = max(image.shape[-1] for image in images)
    x = onp.stack([onp.broadcast_to(image, image.shape[:2] + (channels,)) for image in images])
    return _split(to_images(x, path), None, test_fraction, rng_seed)


def load_dataset(spec="mnist-embedded", download=False):
    """Dispatch on `spec`: one of `SPECS` (a name, a .npy/.npz path, or a PNG folder)."""
    spec = os.fspath(spec)
    if spec == "mnist-embedded":
        return load_mnist_embedded()
    if spec in IDX_SOURCES:
        return load_idx_dataset(spec, download=download)
    if os.path.isdir(spec):
        return load_png_folder(spec)
    if spec.endswith((".npy", ".npz")):
        if not os.path.isfile(spec):
            raise FileNotFoundError(f"no such array file: {spec}")
        return load_array_file(spec)
    raise ValueError(f"unknown dataset {spec!r}; expected one of {', '.join(SPECS)}")


def batches(x, batch_size, rng):
    """Endless random minibatches x[idx] of shape (batch_size, ...), epoch by epoch.

    Each epoch draws a fresh permutation from the numpy Generator `rng` and yields
    N // batch_size full batches; the N % batch_size leftover examples of that epoch are
    skipped (different ones each epoch), so every batch has the same shape.
    """
    n = len(x)
    if not 0 < batch_size <= n:
        raise ValueError(f"batch_size must lie in 1..{n} (the number of examples), got {batch_size}")
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            yield x[order[start:start + batch_size]]


def iterate_minibatches(x, batch_size):
    """x in order, in chunks of batch_size; the last chunk may be smaller (for evaluation)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size]
