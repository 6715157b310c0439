"""Tests for minivq/idx.py: the same content is accepted gzipped, re-zipped or plain.

The oracle is the tiny arrays themselves and the SHA-256 of their IDX bytes computed here.
"""
import gzip
import hashlib
import os
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest

from minivq import idx

SHAPES = {"train-images-idx3-ubyte": (5, 3, 4), "train-labels-idx1-ubyte": (5,),
          "t10k-images-idx3-ubyte": (2, 3, 4), "t10k-labels-idx1-ubyte": (2,)}


def idx_bytes(array):
    """Hand-built IDX: 00 00 08 <ndim>, big-endian uint32 sizes, then the uint8 values."""
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


@pytest.fixture
def official(monkeypatch):
    """Tiny arrays made 'official' for 'mnist': their decompressed SHA-256 goes in the table."""
    rng = np.random.default_rng(3)
    arrays = {base: rng.integers(0, 256 if "images" in base else 10, shape).astype(np.uint8)
              for base, shape in SHAPES.items()}
    table = {base: hashlib.sha256(idx_bytes(a)).hexdigest() for base, a in arrays.items()}
    monkeypatch.setitem(idx.IDX_SOURCES, "mnist", {"mirrors": ["http://mirror.invalid/"],
                                                   "md5": dict.fromkeys(idx.IDX_FILES, "0" * 32),
                                                   "sha256": table})
    return arrays


@pytest.mark.parametrize("how", ["plain", "gzip-1", "gzip-9", "mixed"])
def test_plain_and_rezipped_copies_are_accepted(tmp_path, official, how):
    for i, (base, array) in enumerate(official.items()):
        raw = idx_bytes(array)
        plain = how == "plain" or (how == "mixed" and i % 2 == 0)
        level = 1 if how == "gzip-1" else 9  # another compressor setting: other bytes, same content
        (tmp_path / (base if plain else base + ".gz")).write_bytes(raw if plain else gzip.compress(raw, level))
    for got, base in zip(idx.load_idx_checked("mnist", tmp_path), idx.IDX_NAMES):
        np.testing.assert_array_equal(got, official[base])


def test_changed_content_is_refused_by_its_checksum(tmp_path, official):
    for base, array in official.items():
        (tmp_path / base).write_bytes(idx_bytes(array))
    changed = official["t10k-labels-idx1-ubyte"].copy()
    changed[0] = (changed[0] + 1) % 10  # still a valid IDX file, but not the official one
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(changed))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte is corrupt or not the official mnist file"):
        idx.load_idx_checked("mnist", tmp_path)


def test_gz_is_preferred_and_missing_lists_gz_names(tmp_path, official):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(official["train-images-idx3-ubyte"]))
    with pytest.raises(FileNotFoundError) as info:
        idx.idx_files("mnist", tmp_path)
    message = str(info.value)
    assert "train-images" not in message and "t10k-labels-idx1-ubyte.gz" in message
    assert "gzipped or plain" in message and "\n" not in message


def test_offline_download_is_one_line(tmp_path, official, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError) as info:
        idx.load_idx_checked("mnist", tmp_path / "cache", download=True)
    message = str(info.value)
    assert "\n" not in message and "offline" in message and str(tmp_path / "cache") in message
    assert info.value.__cause__ is None and os.listdir(tmp_path / "cache") == []


def test_real_tables_are_well_formed():
    for name, source in idx.IDX_SOURCES.items():
        assert sorted(source["sha256"]) == sorted(idx.IDX_NAMES)
        assert all(len(v) == 64 and int(v, 16) >= 0 for v in source["sha256"].values())
        assert sorted(source["md5"]) == sorted(idx.IDX_FILES)


DEBIAN_FASHION = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist (re-zipped .gz)


@pytest.mark.skipif(not os.path.isdir(DEBIAN_FASHION), reason="Debian package dataset-fashion-mnist not installed")
def test_debian_rezipped_fashion_mnist_passes_the_real_table():
    x_train, y_train, x_test, y_test = idx.load_idx_checked("fashion-mnist", DEBIAN_FASHION)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10 and np.bincount(y_test).tolist() == [1000] * 10
