"""Image datasets as channels-last float32 arrays in [0, 1].

Every loader returns a `Dataset(x_train, y_train, x_test, y_test, classes, source)`: x
has shape (N, H, W, C) float32 in [0, 1] for any channel count C, y is int64 (N,) or None
when there are no labels, classes names the labels (or is None), source says where the
images came from. `describe(dataset)` is the one-line summary the CLI prints.

Sources, chosen with `load_dataset(spec)`:
- 'mnist-embedded' (default): 9001 + 999 MNIST digits shipped with the package
  (`assets/mnist_10k.npz`, see `assets/README.md`); works offline.
- 'mnist-5k': the older 4500 + 500 embedded digits (`assets/mnist_5k.npz`), a subset of those.
- 'mnist', 'fashion-mnist': the four standard IDX files (gzipped or plain), read from
  `$MINIVQ_DATA/<name>` (default `~/.cache/minivq/<name>`), checked by the SHA-256 of their
  content; fetched only when `download=True` (CLI `--download`). See `idx.py`.
- 'cifar10': the binary version of CIFAR-10 from `$MINIVQ_DATA/cifar10`, the same way.
  See `cifar.py`.
- 'italy-power': 1029 + 67 sequences of 24 hourly values (UCR ItalyPowerDemand, shipped in
  `assets/italy_power_demand.npz`), as (N, 1, 24, 1) "images" one row high; works offline.
- a .npy/.npz file; a folder of .png/.jpg images (no labels); a folder of class
  sub-folders, `root/<class>/*.png` (labels 0.. in sorted class-name order).

Sequences in array files: a 2-D array (N, L) is N sequences of length L; a 3-D array is
(N, H, W) grey images, unless the .npz says `kind='sequences'`, then it is (N, L, C).
Either way they come out as (N, 1, L, C) "images" one row high (the models then use
(1, k) kernels). Their values are any finite numbers, so they are min-max scaled to [0, 1]
over the whole file (train and test together, one (lo, hi) for all channels), and
`Dataset.value_range` = (lo, hi) records it: `unscale(x, dataset.value_range)` undoes it.
"""
import collections
import hashlib
import io
import os

import numpy as onp

from .cifar import CLASSES as CIFAR10_CLASSES
from .cifar import load_cifar10
from .files import read_arrays
from .idx import IDX_SOURCES, data_root, idx_files, load_idx, load_idx_checked  # noqa: F401 (re-exported)

# classes, source and value_range default to None so that loaders can build a Dataset from the
# four arrays. value_range (lo, hi): the values were min-max scaled from [lo, hi] (see unscale).
Dataset = collections.namedtuple("Dataset", ["x_train", "y_train", "x_test", "y_test", "classes", "source",
                                             "value_range"], defaults=(None, None, None))
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")

SPECS = ("mnist-embedded", "mnist-5k", "mnist", "fashion-mnist", "cifar10", "italy-power", "<file.npy|file.npz>",
         "<folder of images>", "<folder of class sub-folders of images>")


def to_images(x, source="array"):
    """Validate pixels and return them as (N, H, W, C) float32 in [0, 1].

    Accepts (N, H, W) or (N, H, W, C) for any C >= 1; uint8 in 0..255 (divided by 255)
    or float in [0, 1]. `source` names the input in error messages. uint8 pixels that are
    all 0 or 1 (binary masks) are refused rather than guessed at: divided by 255 they would
    be near-black, read as 0/1 they would mean another scale; pass them as float (x * 1.0)
    or as 0/255.
    """
    x = onp.asarray(x)
    shape, expected = x.shape, "(N, H, W) or (N, H, W, C) with N, H, W, C >= 1"
    if x.dtype == bool or not (onp.issubdtype(x.dtype, onp.integer) or onp.issubdtype(x.dtype, onp.floating)):
        raise ValueError(f"{source}: expected uint8 (0..255) or float (0..1) pixels, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]  # (N, H, W) -> (N, H, W, 1)
    if x.ndim != 4 or 0 in x.shape:
        raise ValueError(f"{source}: expected shape {expected}, got {shape}")
    if x.dtype == onp.uint8:
        if x.max() == 1:       # 0/1 masks, not 0..255 intensities (1/255 would be near-black)
            raise ValueError(f"{source}: uint8 pixels are read as 0..255, but these are all 0 or 1 "
                             f"(binary masks?): pass them as floats in [0, 1] (x.astype(np.float32)) "
                             f"or as 0/255 (x * 255)")
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


def to_sequences(arrays, source="array"):
    """Sequences (N, L) or (N, L, C) of any finite values -> ([(N, 1, L, C) float32 in [0, 1]], (lo, hi)).

    One min-max scaling over all the given arrays (a list, e.g. train and test), so they stay
    comparable: x -> (x - lo) / (hi - lo), lo and hi the smallest and largest value (a
    constant set maps to 0 with hi = lo + 1). `unscale` undoes it.
    """
    arrays = [onp.asarray(x) for x in arrays]
    for x in arrays:
        if x.ndim not in (2, 3) or 0 in x.shape or not (onp.issubdtype(x.dtype, onp.integer)
                                                         or onp.issubdtype(x.dtype, onp.floating)):
            raise ValueError(f"{source}: expected sequences (N, L) or (N, L, C) of numbers, got {x.dtype} {x.shape}")
        if not onp.all(onp.isfinite(x)):
            raise ValueError(f"{source}: sequence values must be finite, got NaN or inf")
    lo = min(float(x.min()) for x in arrays)
    hi = max(float(x.max()) for x in arrays)
    hi = hi if hi > lo else lo + 1.0
    scaled = [((x.astype(onp.float64) - lo) / (hi - lo)).astype(onp.float32) for x in arrays]
    # (N, L) -> (N, 1, L, 1); (N, L, C) -> (N, 1, L, C): a sequence is an image one row high
    return [x.reshape(len(x), 1, x.shape[1], -1) for x in scaled], (lo, hi)


def unscale(x, value_range):
    """Undo to_sequences' scaling: x in [0, 1] -> lo + x * (hi - lo); x itself when value_range is None."""
    if value_range is None:
        return x
    lo, hi = value_range
    return lo + onp.asarray(x, onp.float64) * (hi - lo)


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


ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
# sha256 of each shipped data file, as printed by tools/make_embedded_mnist*.py and listed
# in assets/README.md: a damaged or swapped file fails loudly instead of training on garbage.
ASSET_SHA256 = {
    "mnist_10k.npz": "bd79f7ed5966958b3730a54cc40277d9724a46be9ca87851bbb4432dc8111759",
    "mnist_5k.npz": "3c332f088f2df593616efda40c7700ffd35e38a44d7b7d49bb2b9927f8a02492",
    "italy_power_demand.npz": "ba1d446490a424d10e169a4f9b61e8995cf8bececbd872820a17924cb7021738",
}
EMBEDDED_TEST_FRACTION = 0.1   # per digit, the last 10% of the embedded images are held out


def read_asset(name, sha256=None):
    """The bytes of assets/name after checking their sha256 (default: `ASSET_SHA256[name]`)."""
    path = os.path.join(ASSETS, name)
    with open(path, "rb") as f:
        blob = f.read()
    expected, actual = sha256 or ASSET_SHA256[name], hashlib.sha256(blob).hexdigest()
    if actual != expected:
        raise ValueError(f"{path} is corrupt: its sha256 is {actual}, expected {expected}; "
                         "reinstall minivq or rebuild the file as minivq/assets/README.md says")
    return blob


def split_per_digit(y, test_fraction=EMBEDDED_TEST_FRACTION):
    """Stratified split in file order: (train_rows, test_rows), int index arrays into y.

    For each label, its first images go to train and its last round(n * test_fraction) to
    test (at least one each side); no shuffling, so the split never changes.
    """
    train_rows, test_rows = [], []
    for label in onp.unique(y):
        rows = onp.flatnonzero(y == label)   # this label's rows, in file order
        n_test = min(max(int(round(len(rows) * test_fraction)), 1), len(rows) - 1)
        train_rows.append(rows[:len(rows) - n_test])
        test_rows.append(rows[len(rows) - n_test:])
    return onp.concatenate(train_rows), onp.concatenate(test_rows)


def _asset_arrays(name, shapes, dtypes=None):
    """{key: array} from a checksummed asset, each checked against shapes[key] and its dtype
    (dtypes[key], default uint8)."""
    with onp.load(io.BytesIO(read_asset(name)), allow_pickle=False) as f:
        arrays = {key: f[key] for key in shapes}
    for key, shape in shapes.items():
        dtype = onp.dtype((dtypes or {}).get(key, onp.uint8))
        if arrays[key].shape != shape or arrays[key].dtype != dtype:
            raise ValueError(f"{name} is damaged: {key} should be {dtype} {shape}, "
                             f"got {arrays[key].dtype} {arrays[key].shape}")
    return arrays


def load_mnist_embedded(size=10000):
    """MNIST digits shipped with the package, split per digit (see `split_per_digit`).

    size=10000 (default, `assets/mnist_10k.npz`, MNIST train[:10000]): per digit the first
    90% train, the last 10% test: 9001 + 999 images.
    size=5000 (`assets/mnist_5k.npz`, the older figures'): per digit the first 450 train,
    the last 50 test: 4500 + 500. Its 5000 digits are each digit's first 500 of the 10k,
    so its test digits sit in the 10k's training split.
    """
    if size == 5000:
        arrays = _asset_arrays("mnist_5k.npz", {"x_train": (4500, 28, 28), "y_train": (4500,),
                                                 "x_test": (500, 28, 28), "y_test": (500,)})
        return Dataset(to_images(arrays["x_train"]), arrays["y_train"].astype(onp.int64),
                       to_images(arrays["x_test"]), arrays["y_test"].astype(onp.int64))
    if size != 10000:
        raise ValueError(f"the embedded MNIST comes in sizes 10000 and 5000, got {size}")
    arrays = _asset_arrays("mnist_10k.npz", {"x": (10000, 28, 28), "y": (10000,)})
    x, y = to_images(arrays["x"]), arrays["y"].astype(onp.int64)
    train, test = split_per_digit(y)
    return Dataset(x[train], y[train], x[test], y[test])


# The archive z-normalises every series; its 1096 series span [-2.39, 3.29]. This round,
# slightly wider range maps them into [0, 1], the range every minivq model expects.
ITALY_POWER_RANGE = (-2.5, 3.5)
ITALY_POWER_CLASSES = ("1", "2")   # the archive's labels: days of Oct-Mar vs Apr-Sep (see assets/README.md)


def load_italy_power(scaled=True):
    """UCR ItalyPowerDemand, shipped: one day's 24 hourly electricity demands per series.

    The archive's partition kept, roles swapped for generative training: train = its TEST
    file (1029 series), test = its TRAIN file (67), each in file order (the archive made the
    training part small on purpose, to make classification hard). Returns x (N, 1, 24, 1)
    float32, a sequence as an image one row high; scaled=True maps values v to
    (v - lo) / (hi - lo) with (lo, hi) = ITALY_POWER_RANGE, scaled=False keeps the
    archive's z-normalised values (Dataset.value_range is then None, else ITALY_POWER_RANGE:
    `unscale(x, dataset.value_range)` gives the archive's values back). Labels 0/1 are the
    archive's 1/2.
    """
    arrays = _asset_arrays("italy_power_demand.npz",
                           {"x_train": (67, 24), "y_train": (67,), "x_test": (1029, 24), "y_test": (1029,)},
                           {"x_train": onp.float32, "x_test": onp.float32})
    lo, hi = ITALY_POWER_RANGE

    def series(x):
        x = (x - onp.float32(lo)) / onp.float32(hi - lo) if scaled else x
        return x.reshape(len(x), 1, -1, 1).astype(onp.float32)   # (N, 24) -> (N, 1, 24, 1)

    return Dataset(series(arrays["x_test"]), arrays["y_test"].astype(onp.int64),
                   series(arrays["x_train"]), arrays["y_train"].astype(onp.int64), ITALY_POWER_CLASSES,
                   "italy-power (UCR ItalyPowerDemand, embedded; train = the archive's TEST part)",
                   ITALY_POWER_RANGE if scaled else None)


def load_idx_dataset(name, root=None, download=False):
    """MNIST or Fashion-MNIST from the four standard IDX files: 60000 train + 10000 test, 28x28x1.

    See `idx.idx_files` for where the files are looked up and `idx.load_idx_checked` for
    how they are checked.
    """
    x_train, y_train, x_test, y_test = load_idx_checked(name, root, download)
    classes = IDX_SOURCES[name].get("classes", tuple(str(digit) for digit in range(10)))
    return Dataset(to_images(x_train, f"{name} train images"), _labels(y_train, len(x_train), name),
                   to_images(x_test, f"{name} test images"), _labels(y_test, len(x_test), name),
                   classes, f"{name} ({data_root(name) if root is None else os.fspath(root)})")


def load_cifar10_dataset(root=None, download=False):
    """CIFAR-10 (binary version): 50000 train + 10000 test colour images, 32x32x3, 10 classes.

    See `cifar.py` for where the files are looked up and how they are checked.
    """
    x_train, y_train, x_test, y_test = load_cifar10(root, download)
    folder = data_root("cifar10") if root is None else os.fspath(root)
    return Dataset(to_images(x_train, "cifar10 train images"), y_train,
                   to_images(x_test, "cifar10 test images"), y_test, CIFAR10_CLASSES, f"cifar10 ({folder})")


def load_array_file(path, test_fraction=0.1, rng_seed=0):
    """Images from a .npy (x only) or .npz (keys x [+ y], or x_train [+ y_train, x_test, y_test]).

    Pixels as in `to_images`; sequences ((N, L), or (N, L, C) with kind='sequences' in the
    .npz) as in `to_sequences`, with Dataset.value_range set. Without an explicit test set, a
    random `test_fraction` of the rows (permutation seeded by `rng_seed`) becomes the test
    set. Pickles are refused.
    """
    path = os.fspath(path)
    if path.endswith(".npy"):
        x = read_arrays(path, "one uint8 (0..255) or float (0..1) image array saved by numpy.save")
        if isinstance(x, dict):
            raise ValueError(f"{path} is an .npz archive named .npy: rename it to .npz")
        if onp.ndim(x) == 2:
            [x], value_range = to_sequences([x], path)
            return _split(x, None, test_fraction, rng_seed)._replace(value_range=value_range)
        return _split(to_images(x, path), None, test_fraction, rng_seed)
    if not path.endswith(".npz"):
        raise ValueError(f"expected a .npy or .npz file, got {path}")
    arrays = read_arrays(path, "an .npz (numpy.savez) with image arrays x [+ y] or x_train [+ y_train, "
                               "x_test, y_test]")
    if not isinstance(arrays, dict):
        raise ValueError(f"{path} is a .npy array named .npz: rename it to .npy")
    prefix = "x_train" if "x_train" in arrays else "x" if "x" in arrays else None
    if prefix is None:
        raise ValueError(f"{path}: expected key 'x' or 'x_train', found {sorted(arrays)}")
    kind = str(arrays.pop("kind", "sequences" if onp.ndim(arrays[prefix]) == 2 else "images"))
    if kind not in ("images", "sequences"):
        raise ValueError(f"{path}: kind must be 'images' or 'sequences', got {kind!r}")
    x_keys = [prefix] + (["x_test"] if "x_test" in arrays else [])
    value_range = None
    if kind == "sequences":        # one scaling for train and test
        scaled, value_range = to_sequences([arrays[key] for key in x_keys], f"{path}[{prefix}]")
        arrays.update(zip(x_keys, scaled))
    else:
        arrays.update((key, to_images(arrays[key], f"{path}[{key}]")) for key in x_keys)
    y_key = "y_train" if prefix == "x_train" else "y"
    x = arrays[prefix]
    y = _labels(arrays.get(y_key), len(x), f"{path}[{y_key}]")
    if "x_test" not in arrays:
        return _split(x, y, test_fraction, rng_seed)._replace(value_range=value_range)
    x_test = arrays["x_test"]
    y_test = _labels(arrays.get("y_test"), len(x_test), f"{path}[y_test]")
    if x_test.shape[1:] != x.shape[1:]:
        raise ValueError(f"{path}: x_test images {x_test.shape[1:]} differ from x_train images {x.shape[1:]}")
    if (y is None) != (y_test is None):
        raise ValueError(f"{path}: give labels for both train and test ({y_key}, y_test) or for neither")
    return Dataset(x, y, x_test, y_test, value_range=value_range)


def _read_image(path):
    """One image file -> (H, W, C) float32 in [0, 1] with C in {1, 3}; alpha is dropped."""
    import matplotlib.image  # deferred: only the folder loader needs matplotlib (JPEG via Pillow)

    try:
        image = onp.asarray(matplotlib.image.imread(path))
    except Exception as error:  # Pillow raises several types for damaged files; all mean "unreadable"
        reason = " ".join(str(error).split())  # one line
        raise ValueError(f"{path}: cannot read this image ({type(error).__name__}: {reason})") from None
    if image.dtype == onp.uint8:  # JPEG (and 8-bit images read through Pillow)
        image = image.astype(onp.float32) / onp.float32(255)
    image = image.astype(onp.float32)
    image = image[..., None] if image.ndim == 2 else image[..., :3]  # (H, W[, 3|4]) -> (H, W, 1|3)
    if image.shape[-1] == 3 and onp.array_equal(image, image[..., :1].repeat(3, axis=-1)):
        image = image[..., :1]  # gray stored as RGB
    return image


def _image_names(folder):
    return sorted(n for n in os.listdir(folder)
                  if n.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, n)))


def load_image_folder(path, test_fraction=0.1, rng_seed=0):
    """Images from a folder, all of one size, split as in `load_array_file`.

    Two layouts: image files (.png, .jpg, .jpeg) directly in `path` (no labels), or one
    sub-folder per class, `path/<class>/<image>`, giving labels 0..K-1 in sorted
    class-name order (`Dataset.classes`). Files are read in sorted name order; alpha is
    dropped. C = 1 if every image is grayscale (or RGB with equal channels), otherwise
    C = 3 with grayscale images repeated over channels.
    """
    path = os.fspath(path)
    names = _image_names(path)
    classes = sorted(n for n in os.listdir(path) if not n.startswith(".")
                     and os.path.isdir(os.path.join(path, n)) and _image_names(os.path.join(path, n)))
    if names and classes:
        raise ValueError(f"{path}: has both image files and class sub-folders ({', '.join(classes)}); "
                         "put every image in a class sub-folder, or none")
    if not names and not classes:
        raise ValueError(f"{path}: no images: expected {'/'.join(IMAGE_EXTENSIONS)} files in it, "
                         "or in one sub-folder per class")
    if names:
        files, y = [os.path.join(path, n) for n in names], None
    else:
        pairs = [(os.path.join(path, name, n), label) for label, name in enumerate(classes)
                 for n in _image_names(os.path.join(path, name))]
        files, y = [file for file, _ in pairs], onp.array([label for _, label in pairs], onp.int64)
    images = []
    for file in files:
        image = _read_image(file)
        if images and image.shape[:2] != images[0].shape[:2]:
            (h, w), (h1, w1) = images[0].shape[:2], image.shape[:2]
            raise ValueError(f"{path}: all images must have one size: {files[0]} is {h}x{w} (HxW) but "
                             f"{file} is {h1}x{w1}. Resize them first, e.g. with ImageMagick "
                             f"`mogrify -resize {w}x{h}! <files>` or with Pillow "
                             f"`Image.open(f).resize(({w}, {h})).save(f)`")
        images.append(image)
    channels = max(image.shape[-1] for image in images)
    x = onp.stack([onp.broadcast_to(image, image.shape[:2] + (channels,)) for image in images])
    dataset = _split(to_images(x, path), y, test_fraction, rng_seed)
    return dataset._replace(classes=tuple(classes) if classes else None, source=path)


load_png_folder = load_image_folder  # the earlier name, kept working


def load_dataset(spec="mnist-embedded", download=False):
    """Dispatch on `spec`: one of `SPECS` (a name, a .npy/.npz path, or an image folder)."""
    spec = os.fspath(spec)
    if spec == "mnist-embedded":
        return load_mnist_embedded()._replace(source=spec)
    if spec == "mnist-5k":
        return load_mnist_embedded(5000)._replace(source=spec)
    if spec in IDX_SOURCES:
        return load_idx_dataset(spec, download=download)
    if spec == "cifar10":
        return load_cifar10_dataset(download=download)
    if spec == "italy-power":
        return load_italy_power()
    if os.path.isdir(spec):
        return load_image_folder(spec)
    if spec.endswith((".npy", ".npz")):
        if not os.path.isfile(spec):
            raise FileNotFoundError(f"no such array file: {spec}")
        return load_array_file(spec)._replace(source=spec)
    raise ValueError(f"unknown dataset {spec!r}; expected one of {', '.join(SPECS)}")


def describe(dataset):
    """One line on what was loaded: source, counts, train/test split, image shape, channels, labels.

    e.g. 'cifar10 (/data/cifar10): 50000 train + 10000 test images, 32x32, 3 channels (colour),
    labels: 10 classes (airplane, automobile, bird, ...)'
    """
    n, h, w, c = dataset.x_train.shape
    if h == 1:   # a sequence is an image one row high
        size, kind = f"sequences, length {w}", ("" if dataset.value_range is None else
                                                 ", min-max scaled from [{:g}, {:g}]".format(*dataset.value_range))
    else:
        size, kind = f"images, {h}x{w}", {1: " (grayscale)", 3: " (colour)"}.get(c, "")
    if dataset.y_train is None:
        labels = "no labels"
    elif dataset.classes is None:
        labels = f"labels 0..{int(max(dataset.y_train.max(), dataset.y_test.max()))}"
    else:
        shown = ", ".join(dataset.classes[:3]) + (", ..." if len(dataset.classes) > 3 else "")
        labels = f"labels: {len(dataset.classes)} classes ({shown})"
    return (f"{dataset.source or 'arrays'}: {n} train + {len(dataset.x_test)} test {size}, "
            f"{c} channel{'s' if c > 1 else ''}{kind}, {labels}")
