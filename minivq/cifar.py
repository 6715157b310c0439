"""CIFAR-10 from its binary version (`cifar-10-binary.tar.gz`), checked, cached, opt-in download.

The binary version is read, never the pickled python version: unpickling a downloaded
file can run arbitrary code. Files live in `$MINIVQ_DATA/cifar10` (default
`~/.cache/minivq/cifar10`), as the archive itself or extracted (the folder
`cifar-10-batches-bin/`, or its six .bin files directly). Members are read from the
archive without extracting it.

Format (https://www.cs.toronto.edu/~kriz/cifar.html): each of data_batch_1..5.bin and
test_batch.bin holds 10000 records of 3073 bytes: one label byte (0..9), then a 32x32
image as 1024 red, 1024 green, 1024 blue bytes, each channel row by row (CHW order).
"""
import hashlib
import os
import tarfile

import numpy as onp

from .idx import _download, data_root

ARCHIVE = "cifar-10-binary.tar.gz"
MIRRORS = ["https://www.cs.toronto.edu/~kriz/"]
# MD5 of the archive as published on the CIFAR page above (checked against several public copies).
ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
MEMBER_DIR = "cifar-10-batches-bin"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILES = ("test_batch.bin",)
RECORDS_PER_FILE = 10000
SIDE, CHANNELS = 32, 3
RECORD_BYTES = 1 + CHANNELS * SIDE * SIDE  # label byte + CHW pixels = 3073
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def parse_records(raw, source="CIFAR-10 batch"):
    """Bytes of one .bin file -> (images (N, 32, 32, 3) uint8, labels (N,) int64).

    The file is checked by its structure: exactly RECORDS_PER_FILE records of 3073 bytes
    and labels in 0..9. (The extracted files have no published checksums; the archive does.)
    """
    expected = RECORDS_PER_FILE * RECORD_BYTES
    if len(raw) != expected:
        raise ValueError(f"{source} is corrupt: expected {RECORDS_PER_FILE} records of {RECORD_BYTES} "
                         f"bytes ({expected} bytes), got {len(raw)} bytes")
    records = onp.frombuffer(raw, onp.uint8).reshape(RECORDS_PER_FILE, RECORD_BYTES)
    labels = records[:, 0].astype(onp.int64)
    if labels.max() >= len(CLASSES):
        raise ValueError(f"{source} is corrupt: label {labels.max()} outside 0..{len(CLASSES) - 1}")
    chw = records[:, 1:].reshape(RECORDS_PER_FILE, CHANNELS, SIDE, SIDE)  # (N, C, H, W)
    return chw.transpose(0, 2, 3, 1).copy(), labels                       # (N, H, W, C)


def _archive_md5(path):
    digest = hashlib.md5()  # the published checksum is MD5: integrity, not security
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_members(folder, download):
    """{file name: bytes} of the six .bin files, from an extracted copy or the archive."""
    names = TRAIN_FILES + TEST_FILES
    for where in (os.path.join(folder, MEMBER_DIR), folder):
        if all(os.path.isfile(os.path.join(where, n)) for n in names):
            contents = {}
            for n in names:
                with open(os.path.join(where, n), "rb") as f:
                    contents[os.path.join(where, n)] = f.read()
            return contents
    archive = os.path.join(folder, ARCHIVE)
    if not os.path.isfile(archive):
        if not download:
            raise FileNotFoundError(
                f"cifar10: missing {ARCHIVE} in {folder}. Put the file there (the binary version "
                f"from {MIRRORS[0]}{ARCHIVE}, or its extracted {MEMBER_DIR}/ folder), set "
                "MINIVQ_DATA to another folder, or pass download=True (CLI: --download) to fetch it.")
        _download(ARCHIVE, folder, MIRRORS, ARCHIVE_MD5)
    got = _archive_md5(archive)
    if got != ARCHIVE_MD5:
        raise ValueError(f"{archive} is corrupt: expected md5 {ARCHIVE_MD5}, got {got}. "
                         "Delete it and load again with download=True (CLI: --download).")
    contents = {}
    with tarfile.open(archive, "r:gz") as tar:
        for n in names:
            member = tar.extractfile(f"{MEMBER_DIR}/{n}")  # read in memory: nothing is extracted
            contents[f"{archive}:{MEMBER_DIR}/{n}"] = member.read()
    return contents


def load_cifar10(root=None, download=False):
    """CIFAR-10: 50000 train + 10000 test images (N, 32, 32, 3) uint8 and labels (N,) int64.

    Returns (x_train, y_train, x_test, y_test); class names are `CLASSES`. Files are
    looked up in `root` (default `data_root('cifar10')`), fetched only if `download`.
    """
    folder = data_root("cifar10") if root is None else os.fspath(root)
    parts = [parse_records(raw, source) for source, raw in _read_members(folder, download).items()]
    n_train = len(TRAIN_FILES)
    x_train = onp.concatenate([x for x, _ in parts[:n_train]])  # (50000, 32, 32, 3)
    y_train = onp.concatenate([y for _, y in parts[:n_train]])
    return x_train, y_train, parts[n_train][0], parts[n_train][1]
