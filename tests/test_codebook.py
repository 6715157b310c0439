"""Codebook care: EMA updates by hand and against cluster means, dead-code restarts, k-means++."""
import numpy as onp
import pytest

from minivq.codebook import (ema_init, ema_reset_codes, ema_update, init_codebook_from_data, kmeans,
                             kmeans_plus_plus, restart_dead_codes)
from minivq.quantize import nearest_codes

CODEBOOK = onp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
Z = onp.array([[0.9, 0.1], [0.0, 1.2]])


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
    idx = nearest_codes(codebook, z)
    idx[idx == 4] = 0                       # make sure code 4 is unused
    new_cb, _ = ema_update(ema_init(codebook), codebook, z, idx, decay=0.0, eps=0.0)
    for k in range(5):
        members = z[idx == k]
        expected = members.mean(axis=0) if len(members) else codebook[k]
        onp.testing.assert_allclose(new_cb[k], expected, atol=1e-12)


def test_ema_update_accepts_nhwc_and_keeps_dtype(rng):
    codebook = rng.standard_normal((4, 2)).astype(onp.float32)
    z = rng.standard_normal((2, 3, 3, 2)).astype(onp.float32)
    idx = nearest_codes(codebook, z)
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
