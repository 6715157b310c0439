"""The IDX file format of MNIST and Fashion-MNIST, and their checksummed, opt-in download.

Nothing here touches the network unless `download=True` is passed: files are read from
`$MINIVQ_DATA/<name>` (default `~/.cache/minivq/<name>`), gzipped (`<file>.gz`, as
published or re-zipped) or plain (`<file>`, as `gunzip` leaves it). Every file is checked
by the SHA-256 of its decompressed content before it is parsed, so any faithful copy is
accepted and a damaged one is reported; a download is also checked against the official
MD5 of the published .gz.
"""
import gzip
import hashlib
import os
import urllib.error
import urllib.request

import numpy as onp

from .files import atomic_open

# IDX type codes (byte 3 of the magic number); all multi-byte values are big-endian.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
IDX_FILES = tuple(name + ".gz" for name in IDX_NAMES)  # the published (downloaded) files

# Mirrors and the official MD5 of each published .gz, as listed in torchvision/datasets/mnist.py.
# sha256: of the DECOMPRESSED files, which do not depend on how a copy was zipped. Found in
# several independent public sources (MNIST: e.g. checksum tables pinning the gunzipped
# official files, 47040016 / 60008 / 7840016 / 10008 bytes; Fashion-MNIST: the same, and
# recomputed here from Debian's dataset-fashion-mnist 0.0~git20200523, whose re-zipped .gz
# files have other MD5s but decompress to exactly these bytes).
IDX_SOURCES = {
    "mnist": {
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/"],
        "md5": {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
                "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
        "sha256": {
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
    },
    "fashion-mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "md5": {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
        "sha256": {
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
        "classes": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    },
}


def read_idx_bytes(path):
    """The bytes of an IDX file, gunzipped if the file is gzipped (told by its magic, not its name)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":  # gzip magic number
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError) as error:
            raise ValueError(f"{path} is corrupt: bad or truncated gzip stream ({error})") from None
    return raw


def parse_idx(raw, source="IDX data"):
    """Parse the bytes of an IDX file into an array of its stored dtype and shape.

    Layout: magic = 0x00 0x00 <type code> <ndim>, then ndim big-endian uint32 sizes, then
    the values in C order, big-endian.
    """
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in IDX_DTYPES:
        raise ValueError(f"{source}: not an IDX file: expected magic 00 00 <type in "
                         f"{sorted(hex(c) for c in IDX_DTYPES)}> <ndim>, got {raw[:4].hex(' ')}")
    dtype, ndim = onp.dtype(IDX_DTYPES[raw[2]]), raw[3]
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise ValueError(f"{source}: truncated header: {ndim} dims need {offset} bytes, got {len(raw)}")
    shape = tuple(int(s) for s in onp.frombuffer(raw, ">u4", count=ndim, offset=4))
    n_bytes = int(onp.prod(shape, dtype=onp.int64)) * dtype.itemsize
    if len(raw) - offset != n_bytes:
        raise ValueError(f"{source}: shape {shape} of {dtype.name} needs {n_bytes} data bytes, "
                         f"got {len(raw) - offset} (truncated or corrupt file)")
    values = onp.frombuffer(raw, dtype, offset=offset).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # copy in native byte order


def load_idx(path):
    """Parse an IDX file (plain or gzipped) into an array of its stored dtype and shape."""
    return parse_idx(read_idx_bytes(path), path)


def data_root(name):
    """Folder for the IDX files of `name`: `$MINIVQ_DATA/<name>`, default `~/.cache/minivq/<name>`."""
    base = os.environ.get("MINIVQ_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "minivq")
    return os.path.join(base, name)


def _download(filename, folder, mirrors, md5):
    """Fetch `filename` into `folder` atomically; a file whose MD5 is wrong is discarded."""
    os.makedirs(folder, exist_ok=True)
    failures = []
    for mirror in mirrors:
        url = mirror + filename
        try:
            with atomic_open(os.path.join(folder, filename)) as out, \
                    urllib.request.urlopen(url, timeout=60) as response:
                digest = hashlib.md5()  # the official checksums are MD5: integrity, not security
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    digest.update(block)
                if digest.hexdigest() != md5:   # raising here discards the temp file
                    raise ValueError(f"checksum mismatch for {url}: expected md5 {md5}, got "
                                     f"{digest.hexdigest()}; the download was discarded")
            return
        except OSError as error:  # URLError, timeouts and connection resets are all OSErrors
            failures.append(f"{url}: {error}")
    raise ConnectionError(f"could not download {filename}: you appear to be offline or the mirror is down "
                          f"({'; '.join(failures)}). Fetch it by hand from {' or '.join(mirrors)} "
                          f"and put it in {folder}")


def idx_files(name, root=None, download=False):
    """Paths of the four IDX files of `name` ('mnist' or 'fashion-mnist'), in `IDX_NAMES` order.

    Each file is looked up in `root` (default `data_root(name)`) as `<file>.gz`, then as
    plain `<file>`; missing files are fetched (as .gz) only if `download` is true. The
    content is checked when read, by `load_idx_checked`.
    """
    if name not in IDX_SOURCES:
        raise ValueError(f"unknown IDX dataset {name!r}; expected one of {sorted(IDX_SOURCES)}")
    source = IDX_SOURCES[name]
    folder = data_root(name) if root is None else os.fspath(root)

    def found(base):
        return next((os.path.join(folder, f) for f in (base + ".gz", base)
                     if os.path.isfile(os.path.join(folder, f))), None)

    missing = [base for base in IDX_NAMES if found(base) is None]
    if missing and not download:
        raise FileNotFoundError(
            f"{name}: missing {', '.join(b + '.gz' for b in missing)} in {folder}. Put the files there "
            f"(gzipped or plain, from {source['mirrors'][0]}), set MINIVQ_DATA to another folder, "
            "or pass download=True (CLI: --download) to fetch them.")
    for base in missing:
        _download(base + ".gz", folder, source["mirrors"], source["md5"][base + ".gz"])
    return [found(base) for base in IDX_NAMES]


def load_idx_checked(name, root=None, download=False):
    """The four arrays of `name` (train images, train labels, test images, test labels).

    Each file's decompressed content must have the SHA-256 in `IDX_SOURCES[name]['sha256']`:
    a re-zipped or gunzipped copy of the official file passes, a damaged one is reported
    before it is parsed (hashing and parsing take about 0.5 s for MNIST).
    """
    arrays = []
    for base, path in zip(IDX_NAMES, idx_files(name, root, download)):
        raw = read_idx_bytes(path)
        expected, got = IDX_SOURCES[name]["sha256"][base], hashlib.sha256(raw).hexdigest()
        if got != expected:
            raise ValueError(f"{path} is corrupt or not the official {name} file {base}: the "
                             f"SHA-256 of its decompressed content is {got}, expected {expected}. "
                             "Delete it and load again with download=True (CLI: --download).")
        arrays.append(parse_idx(raw, path))
    return arrays
