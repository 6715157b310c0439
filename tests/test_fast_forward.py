"""Tests for minivq/fast_forward.py: the fast backend's encoding path (no gradients)."""
import numpy as onp
import pytest

import minivq
from minivq import fast_conv, fast_forward
from minivq.data import load_mnist_embedded
from minivq.quantize import nearest_codes as plain_nearest_codes
from minivq.vqvae import build_vqvae, init_codebook_from_batch


def brute_force_nearest(codebook, z):
    """Oracle: k = argmin_j sum_c (z[c] - e_j[c])^2 for every vector, in float64 loops."""
    flat = z.reshape(-1, z.shape[-1]).astype(onp.float64)
    out = [min(range(len(codebook)), key=lambda j: (onp.sum((v - codebook[j].astype(onp.float64)) ** 2), j))
           for v in flat]
    return onp.array(out, onp.int64).reshape(z.shape[:-1])


def test_nearest_codes_by_hand():
    codebook = onp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [1.0, 0.0]], onp.float32)
    z = onp.array([[[0.9, 0.1], [0.1, 1.2]], [[0.2, 0.2], [5.0, 0.0]]], onp.float32)   # (2, 2, 2)
    # distances to (0,0), (1,0), (0,2): [0.9, 0.1] is nearest (1,0); the duplicate row 3 loses the tie
    indices = fast_forward.nearest_codes(codebook, z)
    assert indices.dtype == onp.int64 and indices.shape == (2, 2)
    onp.testing.assert_array_equal(indices, [[1, 2], [0, 1]])


@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
def test_nearest_codes_against_brute_force_across_chunks(rng, monkeypatch, dtype):
    monkeypatch.setattr(fast_forward, "DISTANCE_ROWS", 7)          # several chunks and a ragged last one
    codebook = rng.standard_normal((13, 5)).astype(dtype)
    z = rng.standard_normal((3, 4, 5, 5)).astype(dtype)             # 60 vectors
    indices = fast_forward.nearest_codes(codebook, z)
    onp.testing.assert_array_equal(indices, brute_force_nearest(codebook, z))
    onp.testing.assert_array_equal(indices, plain_nearest_codes(codebook, z))


def test_nearest_codes_bad_shapes():
    with pytest.raises(ValueError, match="z_e"):
        fast_forward.nearest_codes(onp.zeros((4, 3), onp.float32), onp.zeros((2, 5), onp.float32))


def test_inference_changes_chunks_only_inside(monkeypatch):
    before = dict(fast_conv.SETTINGS)
    monkeypatch.setattr(fast_forward.threads, "get_blas_threads", lambda: 2)
    with fast_forward.inference():
        assert fast_conv.SETTINGS["chunk_bytes"] == fast_forward.FORWARD_CHUNK_BYTES
    assert fast_conv.SETTINGS == before
    monkeypatch.setattr(fast_forward.threads, "get_blas_threads", lambda: 1)
    with fast_forward.inference():
        assert fast_conv.SETTINGS["chunk_bytes"] == before["chunk_bytes"]


@pytest.fixture(scope="module")
def digits_model():
    """The default VQ-VAE, codebook seeded from encoder outputs (near ties are common), and the test split."""
    rng = onp.random.default_rng(0)
    data = load_mnist_embedded()
    model = build_vqvae()
    with minivq.use_backend("fast"):                # the same codebook whichever backend the run uses
        params = init_codebook_from_batch(model, model.init(rng), data.x_train[:256], rng, "random")
    return model, params, data.x_test


def assert_same_up_to_ties(indices, other, z_e, codebook):
    """indices == other, except at near ties: cells where the two codes lie equally far from z_e
    up to float32 rounding (the backends sum the conv products in different orders)."""
    differ = indices != other
    assert differ.mean() < 1e-3                                         # a handful of cells at most
    z = z_e[differ].astype(onp.float64)                                 # (n, d)
    gap = [onp.sum((z - codebook[k].astype(onp.float64)) ** 2, axis=-1) for k in (indices[differ], other[differ])]
    onp.testing.assert_allclose(gap[0], gap[1], rtol=1e-5, atol=1e-6)


def test_encode_equals_the_traced_path_on_the_test_split(digits_model):
    model, params, x = digits_model
    with minivq.use_backend("fast"):
        indices, codes = model.encode(params, x)
        aux = model.forward(params, x)                                 # the training path, quantize()
    onp.testing.assert_array_equal(indices, aux["indices"])
    onp.testing.assert_allclose(codes, aux["z_q"], rtol=1e-6, atol=1e-6)   # z_e + (e - z_e): one rounding
    assert len(onp.unique(indices)) > 10                               # not a degenerate all-one-code case
    with minivq.use_backend("plain"):
        plain_indices, plain_codes = model.encode(params, x)
    assert_same_up_to_ties(indices, plain_indices, aux["z_e"], params["quantizer"]["codebook"])
    same = indices == plain_indices
    onp.testing.assert_allclose(codes[same], plain_codes[same], rtol=1e-5, atol=1e-5)


def test_encode_follows_the_switch(digits_model, monkeypatch):
    model, params, x = digits_model

    def refuse(*args):
        raise AssertionError("the fast forward path ran")
    monkeypatch.setattr(fast_forward, "nearest_codes", refuse)
    with minivq.use_backend("plain"):
        model.encode(params, x[:8])                                    # plain layers, quantize.nearest_codes
    with minivq.use_backend("fast"), pytest.raises(AssertionError, match="fast forward"):
        model.encode(params, x[:8])


def test_encode_dataset_and_evaluate_on_the_fast_path(digits_model):
    from minivq.codes import encode_dataset
    model, params, x = digits_model
    with minivq.use_backend("fast"):
        grids = encode_dataset(lambda xb: model.encode(params, xb), x, batch_size=250)
        scores = model.evaluate(params, x, batch_size=250)
        traced = model.forward(params, x)
    with minivq.use_backend("plain"):
        plain = model.evaluate(params, x, batch_size=250)
    onp.testing.assert_array_equal(grids.indices, traced["indices"])
    assert scores["perplexity"] == pytest.approx(plain["perplexity"], rel=1e-3)   # a near tie may flip
    assert scores["test_mse"] == pytest.approx(plain["test_mse"], rel=1e-5)
