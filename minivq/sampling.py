"""Sampling code grids from a PixelCNN prior, cell by cell in raster order.

Ancestral sampling (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", Eq. 1):
for each cell (i, j), run the network on all n grids at once, draw x[i,j] ~
softmax(logits[:, i, j] / T), write it in, move on. Row i sees only rows <= i (the masks
look up or left), so the pass for cell (i, j) runs on the first i + 1 rows: 4/7 of the
work on a 7x7 grid. The baselines the prior must beat: baselines.py.
"""
import math

import numpy as onp

from .checks import check_finite, check_sampling_grids, check_sampling_options


def sample_from_logits(logits, rng, temperature=1.0, top_k=None, greedy=False):
    """One draw per row of logits (n, K) -> int64 (n,): x ~ softmax(logits / T), by inverse CDF
    with one uniform per row from rng. greedy=True: the argmax (T -> 0), no random numbers;
    top_k keeps the k largest logits (ties at the k-th too). NaN/inf logits raise ValueError."""
    check_sampling_options(temperature, top_k)
    logits = onp.asarray(logits, onp.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (n, K), got {logits.shape}")
    check_finite(logits, "logits", "a NaN/inf logit has no probability to draw from (are the "
                                   "prior's weights finite? check its checkpoint)")
    num_codes = logits.shape[1]
    if greedy:
        return onp.argmax(logits, axis=1).astype(onp.int64)
    scaled = logits / temperature
    if top_k is not None and top_k < num_codes:
        kth_largest = onp.partition(scaled, num_codes - top_k, axis=1)[:, num_codes - top_k, None]  # (n, 1)
        scaled = onp.where(scaled >= kth_largest, scaled, -onp.inf)
    p = onp.exp(scaled - scaled.max(axis=1, keepdims=True))       # unnormalised, max entry 1
    cdf = onp.cumsum(p, axis=1)                                     # (n, K)
    u = rng.random(len(logits))[:, None] * cdf[:, -1:]             # (n, 1), uniform on [0, total)
    return onp.minimum((cdf <= u).sum(axis=1), num_codes - 1).astype(onp.int64)  # first k with cdf > u


def sample_grids(prior, params, n, h, w, rng, temperature=1.0, top_k=None, labels=None,
                 codebook=None, greedy=False, top_rows=None):
    """Draw n code grids (n, h, w) int64 from prior (prior.build_prior) in raster order.

    rng: numpy Generator; labels: (n,) for a conditional prior; codebook: (K, d) for a 'codes'
    prior; top_rows: (n, r, w) indices kept fixed, the rows below sampled (completion).
    """
    top_rows, labels = check_sampling_grids(prior.config, n, h, w, rng, top_rows, labels, codebook)
    check_sampling_options(temperature, top_k)
    grid = onp.zeros((n, h, w), onp.int64)
    grid[:, :top_rows.shape[1]] = top_rows
    for i in range(top_rows.shape[1], h):
        for j in range(w):
            rows = grid[:, :i + 1]                                   # (n, i+1, w): all that row i can see
            inputs = rows if codebook is None else codebook[rows]    # (n, i+1, w[, d])
            logits = prior.logits(params, inputs, labels)[:, i, j]   # (n, K)
            grid[:, i, j] = sample_from_logits(logits, rng, temperature, top_k, greedy)
    return grid
