"""The baselines a prior must beat, plain NumPy: bits per code and samples.

Uniform (log2 K bits), the global unigram, independent cells (one categorical per grid
position, add-alpha smoothed on the training grids), and random rows of a flat VQ-VAE's
codebook (one code per image). Grids are integer indices (N, h, w) in [0, K).
"""
import math

import numpy as onp

from .checks import check_indices

GRIDS = ("N", "h", "w")   # shape pattern of a stack of index grids


def position_marginals(indices, num_codes, alpha=0.0):
    """Per-position code frequencies p[i, j, k] from grids (N, h, w), add-alpha smoothed: (h, w, K)."""
    indices = check_indices(indices, num_codes, GRIDS, nonempty=True)
    one_hot = indices[..., None] == onp.arange(num_codes)           # (N, h, w, K)
    counts = one_hot.sum(axis=0) + alpha                            # (h, w, K)
    return counts / counts.sum(axis=-1, keepdims=True)


def sample_independent(train_indices, num_codes, n, rng):
    """n grids (n, h, w) int64 with every cell drawn independently from its position's marginal."""
    cdf = onp.cumsum(position_marginals(train_indices, num_codes), axis=-1)   # (h, w, K)
    u = rng.random((n,) + cdf.shape[:2])[..., None]                            # (n, h, w, 1)
    return onp.minimum((cdf[None] <= u).sum(axis=-1), num_codes - 1).astype(onp.int64)


def random_codebook_rows(codebook, n, rng):
    """Baseline for a flat VQ-VAE (one code per image): n uniformly chosen codebook rows.

    codebook: (K, d) -> (indices (n,) int64, rows (n, d)); decode the rows to get images.
    """
    codebook = onp.asarray(codebook)
    if codebook.ndim != 2 or len(codebook) == 0:
        raise ValueError(f"codebook must have shape (K, d), got {codebook.shape}")
    indices = rng.integers(0, len(codebook), size=n).astype(onp.int64)
    return indices, codebook[indices]


def uniform_bits(num_codes):
    """NLL of the uniform prior: log2 K bits per code."""
    return math.log2(num_codes)


def unigram_bits(train_indices, test_indices, num_codes, alpha=1.0):
    """Held-out bits per code of one global code distribution, add-alpha smoothed on train."""
    train_indices = check_indices(train_indices, num_codes, GRIDS, "train_indices", True)
    counts = onp.bincount(train_indices.ravel(), minlength=num_codes) + alpha         # (K,)
    test_indices = check_indices(test_indices, num_codes, GRIDS, "test_indices", True)
    return float(-onp.mean(onp.log2(counts[test_indices] / counts.sum())))


def independent_bits(train_indices, test_indices, num_codes, alpha=1.0):
    """Held-out bits per code of the independent-cells model (per-position marginals)."""
    p = position_marginals(train_indices, num_codes, alpha)                         # (h, w, K)
    test_indices = check_indices(test_indices, num_codes, GRIDS, "test_indices", True)
    if test_indices.shape[1:] != p.shape[:2]:
        raise ValueError(f"test grids {test_indices.shape[1:]} differ from train grids {p.shape[:2]}")
    rows, cols = onp.meshgrid(onp.arange(p.shape[0]), onp.arange(p.shape[1]), indexing="ij")
    return float(-onp.mean(onp.log2(p[rows, cols, test_indices])))                  # p[i, j, x[n,i,j]]
