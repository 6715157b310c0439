"""Code-grid dataset: batched encoding against one pass, npz round trips, validation."""
import os

import numpy as onp
import pytest

from minivq.codes import CodeGrids, encode_dataset, load_code_grids, save_code_grids

CODEBOOK = onp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], onp.float32)   # K=4, d=2


def toy_encode(x):
    """A stand-in VQ-VAE: 2x2 mean-pooling of a 4x4 image, thresholded to 2 bits per cell.

    x (B, 4, 4, 1) -> indices (B, 2, 2) = 2*[mean > 0.5] + [max > 0.9], codes = CODEBOOK[indices].
    """
    blocks = x[..., 0].reshape(len(x), 2, 2, 2, 2)                           # (B, h, 2, w, 2)
    indices = 2 * (blocks.mean(axis=(2, 4)) > 0.5) + (blocks.max(axis=(2, 4)) > 0.9)
    return indices.astype(onp.int64), CODEBOOK[indices]


def test_encode_by_hand():
    x = onp.zeros((1, 4, 4, 1), onp.float32)
    x[0, :2, 2:, 0] = 1.0         # top-right block all ones: mean 1, max 1 -> 3
    x[0, 2, 0, 0] = 0.95          # bottom-left block: mean 0.24, max 0.95 -> 1
    grids = encode_dataset(toy_encode, x)
    onp.testing.assert_array_equal(grids.indices, [[[0, 3], [1, 0]]])
    onp.testing.assert_array_equal(grids.codes, [[[[0, 0], [1, 1]], [[1, 0], [0, 0]]]])
    assert grids.labels is None


def test_batches_equal_one_pass_and_labels_are_kept(rng):
    x = rng.random((11, 4, 4, 1)).astype(onp.float32)
    labels = rng.integers(0, 10, size=11)
    grids = encode_dataset(toy_encode, x, batch_size=4, labels=labels)       # 4 + 4 + 3
    indices, codes = toy_encode(x)
    onp.testing.assert_array_equal(grids.indices, indices)
    onp.testing.assert_array_equal(grids.codes, codes)
    onp.testing.assert_array_equal(grids.labels, labels)
    assert (grids.indices.dtype, grids.codes.dtype, grids.labels.dtype) == (onp.int64, onp.float32, onp.int64)


@pytest.mark.parametrize("with_labels", [True, False])
def test_save_load_round_trip_is_exact(tmp_path, rng, with_labels):
    x = rng.random((5, 4, 4, 1)).astype(onp.float32)
    grids = encode_dataset(toy_encode, x, labels=onp.arange(5) if with_labels else None)
    path = str(tmp_path / "grids.bin")                                       # no '.npz' is appended
    save_code_grids(path, grids)
    assert os.listdir(tmp_path) == ["grids.bin"]
    loaded = load_code_grids(path)
    for saved, got in zip(grids, loaded):
        if saved is None:
            assert got is None
        else:
            assert saved.dtype == got.dtype
            onp.testing.assert_array_equal(saved, got)


def test_load_rejects_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_code_grids(str(tmp_path / "missing.npz"))
    good = dict(indices=onp.zeros((2, 3, 3), onp.int64), codes=onp.zeros((2, 3, 3, 4), onp.float32))
    cases = [(dict(codes=good["codes"]), "missing"),
             (dict(good, indices=good["indices"].astype(float)), "integers"),
             (dict(good, indices=-onp.ones((2, 3, 3), int)), "non-negative"),
             (dict(good, codes=onp.zeros((2, 3, 2, 4))), r"\(2, 3, 3, d\)"),
             (dict(good, labels=onp.zeros(3, int)), r"shape \(2,\)"),
             (dict(good, labels=onp.array(["a", "b"], object)), "object array")]
    for n, (arrays, match) in enumerate(cases):
        path = str(tmp_path / f"bad{n}.npz")
        onp.savez(path, **arrays)
        with pytest.raises(ValueError, match=match):
            load_code_grids(path)
    path = tmp_path / "not_npz.npz"
    path.write_text("hello")
    with pytest.raises(ValueError, match="not a NumPy .npy/.npz file"):
        load_code_grids(str(path))


def test_bad_encoder_or_arguments_raise(rng):
    x = rng.random((3, 4, 4, 1)).astype(onp.float32)
    with pytest.raises(ValueError, match="batch of 3"):
        encode_dataset(lambda xb: toy_encode(xb[:1]), x)
    with pytest.raises(ValueError, match="2 labels for 3"):
        encode_dataset(toy_encode, x, labels=onp.arange(2))
    with pytest.raises(ValueError, match="codes must be a float array"):
        encode_dataset(lambda xb: (toy_encode(xb)[0], toy_encode(xb)[0]), x)
    with pytest.raises(ValueError, match="indices"):
        save_code_grids("unused.npz", CodeGrids(onp.zeros((2, 2)), onp.zeros((2, 2, 1)), None))
