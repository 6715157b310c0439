"""Baselines: bits per code by hand, per-position marginals and their samples, bad grids."""
import math

import numpy as onp
import pytest

from minivq.baselines import (independent_bits, position_marginals, random_codebook_rows,
                              sample_independent, uniform_bits, unigram_bits)


def test_baseline_bits_by_hand():
    train = onp.array([[[0, 0], [0, 1]]])             # counts [3, 1]; add-one -> [4, 2] / 6
    test = onp.array([[[0, 1], [1, 1]]])
    expected = -(math.log2(4 / 6) + 3 * math.log2(2 / 6)) / 4
    assert unigram_bits(train, test, 2) == pytest.approx(expected, abs=1e-12)
    # per position, add-one: (0,0),(0,1),(1,0) saw a 0 -> p(0) = 2/3; (1,1) saw a 1 -> p(1) = 2/3
    expected = -(math.log2(2 / 3) + math.log2(1 / 3) + math.log2(1 / 3) + math.log2(2 / 3)) / 4
    assert independent_bits(train, test, 2) == pytest.approx(expected, abs=1e-12)
    assert uniform_bits(64) == 6.0


def test_position_marginals_and_independent_samples(rng):
    train = onp.array([[[0, 1]], [[0, 2]], [[0, 2]], [[0, 1]]])            # (4, 1, 2)
    onp.testing.assert_allclose(position_marginals(train, 3), [[[1, 0, 0], [0, 0.5, 0.5]]])
    samples = sample_independent(train, 3, 2000, rng)
    assert samples.shape == (2000, 1, 2) and samples.dtype == onp.int64
    assert (samples[:, 0, 0] == 0).all() and set(onp.unique(samples[:, 0, 1])) == {1, 2}
    assert abs((samples[:, 0, 1] == 1).mean() - 0.5) < 0.05


def test_random_codebook_rows(rng):
    codebook = onp.arange(12.0).reshape(4, 3)
    indices, rows = random_codebook_rows(codebook, 10, rng)
    onp.testing.assert_array_equal(rows, codebook[indices])
    assert indices.shape == (10,) and indices.min() >= 0 and indices.max() < 4


def test_baselines_reject_bad_grids():
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        unigram_bits(onp.array([[[0, 2]]]), onp.array([[[0, 1]]]), 2)
    with pytest.raises(ValueError, match=r"\(N, h, w\)"):
        independent_bits(onp.zeros((2, 2), int), onp.zeros((1, 2, 2), int), 2)
    with pytest.raises(ValueError, match="differ"):
        independent_bits(onp.zeros((1, 2, 2), int), onp.zeros((1, 3, 2), int), 2)
