"""The shipped sequence data set (UCR ItalyPowerDemand): counts, shapes, values, checksum.

The counts are the archive's (67 train + 1029 test series of 24 values, labels 1/2 with
34/33 and 513/516 of each); the values are z-normalised per series by the archive, so
mean 0 and sample standard deviation 1 hold for every series, independently of how the
file was built.
"""
import hashlib
import os
import shutil

import numpy as onp
import pytest

from minivq import data


def test_italy_power_counts_shapes_and_split():
    dataset = data.load_dataset("italy-power")
    # train = the archive's TEST part (1029), test = its TRAIN part (67)
    assert dataset.x_train.shape == (1029, 1, 24, 1) and dataset.x_test.shape == (67, 1, 24, 1)
    assert dataset.x_train.dtype == onp.float32 and dataset.x_test.dtype == onp.float32
    assert onp.bincount(dataset.y_train).tolist() == [513, 516]
    assert onp.bincount(dataset.y_test).tolist() == [34, 33]
    assert dataset.classes == ("1", "2")
    assert 0 <= dataset.x_train.min() and dataset.x_train.max() <= 1
    assert "1029 train + 67 test" in data.describe(dataset)


def test_italy_power_values_are_the_archives_z_normalised_series():
    raw, scaled = data.load_italy_power(scaled=False), data.load_italy_power()
    for x in (raw.x_train, raw.x_test):
        series = x[:, 0, :, 0].astype(onp.float64)                  # (N, 24)
        onp.testing.assert_allclose(series.mean(axis=1), 0, atol=1e-6)
        onp.testing.assert_allclose(series.std(axis=1, ddof=1), 1, atol=1e-5)
    # the first series of the archive's TRAIN file, first three values, as its .ts text has them
    onp.testing.assert_allclose(raw.x_test[0, 0, :3, 0], [-0.71051757, -1.1833204, -1.3724416], rtol=1e-7)
    lo, hi = data.ITALY_POWER_RANGE
    onp.testing.assert_allclose(scaled.x_train, (raw.x_train - lo) / (hi - lo), rtol=1e-6)
    assert scaled.value_range == (lo, hi) and raw.value_range is None
    onp.testing.assert_allclose(data.unscale(scaled.x_test, scaled.value_range), raw.x_test, atol=1e-6)


def test_italy_power_asset_checksum_matches_readme():
    path = os.path.join(data.ASSETS, "italy_power_demand.npz")
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert digest == data.ASSET_SHA256["italy_power_demand.npz"]
    with open(os.path.join(data.ASSETS, "README.md"), encoding="utf-8") as f:
        assert digest in f.read()


def test_italy_power_damaged_file_is_refused(tmp_path, monkeypatch):
    damaged = tmp_path / "italy_power_demand.npz"
    shutil.copy(os.path.join(data.ASSETS, "italy_power_demand.npz"), damaged)
    blob = bytearray(damaged.read_bytes())
    blob[len(blob) // 2] ^= 0xFF                                     # flip one byte
    damaged.write_bytes(bytes(blob))
    monkeypatch.setattr(data, "ASSETS", str(tmp_path))
    with pytest.raises(ValueError, match="corrupt"):
        data.load_italy_power()
