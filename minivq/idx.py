"""The IDX file format of MNIST and Fashion-MNIST, and their checksummed, opt-in download.

Nothing here touches the network unless `download=True` is passed: files are read from
`$MINIVQ_DATA/<name>` (default `~/.cache/minivq/<name>`), and every file is checked
against the official MD5 table before it is parsed.
"""
import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request

import numpy as onp

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


def idx_files(name, root=None, download=False):
    """Paths of the four IDX files of `name` ('mnist' or 'fashion-mnist'), MD5-checked.

    Files are looked up in `root` (default `data_root(name)`); missing files are fetched
    only if `download` is true. Every file's MD5 is checked against the official table
    at each call (about 0.1 s), so a corrupt or partial file is reported, never parsed.
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
    return [os.path.join(folder, f) for f in IDX_FILES]
