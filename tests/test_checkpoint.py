"""Tests for minivq.checkpoint: bit-exact round trips, integrity checks, atomic writes."""
import json
import os

import numpy as onp
import pytest

from minivq import checkpoint
from minivq.checkpoint import (CheckpointError, load_checkpoint, load_tree, rng_from_json,
                               rng_state_to_json, save_checkpoint, save_tree)


def assert_identical(a, b, path="root"):
    """Same containers (type, key order, length) and leaves with equal dtype, shape, bytes."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for key in a:
            assert_identical(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for index, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{path}/{index}")
    else:
        assert (a.dtype, a.shape) == (b.dtype, b.shape), path
        assert a.tobytes() == b.tobytes(), path


def mixed_tree():
    rng = onp.random.default_rng(0)
    special = onp.array([onp.nan, -0.0, onp.inf, -onp.inf, 1e-310], dtype=onp.float64)
    return {
        "encoder": [{"w": rng.normal(size=(3, 3, 1, 4)).astype(onp.float32),
                     "b": onp.zeros(4, onp.float32)},
                    {},                                     # a ReLU layer: no params
                    {"w": special, "mask": onp.array([True, False, True])}],
        "quantizer": {"codebook": rng.normal(size=(8, 2)),
                      "counts": onp.arange(8, dtype=onp.int64)},
        "image": onp.arange(12, dtype=onp.uint8).reshape(3, 4),
        "step": onp.array(7, dtype=onp.int64),              # 0-d
        "scale": onp.float32(0.5),                          # numpy scalar -> 0-d float32
        "empty_list": [], "empty_dict": {}, "nested": [[], [{}], ({"z": onp.zeros((0, 3))},)],
        "name": onp.array("pcg64"),                         # 0-d unicode
    }


def test_tree_round_trip_is_bit_exact_and_structure_identical(tmp_path):
    tree = mixed_tree()
    save_tree(tmp_path / "tree.npz", tree)
    loaded = load_tree(tmp_path / "tree.npz")
    expected = dict(tree, scale=onp.array(0.5, dtype=onp.float32))
    assert_identical(expected, loaded)
    assert onp.isnan(loaded["encoder"][2]["w"][0]) and onp.signbit(loaded["encoder"][2]["w"][1])


def test_file_is_plain_npz_with_path_like_keys(tmp_path):
    """An independent reader (plain np.load, no pickle) sees the hand-listed keys."""
    tree = {"encoder": [{"w": onp.ones((2, 2))}, {}], "codebook": onp.arange(3)}
    save_tree(tmp_path / "t.npz", tree)
    with onp.load(tmp_path / "t.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["__minivq__", "__minivq_sha256__",
                                     "tree/codebook", "tree/encoder/0/w"]
        onp.testing.assert_array_equal(npz["tree/codebook"], [0, 1, 2])
        meta = json.loads(str(npz["__minivq__"]))
    assert meta["structure"]["tree"] == {"dict": {"encoder": {"list": [{"dict": {"w": "array"}},
                                                                       {"dict": {}}]},
                                                  "codebook": "array"}}


@pytest.mark.parametrize("tree", [{}, [], onp.arange(3.0), onp.array(True), [{}, []]])
def test_trivial_trees_round_trip(tmp_path, tree):
    save_tree(tmp_path / "t.npz", tree)
    assert_identical(tree, load_tree(tmp_path / "t.npz"))


def test_path_is_written_exactly_without_npz_suffix(tmp_path):
    save_tree(tmp_path / "weights", {"w": onp.ones(2)})
    assert sorted(os.listdir(tmp_path)) == ["weights"]
    assert_identical({"w": onp.ones(2)}, load_tree(str(tmp_path / "weights")))


def test_checkpoint_round_trip(tmp_path):
    params = {"encoder": [{"w": onp.full((2, 2), 0.1, onp.float32)}, {}], "b": onp.ones(3)}
    zeros = {"encoder": [{"w": onp.zeros((2, 2), onp.float32)}, {}], "b": onp.zeros(3)}
    opt_state = {"step": onp.array(42, dtype=onp.int64), "m": zeros, "v": zeros}
    rng = onp.random.default_rng(3)
    extra = {"ema": {"cluster_size": onp.arange(4.0), "embed_sum": onp.ones((4, 2))},
             "rng": onp.array(rng_state_to_json(rng))}
    config = {"lr": 1e-3, "beta": 0.25, "hidden": [32, 64], "name": "vqvae", "ema": True,
              "prior": {"layers": 5, "dropout": None}}
    save_checkpoint(tmp_path / "ckpt.npz", params, opt_state, config=config, step=1234, extra=extra)
    ckpt = load_checkpoint(tmp_path / "ckpt.npz")
    assert sorted(ckpt) == ["config", "extra", "opt_state", "params", "step"]
    assert_identical(params, ckpt["params"])
    assert_identical(opt_state, ckpt["opt_state"])
    assert_identical(extra, ckpt["extra"])
    assert ckpt["config"] == config
    assert ckpt["step"] == 1234 and type(ckpt["step"]) is int
    onp.testing.assert_array_equal(rng_from_json(ckpt["extra"]["rng"]).random(4), rng.random(4))


def test_checkpoint_defaults_are_none(tmp_path):
    save_checkpoint(tmp_path / "c.npz", {"w": onp.ones(1)})
    ckpt = load_checkpoint(tmp_path / "c.npz")
    assert (ckpt["opt_state"], ckpt["config"], ckpt["extra"], ckpt["step"]) == (None, None, None, 0)


def test_rng_helpers_continue_the_same_stream():
    rng = onp.random.default_rng(12345)
    rng.normal(size=7)                        # advance so the state is not a fresh seed
    text = rng_state_to_json(rng)
    assert json.loads(text)["bit_generator"] == "PCG64"
    expected = (rng.normal(size=5), rng.integers(0, 100, size=5), rng.random())
    restored = rng_from_json(text)
    got = (restored.normal(size=5), restored.integers(0, 100, size=5), restored.random())
    for e, g in zip(expected, got):
        assert onp.asarray(e).tobytes() == onp.asarray(g).tobytes()
    again = rng_from_json(onp.array(text))    # the 0-d array form stored in `extra`
    assert again.normal() == onp.random.default_rng(12345).normal(size=8)[-1]


def test_rng_helpers_reject_other_inputs():
    with pytest.raises(ValueError, match="PCG64"):
        rng_state_to_json(onp.random.Generator(onp.random.MT19937(0)))
    with pytest.raises(TypeError, match="Generator"):
        rng_state_to_json(onp.random.RandomState(0))
    with pytest.raises(ValueError, match="PCG64"):
        rng_from_json(json.dumps({"bit_generator": "MT19937"}))


@pytest.mark.parametrize("keep", [0, 10, 200, 0.5, -1, -30])
def test_truncated_file_raises_checkpoint_error(tmp_path, keep):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"w": onp.arange(500.0)}, config={"a": 1}, step=3)
    data = path.read_bytes()
    keep = int(len(data) * keep) if isinstance(keep, float) else keep
    path.write_bytes(data[:keep])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_flipped_byte_inside_array_raises_checkpoint_error(tmp_path):
    path = tmp_path / "ckpt.npz"
    w = onp.arange(500.0)
    save_checkpoint(path, {"w": w})
    data = bytearray(path.read_bytes())
    offset = data.find(w.tobytes())
    assert offset > 0
    data[offset + 1001] ^= 0x01               # one bit in the middle of w's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):      # the zip CRC or our SHA-256 catches it
        load_checkpoint(path)


def test_consistent_zip_with_tampered_array_fails_the_checksum(tmp_path):
    """Rewrite a valid zip (CRCs fine) with one changed value: only the SHA-256 can see it."""
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"w": onp.arange(5.0)}, config={"lr": 0.1}, step=1)
    with onp.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    arrays["params/w"] = onp.array([0.0, 1.0, 2.0, 3.0, 4.5])
    with open(path, "wb") as file:
        onp.savez(file, **arrays)
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(path)


def test_tampered_config_fails_the_checksum(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"w": onp.ones(2)}, config={"lr": 0.1})
    with onp.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    arrays["__minivq__"] = onp.array(str(arrays["__minivq__"]).replace("0.1", "0.2"))
    with open(path, "wb") as file:
        onp.savez(file, **arrays)
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(path)


def test_wrong_format_version_raises(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"w": onp.ones(2)})
    with onp.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    meta = json.loads(str(arrays["__minivq__"]))
    arrays["__minivq__"] = onp.array(json.dumps(dict(meta, version=99)))
    with open(path, "wb") as file:
        onp.savez(file, **arrays)
    with pytest.raises(CheckpointError, match="expected format.*'minivq', 1.*99"):
        load_checkpoint(path)


def test_files_not_written_by_minivq_raise(tmp_path):
    onp.savez(tmp_path / "plain.npz", w=onp.ones(3))
    onp.save(tmp_path / "array.npy", onp.ones(3))
    (tmp_path / "text.txt").write_text("hello, not a checkpoint\n")
    with pytest.raises(CheckpointError, match="not a minivq file"):
        load_checkpoint(tmp_path / "plain.npz")
    with pytest.raises(CheckpointError, match="not a minivq file"):
        load_checkpoint(tmp_path / "array.npy")
    with pytest.raises(CheckpointError):
        load_tree(tmp_path / "text.txt")


def test_kind_mismatch_raises(tmp_path):
    save_tree(tmp_path / "t.npz", {"w": onp.ones(2)})
    save_checkpoint(tmp_path / "c.npz", {"w": onp.ones(2)})
    with pytest.raises(CheckpointError, match="expected a minivq checkpoint file, got a tree"):
        load_checkpoint(tmp_path / "t.npz")
    with pytest.raises(CheckpointError, match="expected a minivq tree file, got a checkpoint"):
        load_tree(tmp_path / "c.npz")


def test_missing_path_raises_file_not_found(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_tree(str(path))


def _fail_mid_write(file, *args, **kwargs):
    file.write(b"PK\x03\x04 half a zip")
    raise OSError("disk full")


def _fail_replace(src, dst):
    raise OSError("crash before the rename")


@pytest.mark.parametrize("where", ["writer", "replace"])
def test_failed_save_keeps_old_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch, where):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"w": onp.arange(4.0)}, step=1)
    before = path.read_bytes()
    if where == "writer":
        monkeypatch.setattr(checkpoint.onp, "savez", _fail_mid_write)
    else:
        monkeypatch.setattr(checkpoint.os, "replace", _fail_replace)
    with pytest.raises(OSError):
        save_checkpoint(path, {"w": onp.arange(9.0)}, step=2)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 1


@pytest.mark.parametrize("config, error", [
    ({"lr": onp.float32(0.1)}, TypeError),    # numpy scalars are not JSON
    ({"shape": {1, 2}}, TypeError),
    ({"lr": float("nan")}, ValueError),       # NaN is not valid JSON
    ([("lr", 0.1)], TypeError),               # not a dict
])
def test_unserialisable_config_is_rejected_before_writing(tmp_path, config, error):
    with pytest.raises(error, match="config"):
        save_checkpoint(tmp_path / "c.npz", {"w": onp.ones(1)}, config=config)
    assert os.listdir(tmp_path) == []


def test_bad_keys_leaves_and_step_are_reported(tmp_path):
    path = tmp_path / "c.npz"
    with pytest.raises(ValueError, match=r"cannot save params: .*'enc/0'"):
        save_checkpoint(path, {"enc/0": onp.ones(1)})
    with pytest.raises(ValueError, match=r"cannot save opt_state: .*''"):
        save_checkpoint(path, {"w": onp.ones(1)}, opt_state={"": onp.ones(1)})
    with pytest.raises(ValueError, match=r"cannot save tree: .*3"):
        save_tree(path, {3: onp.ones(1)})
    with pytest.raises(TypeError, match=r"params/a/0.*object dtype"):
        save_checkpoint(path, {"a": [None]})
    with pytest.raises(TypeError, match="step must be an integer"):
        save_checkpoint(path, {"w": onp.ones(1)}, step=1.5)
    assert os.listdir(tmp_path) == []
