"""Tests for minivq.quantize: hand numbers, brute-force oracles, gradient checks."""
import autograd.numpy as anp
import numpy as onp
import pytest
from autograd import grad
from autograd.test_util import check_grads

from minivq.quantize import (
    VectorQuantizer, code_histogram, ema_init, ema_reset_codes, ema_update,
    init_codebook_from_data, kmeans, kmeans_plus_plus, nearest_codes,
    pairwise_sq_distances, perplexity, quantize, restart_dead_codes, used_codes)


@pytest.fixture
def rng():
    return onp.random.default_rng(0)


# ---------------------------------------------------------------- oracles (slow, obvious)

def naive_sq_distances(z, codebook):
    out = onp.zeros((len(z), len(codebook)))
    for n in range(len(z)):
        for k in range(len(codebook)):
            out[n, k] = sum((z[n, i] - codebook[k, i]) ** 2 for i in range(z.shape[1]))
    return out


def naive_nearest(z, codebook):
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
    onp.testing.assert_allclose(pairwise_sq_distances(Z, CODEBOOK),
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
    onp.testing.assert_allclose(pairwise_sq_distances(z, codebook),
                                naive_sq_distances(z, codebook), atol=1e-12)
    onp.testing.assert_array_equal(nearest_codes(z, codebook), naive_nearest(z, codebook))


def test_nearest_codes_any_leading_shape(rng):
    codebook, z_e, true_idx = separated_problem(rng, leading=(2, 3, 4))
    idx = nearest_codes(z_e, codebook)
    assert idx.shape == (2, 3, 4) and idx.dtype == onp.int64
    onp.testing.assert_array_equal(idx, true_idx)
    onp.testing.assert_array_equal(idx.ravel(), naive_nearest(z_e.reshape(-1, 3), codebook))


def test_quantize_nhwc_matches_brute_force(rng):
    codebook, z_e, _ = separated_problem(rng, num_codes=6, d=4, leading=(2, 3, 3))
    out = quantize(codebook, z_e, beta=0.5)
    idx = naive_nearest(z_e.reshape(-1, 4), codebook).reshape(2, 3, 3)
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
    check_grads(lambda a: pairwise_sq_distances(a, codebook), modes=["rev"], order=1)(z)
    check_grads(lambda b: pairwise_sq_distances(z, b), modes=["rev"], order=1)(codebook)


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
    idx = naive_nearest(z_e.reshape(-1, 3), codebook).reshape(z_e.shape[:-1])
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


# ---------------------------------------------------------------- EMA codebook

def test_ema_init_reproduces_codebook():
    state = ema_init(CODEBOOK)
    onp.testing.assert_array_equal(state["cluster_size"], [1, 1, 1])
    onp.testing.assert_array_equal(state["embed_sum"], CODEBOOK)
    assert state["embed_sum"] is not CODEBOOK


def test_ema_update_hand_example():
    codebook = onp.array([[0.0, 0.0], [1.0, 1.0]])
    state = ema_init(codebook)
    z = onp.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    idx = onp.array([0, 0, 1])
    state_copy = {k: v.copy() for k, v in state.items()}
    # n = [2, 1], sums = [[4, 0], [0, 2]]; decay 0.5:
    # N = [1.5, 1], m = [[2, 0], [0.5, 1.5]]
    new_cb, new_state = ema_update(state, codebook, z, idx, decay=0.5, eps=0.0)
    onp.testing.assert_allclose(new_state["cluster_size"], [1.5, 1.0], atol=1e-15)
    onp.testing.assert_allclose(new_state["embed_sum"], [[2.0, 0.0], [0.5, 1.5]], atol=1e-15)
    onp.testing.assert_allclose(new_cb, [[4 / 3, 0.0], [0.5, 1.5]], atol=1e-15)
    # eps = 0.1: N' = (N + 0.1) / (2.5 + 0.2) * 2.5 = [4/2.7, 2.75/2.7]
    # e0 = [2 * 2.7 / 4, 0] = [1.35, 0];  e1 = [0.5, 1.5] * 2.7 / 2.75 = [27/55, 81/55]
    new_cb, _ = ema_update(state, codebook, z, idx, decay=0.5, eps=0.1)
    onp.testing.assert_allclose(new_cb, [[1.35, 0.0], [27 / 55, 81 / 55]], atol=1e-14)
    # pure: inputs untouched
    for key in state:
        onp.testing.assert_array_equal(state[key], state_copy[key])
    onp.testing.assert_array_equal(codebook, [[0.0, 0.0], [1.0, 1.0]])


def test_ema_decay_zero_gives_cluster_means(rng):
    codebook = rng.standard_normal((5, 3))
    z = rng.standard_normal((40, 3))
    idx = nearest_codes(z, codebook)
    idx[idx == 4] = 0                       # make sure code 4 is unused
    new_cb, _ = ema_update(ema_init(codebook), codebook, z, idx, decay=0.0, eps=0.0)
    for k in range(5):
        members = z[idx == k]
        expected = members.mean(axis=0) if len(members) else codebook[k]
        onp.testing.assert_allclose(new_cb[k], expected, atol=1e-12)


def test_ema_update_accepts_nhwc_and_keeps_dtype(rng):
    codebook = rng.standard_normal((4, 2)).astype(onp.float32)
    z = rng.standard_normal((2, 3, 3, 2)).astype(onp.float32)
    idx = nearest_codes(z, codebook)
    new_cb, new_state = ema_update(ema_init(codebook), codebook, z, idx)
    flat_cb, _ = ema_update(ema_init(codebook), codebook, z.reshape(-1, 2), idx.ravel())
    onp.testing.assert_array_equal(new_cb, flat_cb)
    assert new_cb.dtype == onp.float32 and new_state["embed_sum"].dtype == onp.float32
    with pytest.raises(ValueError):
        ema_update(ema_init(codebook), codebook, z, idx.ravel())


def test_ema_reset_codes():
    state = ema_update(ema_init(CODEBOOK), CODEBOOK, Z, onp.array([1, 2]), decay=0.5)[1]
    new = ema_reset_codes(state, onp.array([0, 2]), onp.array([[5.0, 6.0], [7.0, 8.0]]))
    onp.testing.assert_array_equal(new["cluster_size"], [1.0, state["cluster_size"][1], 1.0])
    onp.testing.assert_array_equal(new["embed_sum"],
                                   [[5, 6], state["embed_sum"][1], [7, 8]])
    assert state["cluster_size"][0] == 0.5        # input untouched


# ---------------------------------------------------------------- dead-code restart

def test_restart_dead_codes(rng):
    codebook = rng.standard_normal((4, 3))
    z = rng.standard_normal((6, 3))
    steps = onp.array([0, 1, 1, 5])
    idx = onp.array([0, 1, 1, 0, 0, 1])         # codes 2, 3 unused this batch
    cb_copy, steps_copy = codebook.copy(), steps.copy()
    new_cb, new_steps, restarted = restart_dead_codes(codebook, steps, idx, z, rng,
                                                      max_unused_steps=2)
    onp.testing.assert_array_equal(restarted, [2, 3])
    onp.testing.assert_array_equal(new_steps, [0, 0, 0, 0])
    onp.testing.assert_array_equal(new_cb[:2], codebook[:2])       # bit-identical
    rows = [onp.flatnonzero((z == new_cb[k]).all(axis=1)) for k in (2, 3)]
    assert all(len(r) == 1 for r in rows) and rows[0][0] != rows[1][0]
    onp.testing.assert_array_equal(codebook, cb_copy)
    onp.testing.assert_array_equal(steps, steps_copy)
    # below the threshold: counters grow, nothing restarted
    new_cb, new_steps, restarted = restart_dead_codes(codebook, onp.zeros(4, int), idx, z, rng,
                                                      max_unused_steps=2)
    assert restarted.size == 0
    onp.testing.assert_array_equal(new_steps, [0, 0, 1, 1])
    onp.testing.assert_array_equal(new_cb, codebook)
    # as many dead codes as rows: a permutation of the rows, none repeated
    z8 = rng.standard_normal((8, 3))
    new_cb, _, restarted = restart_dead_codes(rng.standard_normal((8, 3)), onp.zeros(8, int),
                                              onp.zeros(0, int), z8, rng, max_unused_steps=1)
    onp.testing.assert_array_equal(restarted, onp.arange(8))
    onp.testing.assert_array_equal(onp.sort(new_cb, axis=0), onp.sort(z8, axis=0))
    assert len({tuple(r) for r in new_cb}) == 8
    # more dead codes than rows: still rows of z (with repeats)
    new_cb, _, restarted = restart_dead_codes(codebook, onp.zeros(4, int), onp.array([0]),
                                              z[:1], rng, max_unused_steps=1)
    onp.testing.assert_array_equal(restarted, [1, 2, 3])
    onp.testing.assert_array_equal(new_cb[1:], onp.repeat(z[:1], 3, axis=0))


# ---------------------------------------------------------------- init from data

def blobs(rng, num=5, per=30, d=2):
    centres = 100.0 * onp.arange(num)[:, None] * onp.ones((1, d))   # 100 apart
    labels = onp.repeat(onp.arange(num), per)
    return centres[labels] + rng.standard_normal((num * per, d)), labels, centres


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_plus_plus_one_per_cluster(seed):
    rng = onp.random.default_rng(seed)
    z, labels, _ = blobs(rng)
    picked = kmeans_plus_plus(z, 5, rng)
    assert picked.shape == (5, 2)
    rows = [onp.flatnonzero((z == p).all(axis=1))[0] for p in picked]   # each is a row of z
    assert sorted(labels[rows]) == [0, 1, 2, 3, 4]


def test_kmeans_plus_plus_distinct_rows(rng):
    distinct = rng.standard_normal((4, 3))
    z = onp.tile(distinct, (10, 1))                   # 40 rows, only 4 distinct
    picked = kmeans_plus_plus(z, 4, rng)
    assert len({tuple(p) for p in picked}) == 4
    assert all((distinct == p).all(axis=1).any() for p in picked)
    more = kmeans_plus_plus(z, 6, rng)               # K > #distinct: repeats allowed
    assert more.shape == (6, 3) and len({tuple(p) for p in more}) == 4


def test_kmeans_finds_cluster_means(rng):
    z, labels, _ = blobs(rng)
    centres = kmeans(z, 5, rng, iters=5)
    means = onp.stack([z[labels == c].mean(axis=0) for c in range(5)])
    onp.testing.assert_allclose(centres[onp.argsort(centres[:, 0])], means, atol=1e-10)


def test_init_codebook_from_data(rng):
    z = rng.standard_normal((2, 4, 4, 3)).astype(onp.float32)
    flat = z.reshape(-1, 3)
    for method in ("random", "kmeans++", "kmeans"):
        cb = init_codebook_from_data(z, 6, rng, method=method)
        assert cb.shape == (6, 3) and cb.dtype == onp.float32
        if method != "kmeans":
            rows = [onp.flatnonzero((flat == c).all(axis=1)) for c in cb]
            assert all(len(r) == 1 for r in rows) and len({r[0] for r in rows}) == 6
    with pytest.raises(ValueError, match="method"):
        init_codebook_from_data(z, 6, rng, method="nope")


# ---------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("fn", [quantize, lambda cb, z: nearest_codes(z, cb)])
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
