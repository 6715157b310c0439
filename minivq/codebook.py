"""Codebook care, plain NumPy: EMA updates, dead-code restarts, initialisation from data.

None of this needs a gradient. The EMA codebook (van den Oord et al. 2017, Appendix A.1)
replaces the codebook loss by moving averages of the encoder outputs each code is
assigned; dead-code restarts re-seed codes no output has chosen for a while; k-means++
(Arthur & Vassilvitskii 2007) or k-means starts the codes where the encoder's outputs
are. `codebook_care(config)` gives the VQ-VAE its (init_state, step_hook) pair for train().
"""
import numpy as onp

from .checks import check_indices, check_vectors
from .quantize import code_histogram, pairwise_sq_distances


def ema_init(codebook):
    """EMA state {'cluster_size': (K,), 'embed_sum': (K, d)} that reproduces codebook.

    haiku starts both averages at zero and relies on zero-debiased moving averages.
    Here every code starts as if it had been assigned exactly itself once
    (N_i = 1, m_i = e_i), so e_i = m_i / N_i needs no debiasing and a code that is
    never used keeps its initial value instead of drifting to zero.
    """
    codebook = onp.asarray(check_vectors(codebook, ("K", "d"), name="codebook"))
    return {"cluster_size": onp.ones(len(codebook), dtype=codebook.dtype),
            "embed_sum": codebook.copy()}


def ema_update(state, codebook, z_e_flat, indices, decay=0.99, eps=1e-5):
    """One EMA codebook step (paper Eq. 6-8 with Laplace smoothing); pure function.

    state: from `ema_init`; codebook: (K, d); z_e_flat: (N, d) encoder outputs (any
    (..., d) with indices (...) is flattened); indices: their nearest codes.
        N_i <- decay N_i + (1 - decay) n_i               n_i = #{j : k_j = i}   (Eq. 6)
        m_i <- decay m_i + (1 - decay) sum_{k_j = i} z_j                        (Eq. 7)
        N_i' = (N_i + eps) / (n + K eps) * n             n = sum_i N_i  (Laplace)
        e_i  = m_i / N_i'                                                       (Eq. 8)
    A code with N_i' = 0 (only possible with eps = 0) keeps codebook[i].
    decay = 0.99 is the paper's gamma; eps = 1e-5 only guards unused codes (as in haiku).
    Returns (new_codebook (K, d) in codebook's dtype, new_state); inputs are untouched.
    """
    num_codes, d = onp.shape(check_vectors(codebook, ("K", "d"), name="codebook"))
    z = onp.asarray(check_vectors(z_e_flat, (..., d), name="z_e_flat"))
    indices = check_indices(indices, num_codes, z.shape[:-1]).ravel()         # (N,)
    z = z.reshape(-1, d)                                                       # (N, d)
    if not 0.0 <= decay <= 1.0 or eps < 0.0:
        raise ValueError(f"need 0 <= decay <= 1 and eps >= 0, got decay={decay}, eps={eps}")
    counts = onp.bincount(indices, minlength=num_codes)                        # n_i, (K,)
    sums = onp.zeros((num_codes, d))
    onp.add.at(sums, indices, z)                                               # (K, d) sums
    cluster_size = decay * state["cluster_size"] + (1.0 - decay) * counts      # Eq. 6
    embed_sum = decay * state["embed_sum"] + (1.0 - decay) * sums              # Eq. 7
    n = cluster_size.sum()
    smoothed = (cluster_size + eps) / (n + num_codes * eps) * n                # Laplace smoothing
    used = smoothed > 0
    new_codebook = onp.array(codebook, copy=True)
    new_codebook[used] = embed_sum[used] / smoothed[used, None]                # Eq. 8
    dtype = new_codebook.dtype
    return new_codebook, {"cluster_size": cluster_size.astype(dtype),
                          "embed_sum": embed_sum.astype(dtype)}


def ema_reset_codes(state, codes, new_vectors):
    """EMA state with the rows `codes` restarted at new_vectors (N_i = 1, m_i = vector).

    codes: (R,) int; new_vectors: (R, d). Same convention as `ema_init`, so the next
    `ema_update` starts these codes from new_vectors. Returns new arrays.
    """
    codes = check_indices(codes, len(state["cluster_size"]), name="codes")
    cluster_size = state["cluster_size"].copy()
    embed_sum = state["embed_sum"].copy()
    cluster_size[codes] = 1.0
    embed_sum[codes] = new_vectors
    return {"cluster_size": cluster_size, "embed_sum": embed_sum}


def restart_dead_codes(codebook, steps_unused, indices, z_e_flat, rng, max_unused_steps=100):
    """Re-seed codes unused for max_unused_steps batches with encoder outputs.

    codebook: (K, d); steps_unused: (K,) int, consecutive batches each code went unused
    (start at zeros); indices: (...) codes of this batch; z_e_flat: (N, d) or (..., d)
    this batch's encoder outputs; rng: numpy Generator. Counters of used codes reset to
    0, of unused codes grow by 1; codes reaching max_unused_steps get distinct random
    rows of z_e_flat (with repeats only if more codes than rows) and a zero counter.
    The default of 100 batches lets a rarely chosen code survive normal fluctuation.
    Returns (new_codebook, new_steps_unused, restarted (R,) int64); inputs untouched.
    """
    num_codes, d = onp.shape(check_vectors(codebook, ("K", "d"), name="codebook"))
    z = onp.asarray(check_vectors(z_e_flat, (..., d), name="z_e_flat")).reshape(-1, d)   # (N, d)
    counts = code_histogram(indices, num_codes)
    if onp.shape(steps_unused) != (num_codes,) or max_unused_steps < 1:
        raise ValueError(f"need steps_unused of shape ({num_codes},) and max_unused_steps >= 1, "
                         f"got {onp.shape(steps_unused)} and {max_unused_steps}")
    steps = onp.where(counts > 0, 0, onp.asarray(steps_unused) + 1).astype(onp.int64)
    restarted = onp.flatnonzero(steps >= max_unused_steps).astype(onp.int64)
    new_codebook = onp.array(codebook, copy=True)
    if restarted.size:
        rows = rng.choice(len(z), size=restarted.size, replace=restarted.size > len(z))
        new_codebook[restarted] = z[rows]
        steps[restarted] = 0
    return new_codebook, steps, restarted


def codebook_care(config):
    """(init_state, step_hook) of a VQ-VAE config: EMA codebook and dead-code restarts.

    init_state(params) -> state: {'ema': ema_init(codebook)} when config['codebook_update']
    is 'ema', {'steps_unused': (K,) zeros} when config['restart_after'] > 0.
    step_hook(params, state, aux, batch, rng) -> (params, state), after each optimizer step:
    the EMA update, then restarts, from this step's aux z_e and indices (computed before the
    step, like the in-forward updates of the PyTorch/haiku references). Needs no gradient.
    """
    ema, restart_after = config["codebook_update"] == "ema", config["restart_after"]

    def init_state(params):
        state = {}
        if ema:
            state["ema"] = ema_init(params["quantizer"]["codebook"])
        if restart_after:
            state["steps_unused"] = onp.zeros(config["num_codes"], onp.int64)
        return state

    def step_hook(params, state, aux, batch, rng):
        codebook, z_e, indices = params["quantizer"]["codebook"], aux["z_e"], aux["indices"]
        state = dict(state)
        if ema:
            codebook, state["ema"] = ema_update(state["ema"], codebook, z_e, indices,
                                                config["ema_decay"], config["ema_eps"])
        if restart_after:
            codebook, state["steps_unused"], restarted = restart_dead_codes(
                codebook, state["steps_unused"], indices, z_e, rng, restart_after)
            if ema and restarted.size:
                state["ema"] = ema_reset_codes(state["ema"], restarted, codebook[restarted])
        return dict(params, quantizer=dict(params["quantizer"], codebook=codebook)), state

    return init_state, step_hook


def init_codebook_from_batch(model, params, x, rng, method=None):
    """Params of a VQ-VAE `model` with the codebook re-seeded from the encoder outputs of x, so that
    no code starts where no output reaches it. method: 'random', 'kmeans++' or 'kmeans'
    (init_codebook_from_data below); default config['codebook_init'], 'uniform' = keep."""
    method = model.config["codebook_init"] if method is None else method
    if method == "uniform":
        return params
    z_e = model.forward(params, x)["z_e"]                            # (B, h, w, d)
    codebook = init_codebook_from_data(z_e, model.config["num_codes"], rng, method)
    codebook = codebook.astype(params["quantizer"]["codebook"].dtype)
    return dict(params, quantizer=dict(params["quantizer"], codebook=codebook))


def _check_data(z, num_codes):
    """z (N, d) with N >= 1 as a float array, or ValueError; also num_codes >= 1."""
    z = onp.asarray(check_vectors(z, ("N", "d"), name="z"))
    if len(z) == 0:
        raise ValueError(f"z must hold at least one vector, got shape {z.shape}")
    if num_codes < 1:
        raise ValueError(f"number of codes must be >= 1, got {num_codes}")
    return z


def kmeans_plus_plus(z, num_codes, rng):
    """k-means++ seeding (Arthur & Vassilvitskii 2007): num_codes rows of z, (K, d).

    The first row is uniform; each next row is drawn with probability proportional to
    D(x)^2, its squared distance to the nearest row chosen so far, so picked rows
    (distance 0) are never picked again while unpicked distinct rows remain. Once
    every distinct row is taken, the rest are drawn uniformly (repeats).
    """
    z = _check_data(z, num_codes)
    chosen = [rng.integers(len(z))]
    # Exact differences, not the expanded form: a chosen row must get D^2 = 0 exactly.
    d2 = onp.sum((z - z[chosen[0]]) ** 2, axis=1)                              # (N,)
    for _ in range(num_codes - 1):
        total = d2.sum()
        pick = rng.choice(len(z), p=d2 / total) if total > 0 else rng.integers(len(z))
        chosen.append(pick)
        d2 = onp.minimum(d2, onp.sum((z - z[pick]) ** 2, axis=1))
    return z[onp.array(chosen)].copy()


def kmeans(z, num_codes, rng, iters=10):
    """Lloyd's k-means from a k-means++ start: cluster centres (K, d).

    Each iteration assigns every row of z (N, d) to its nearest centre and moves each
    centre to the mean of its rows; a centre with no rows stays where it is.
    """
    centres = kmeans_plus_plus(z, num_codes, rng)
    z = onp.asarray(z)
    for _ in range(iters):
        assign = onp.argmin(pairwise_sq_distances(centres, z), axis=1)         # (N,)
        counts = onp.bincount(assign, minlength=num_codes)                    # (K,)
        sums = onp.zeros_like(centres)
        onp.add.at(sums, assign, z)                                           # (K, d)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


def init_codebook_from_data(z, num_codes, rng, method="kmeans++", iters=10):
    """Codebook (K, d) in z's dtype from encoder outputs z (..., d).

    method: 'random' (distinct random rows, repeats only if K > N), 'kmeans++'
    (D^2 seeding) or 'kmeans' (k-means++ then `iters` Lloyd steps).
    """
    z = onp.asarray(z)
    if z.ndim >= 2:
        z = z.reshape(-1, z.shape[-1])                                        # (N, d)
    z = _check_data(z, num_codes)
    if method == "random":
        rows = rng.choice(len(z), size=num_codes, replace=num_codes > len(z))
        return z[rows].copy()
    if method == "kmeans++":
        return kmeans_plus_plus(z, num_codes, rng)
    if method == "kmeans":
        return kmeans(z, num_codes, rng, iters=iters)
    raise ValueError(f"method must be 'random', 'kmeans++' or 'kmeans', got {method!r}")
