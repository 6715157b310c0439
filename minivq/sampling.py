"""Sampling code grids from a PixelCNN prior, and the naive baselines it must beat.

Ancestral sampling follows the raster order of the prior's factorisation
(van den Oord et al. 2016, "Pixel Recurrent Neural Networks", Eq. 1): for each cell
(i, j), run the network, draw x[i,j] ~ softmax(logits[:, i, j] / T), write it into the
grid, move on. All n grids are drawn together, one batched forward pass per cell.

Only rows <= i can influence the logits of row i (every mask looks up or left, and the
zero padding below a cropped grid meets only masked-out weights), so the forward pass for
cell (i, j) runs on the grid cropped to its first i + 1 rows: about (h + 1) / (2h) of the
full work, i.e. 4/7 on a 7x7 grid. tests/test_sampling.py checks the result against a
full recompute at every cell.

The baselines the prior must beat live in baselines.py.
"""
import math

import numpy as onp

from .checks import check_finite, check_indices, check_labels


def _check_sampling_options(temperature, top_k):
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number > 0 (use greedy=True for the "
                         f"argmax path), got {temperature!r}")
    if top_k is not None and not (int(top_k) == top_k and top_k >= 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")


def sample_from_logits(logits, rng, temperature=1.0, top_k=None, greedy=False):
    """One draw per row of logits (n, K) -> int64 (n,): x ~ softmax(logits / T), top-k filtered.

    Draws by inverse CDF with one uniform per row from `rng` (numpy Generator), so the same
    seed gives the same samples. greedy=True returns the argmax (the T -> 0 limit) and
    uses no random numbers; top_k keeps the k largest logits (ties at the k-th kept too).
    NaN or inf logits raise ValueError (they would silently all draw code 0).
    """
    _check_sampling_options(temperature, top_k)
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
    """Draw n code grids (n, h, w) int64 from the prior, cell by cell in raster order.

    prior: the model of prior.build_prior; rng: numpy Generator (one uniform per grid per
    cell); temperature > 0 divides the logits; greedy=True takes the argmax; labels: (n,)
    ints for a conditional prior; codebook: (K, d) for a 'codes' prior; top_rows: (n, r, w)
    indices to keep fixed, sampling the remaining rows (completion).
    """
    config = prior.config
    for name, value in (("n", n), ("h", h), ("w", w)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(rng, onp.random.Generator):
        raise ValueError(f"rng must be a numpy Generator (onp.random.default_rng(seed)), "
                         f"got {type(rng).__name__}")
    if top_rows is None:
        top_rows = onp.zeros((n, 0, w), onp.int64)
    top_rows = check_indices(top_rows, config["num_codes"], (n, "r", w), name="top_rows")
    if top_rows.shape[1] >= h:
        raise ValueError(f"top_rows must leave rows to sample: r < {h}, got shape {top_rows.shape}")
    labels = check_labels(config, labels, n)
    if config["input_mode"] == "codes":
        shape = (config["num_codes"], config["code_dim"])
        if codebook is None or onp.shape(codebook) != shape:
            raise ValueError(f"a 'codes' prior needs the VQ-VAE codebook of shape {shape}, "
                             f"got {None if codebook is None else onp.shape(codebook)}")
    elif codebook is not None:
        raise ValueError("codebook is only used by a 'codes' prior; this one embeds indices")
    _check_sampling_options(temperature, top_k)

    grid = onp.zeros((n, h, w), onp.int64)
    grid[:, :top_rows.shape[1]] = top_rows
    for i in range(top_rows.shape[1], h):
        for j in range(w):
            rows = grid[:, :i + 1]                                   # (n, i+1, w): all that row i can see
            inputs = rows if codebook is None else codebook[rows]    # (n, i+1, w[, d])
            logits = prior.logits(params, inputs, labels)[:, i, j]   # (n, K)
            grid[:, i, j] = sample_from_logits(logits, rng, temperature, top_k, greedy)
    return grid
