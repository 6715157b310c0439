"""Tests for minivq.quantize: hand numbers, brute-force oracles, gradient checks."""
import autograd.numpy as anp
import numpy as onp
import pytest
from autograd import grad
from autograd.test_util import check_grads

from minivq.quantize import (VectorQuantizer, code_histogram, nearest_codes, pairwise_sq_distances,
                             perplexity, quantize, used_codes)


# ---------------------------------------------------------------- oracles (slow, obvious)

def naive_sq_distances(codebook, z):
    out = onp.zeros((len(z), len(codebook)))
    for n in range(len(z)):
        for k in range(len(codebook)):
            out[n, k] = sum((z[n, i] - codebook[k, i]) ** 2 for i in range(z.shape[1]))
    return out


def naive_nearest(codebook, z):
    return onp.array([min(range(len(codebook)), key=lambda k: onp.sum((v - codebook[k]) ** 2))
                      for v in z])


def separated_problem(rng, num_codes=5, d=3, leading=(2, 3, 3)):
    """Codes far apart, z_e a small perturbation of a code: no argmin ties nearby."""
    codebook = 3.0 * rng.standard_normal((num_codes, d))
    true_idx = rng.integers(num_codes, size=leading)
    z_e = codebook[true_idx] + 0.05 * rng.standard_normal(leading + (d,))
    return codebook, z_e, true_idx


# ---------------------------------------------------------------- hand-computed example

CODEBOOK = onp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
Z = onp.array([[0.9, 0.1], [0.0, 1.2]])


def test_hand_example_distances_indices_losses():
    # |z0 - e|^2 = 0.82, 0.02, 4.42 ; |z1 - e|^2 = 1.44, 2.44, 0.64
    onp.testing.assert_allclose(pairwise_sq_distances(CODEBOOK, Z),
                                [[0.82, 0.02, 4.42], [1.44, 2.44, 0.64]], atol=1e-12)
    out = quantize(CODEBOOK, Z, beta=0.25)
    onp.testing.assert_array_equal(out.indices, [1, 2])
    assert out.indices.dtype == onp.int64
    # z - e = [[-0.1, 0.1], [0, -0.8]] -> squares sum 0.66, mean over 4 elements 0.165
    assert out.codebook_loss == pytest.approx(0.165, abs=1e-12)
    assert out.commitment_loss == pytest.approx(0.165, abs=1e-12)
    assert out.vq_loss == pytest.approx(0.165 * 1.25, abs=1e-12)
    onp.testing.assert_allclose(out.z_q, [[1.0, 0.0], [0.0, 2.0]], atol=1e-15)
    # d codebook_loss / d codebook = 2 (e - z) / 4 on the used rows, 0 on row 0
    g_cb = grad(lambda cb: quantize(cb, Z).codebook_loss)(CODEBOOK)
    onp.testing.assert_allclose(g_cb, [[0, 0], [0.05, -0.05], [0, 0.4]], atol=1e-12)
    # d commitment_loss / d z_e = 2 (z - e) / 4
    g_z = grad(lambda z: quantize(CODEBOOK, z).commitment_loss)(Z)
    onp.testing.assert_allclose(g_z, [[-0.05, 0.05], [0, -0.4]], atol=1e-12)


# ---------------------------------------------------------------- against the oracles

@pytest.mark.parametrize("n, k, d", [(1, 1, 1), (7, 5, 3), (20, 9, 4)])
def test_distances_and_argmin_match_double_loop(rng, n, k, d):
    z, codebook = rng.standard_normal((n, d)), rng.standard_normal((k, d))
    onp.testing.assert_allclose(pairwise_sq_distances(codebook, z),
                                naive_sq_distances(codebook, z), atol=1e-12)
    onp.testing.assert_array_equal(nearest_codes(codebook, z), naive_nearest(codebook, z))


def test_nearest_codes_any_leading_shape(rng):
    codebook, z_e, true_idx = separated_problem(rng, leading=(2, 3, 4))
    idx = nearest_codes(codebook, z_e)
    assert idx.shape == (2, 3, 4) and idx.dtype == onp.int64
    onp.testing.assert_array_equal(idx, true_idx)
    onp.testing.assert_array_equal(idx.ravel(), naive_nearest(codebook, z_e.reshape(-1, 3)))


def test_quantize_nhwc_matches_brute_force(rng):
    codebook, z_e, _ = separated_problem(rng, num_codes=6, d=4, leading=(2, 3, 3))
    out = quantize(codebook, z_e, beta=0.5)
    idx = naive_nearest(codebook, z_e.reshape(-1, 4)).reshape(2, 3, 3)
    onp.testing.assert_array_equal(out.indices, idx)
    e = codebook[idx]
    assert out.z_q.shape == z_e.shape
    onp.testing.assert_allclose(out.z_q, e, rtol=0, atol=1e-14)
    sq = onp.mean((z_e - e) ** 2)          # mean over B*h*w*d elements
    assert out.codebook_loss == pytest.approx(sq, rel=1e-12)
    assert out.commitment_loss == pytest.approx(sq, rel=1e-12)
    assert out.vq_loss == pytest.approx(1.5 * sq, rel=1e-12)


# ---------------------------------------------------------------- gradient checks (float64)

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_check_grads_losses_and_distances(seed):
    rng = onp.random.default_rng(seed)
    codebook, z_e, _ = separated_problem(rng)
    check_grads(lambda cb: quantize(cb, z_e).codebook_loss, modes=["rev"], order=1)(codebook)
    check_grads(lambda z: quantize(codebook, z).commitment_loss, modes=["rev"], order=1)(z_e)
    z = z_e.reshape(-1, 3)
    check_grads(lambda a: pairwise_sq_distances(codebook, a), modes=["rev"], order=1)(z)
    check_grads(lambda b: pairwise_sq_distances(b, z), modes=["rev"], order=1)(codebook)


# ---------------------------------------------------------------- stop-gradient semantics

def test_stop_gradient_blocks_exactly(rng):
    codebook, z_e, _ = separated_problem(rng)
    g_z = grad(lambda z: quantize(codebook, z).codebook_loss)(z_e)
    g_cb = grad(lambda cb: quantize(cb, z_e).commitment_loss)(codebook)
    assert onp.all(g_z == 0.0) and onp.all(g_cb == 0.0)
    # ... while the other pairings are nonzero (the test could fail)
    assert onp.any(grad(lambda z: quantize(codebook, z).commitment_loss)(z_e) != 0)
    assert onp.any(grad(lambda cb: quantize(cb, z_e).codebook_loss)(codebook) != 0)


def test_straight_through_forward_and_backward(rng):
    codebook, z_e, _ = separated_problem(rng)
    out = quantize(codebook, z_e)
    onp.testing.assert_allclose(out.z_q, codebook[out.indices], rtol=0, atol=1e-14)
    G = rng.standard_normal(z_e.shape)
    g_z = grad(lambda z: anp.sum(quantize(codebook, z).z_q * G))(z_e)
    onp.testing.assert_array_equal(g_z, G)          # identity, bit for bit
    g_cb = grad(lambda cb: anp.sum(quantize(cb, z_e).z_q * G))(codebook)
    assert onp.all(g_cb == 0.0)                     # decoder gradient never reaches codes


def test_frozen_constant_equals_stop_gradient_version(rng):
    """Grad of the full loss == grad of the same formula with sg[.] terms as constants."""
    codebook, z_e, _ = separated_problem(rng)
    beta, G = 0.3, rng.standard_normal(z_e.shape)
    idx = naive_nearest(codebook, z_e.reshape(-1, 3)).reshape(z_e.shape[:-1])
    e_const, z_const = codebook[idx].copy(), z_e.copy()

    def full(cb, z):
        out = quantize(cb, z, beta)
        return out.vq_loss + anp.sum(out.z_q * G)

    def frozen(cb, z):
        e = cb[idx]
        return (anp.mean((z_const - e) ** 2) + beta * anp.mean((z - e_const) ** 2)
                + anp.sum((z + (e_const - z_const)) * G))

    for argnum in (0, 1):
        onp.testing.assert_allclose(grad(full, argnum)(codebook, z_e),
                                    grad(frozen, argnum)(codebook, z_e), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- the layer

def test_vector_quantizer_layer(rng):
    init, apply = VectorQuantizer(num_codes=8, code_dim=4, beta=0.5)
    out_shape, params = init(rng, (3, 3, 4))
    assert out_shape == (3, 3, 4)
    cb = params["codebook"]
    assert cb.shape == (8, 4) and cb.dtype == onp.float32
    assert onp.all(onp.abs(cb) <= 1.0 / 8) and onp.unique(cb).size == cb.size
    z_e = rng.standard_normal((2, 3, 3, 4)).astype(onp.float32)
    out = apply(params, z_e)
    ref = quantize(cb, z_e, beta=0.5)
    onp.testing.assert_array_equal(out.indices, ref.indices)
    assert out.vq_loss == ref.vq_loss
    g = grad(lambda p: apply(p, z_e).vq_loss)(params)
    assert set(g) == {"codebook"} and g["codebook"].shape == (8, 4)
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        init(rng, (3, 3, 5))


# ---------------------------------------------------------------- metrics

def test_perplexity_histogram_used_codes():
    K = 7
    uniform = onp.tile(onp.arange(K), 3).reshape(3, K)
    assert perplexity(uniform, K) == pytest.approx(K, rel=1e-12)
    assert perplexity(onp.full((4, 5), 2), K) == 1.0
    # p = (1/2, 1/4, 1/4): H = 1.5 log 2 -> perplexity 2^1.5
    assert perplexity(onp.array([0, 0, 3, 5]), K) == pytest.approx(2 ** 1.5, rel=1e-12)
    onp.testing.assert_array_equal(code_histogram(onp.array([[0, 0], [3, 5]]), K),
                                   [2, 0, 0, 1, 0, 1, 0])
    assert used_codes(onp.array([0, 0, 3, 5]), K) == 3
    assert used_codes(uniform, K) == K
    with pytest.raises(ValueError):
        code_histogram(onp.array([0, 7]), K)
    with pytest.raises(ValueError):
        perplexity(onp.array([], dtype=onp.int64), K)


# ---------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("fn", [quantize, nearest_codes])
def test_bad_inputs_raise(fn):
    cb = CODEBOOK
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        fn(cb, onp.zeros((2, 3)))
    with pytest.raises(ValueError, match="float"):
        fn(cb, onp.zeros((2, 2), dtype=onp.int64))
    with pytest.raises(ValueError, match="NaN"):
        fn(cb, onp.array([[0.0, onp.nan]]))
    with pytest.raises(ValueError, match=r"\(K, d\)"):
        fn(onp.zeros(3), Z)
