"""Tests for minivq/cifar.py on tiny fabricated files in the official binary format.

Each record is one label byte then 3072 pixel bytes: 1024 red, 1024 green, 1024 blue, each
channel row by row. The oracle pixel values below are written by hand per (h, w, c).
"""
import io
import os
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest

from minivq import cifar, data

N = 2  # records per fabricated file (the official files hold 10000)


def record(label, seed):
    """One record and its HWC image: pixel (h, w, c) = (seed + 7h + 3w + 100c) mod 256."""
    h, w, c = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), indexing="ij")
    hwc = ((seed + 7 * h + 3 * w + 100 * c) % 256).astype(np.uint8)  # (32, 32, 3)
    chw_bytes = b"".join(hwc[:, :, channel].tobytes() for channel in range(3))  # R plane, G, B
    return bytes([label]) + chw_bytes, hwc


def fake_batches():
    """{file name: (bytes, images (N, 32, 32, 3), labels (N,))} for the six .bin files."""
    out = {}
    for i, name in enumerate(cifar.TRAIN_FILES + cifar.TEST_FILES):
        pairs = [record(label=(i + k) % 10, seed=10 * i + k) for k in range(N)]
        out[name] = (b"".join(r for r, _ in pairs), np.stack([x for _, x in pairs]),
                     np.array([(i + k) % 10 for k in range(N)]))
    return out


def write_folder(folder, batches):
    os.makedirs(folder, exist_ok=True)
    for name, (raw, _, _) in batches.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(raw)


def write_archive(path, batches):
    with tarfile.open(path, "w:gz") as tar:
        for name, (raw, _, _) in batches.items():
            info = tarfile.TarInfo(f"{cifar.MEMBER_DIR}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(cifar, "RECORDS_PER_FILE", N)
    return fake_batches()


def check_loaded(loaded, batches):
    x_train, y_train, x_test, y_test = loaded
    want_x = np.concatenate([batches[n][1] for n in cifar.TRAIN_FILES])
    want_y = np.concatenate([batches[n][2] for n in cifar.TRAIN_FILES])
    assert x_train.shape == (5 * N, 32, 32, 3) and x_train.dtype == np.uint8
    np.testing.assert_array_equal(x_train, want_x)
    np.testing.assert_array_equal(y_train, want_y)
    np.testing.assert_array_equal(x_test, batches["test_batch.bin"][1])
    np.testing.assert_array_equal(y_test, batches["test_batch.bin"][2])


def test_parse_records_chw_to_hwc_by_hand(tiny):
    raw, _ = record(label=4, seed=0)
    x, y = cifar.parse_records(raw * N)
    assert y.tolist() == [4] * N and x.shape == (N, 32, 32, 3)
    # pixel (h=1, w=2): red = 7 + 6 = 13, green = 113, blue = 213; (h=0, w=0, c=2) = 200
    assert x[0, 1, 2].tolist() == [13, 113, 213] and x[1, 0, 0, 2] == 200
    # byte 1 + 1024 + 32*1 + 2 of the record is green at (1, 2)
    assert raw[1 + 1024 + 32 + 2] == 113


def test_extracted_folder_and_flat_folder(tmp_path, tiny):
    write_folder(tmp_path / "a" / cifar.MEMBER_DIR, tiny)
    check_loaded(cifar.load_cifar10(tmp_path / "a"), tiny)
    write_folder(tmp_path / "b", tiny)  # the .bin files directly in the folder
    check_loaded(cifar.load_cifar10(tmp_path / "b"), tiny)


def test_archive_is_checksummed_and_read(tmp_path, tiny, monkeypatch):
    archive = write_archive(tmp_path / cifar.ARCHIVE, tiny)
    with pytest.raises(ValueError, match=f"{cifar.ARCHIVE} is corrupt: expected md5 {cifar.ARCHIVE_MD5}"):
        cifar.load_cifar10(tmp_path)
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", cifar._archive_md5(archive))
    check_loaded(cifar.load_cifar10(tmp_path), tiny)
    assert os.listdir(tmp_path) == [cifar.ARCHIVE]  # read in memory, nothing extracted


def test_wrong_record_size_and_label(tmp_path, tiny):
    write_folder(tmp_path, tiny)
    with open(tmp_path / "data_batch_3.bin", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match=r"data_batch_3.bin is corrupt: expected 2 records of 3073 bytes \(6146"):
        cifar.load_cifar10(tmp_path)
    raw = bytearray(tiny["test_batch.bin"][0])
    raw[0] = 10
    write_folder(tmp_path, dict(tiny, **{"data_batch_3.bin": tiny["data_batch_3.bin"],
                                        "test_batch.bin": (bytes(raw), None, None)}))
    with pytest.raises(ValueError, match="test_batch.bin is corrupt: label 10"):
        cifar.load_cifar10(tmp_path)


def test_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        cifar.load_cifar10(tmp_path / "nothing")
    message = str(info.value)
    assert str(tmp_path / "nothing") in message and cifar.ARCHIVE in message
    assert "download=True" in message and "--download" in message and "\n" not in message


def test_download_offline_is_one_line(tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError, match="offline") as info:
        cifar.load_cifar10(tmp_path / "cache", download=True)
    assert "\n" not in str(info.value) and info.value.__cause__ is None
    assert str(tmp_path / "cache") in str(info.value) and os.listdir(tmp_path / "cache") == []


def test_download_fetches_the_archive(tmp_path, tiny, monkeypatch):
    blob = write_archive(tmp_path / "served.tar.gz", tiny).read_bytes()
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", cifar._archive_md5(tmp_path / "served.tar.gz"))
    requested = []

    def fake_urlopen(url, timeout=None):
        requested.append(url)
        return io.BytesIO(blob)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    check_loaded(cifar.load_cifar10(tmp_path / "cache", download=True), tiny)
    assert requested == [cifar.MIRRORS[0] + cifar.ARCHIVE]
    assert os.listdir(tmp_path / "cache") == [cifar.ARCHIVE]


def test_load_dataset_cifar10_from_data_root(tmp_path, tiny, monkeypatch):
    write_folder(tmp_path / "cifar10" / cifar.MEMBER_DIR, tiny)
    monkeypatch.setenv("MINIVQ_DATA", str(tmp_path))
    ds = data.load_dataset("cifar10")
    assert ds.x_train.shape == (5 * N, 32, 32, 3) and ds.x_train.dtype == np.float32
    np.testing.assert_allclose(ds.x_test * 255, tiny["test_batch.bin"][1], atol=1e-4)
    assert ds.classes[0] == "airplane" and len(ds.classes) == 10
    assert data.describe(ds) == (f"cifar10 ({tmp_path / 'cifar10'}): 10 train + 2 test images, 32x32, "
                                 "3 channels (colour), labels: 10 classes (airplane, automobile, bird, ...)")
