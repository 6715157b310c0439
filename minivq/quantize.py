"""The vector quantizer of the VQ-VAE: nearest-code lookup, its losses and codebook care.

Each encoder output vector z_e (the last axis, size d) is replaced by its nearest of K
codebook vectors e_k (van den Oord et al. 2017, "Neural Discrete Representation
Learning", arXiv 1711.00937, Eq. 1-2):

    k = argmin_j |z_e - e_j|^2,        z_q = e_k.

The argmin has no useful derivative, so the decoder's gradient is copied straight to
z_e (the straight-through estimator), and two extra terms train the codebook and keep
the encoder close to it (paper Eq. 3, sg[.] = stop_gradient):

    L = log p(x | z_q) + |sg[z_e] - e|^2 + beta |z_e - sg[e]|^2
                         codebook_loss     beta * commitment_loss

The ELBO would also contain KL(q(z|x) || p(z)). The posterior q(z = k | x) is one-hot
(deterministic argmin) and the prior is uniform over K codes during VQ-VAE training,
so KL = sum_k q_k log(q_k / (1/K)) = 1 * log(1 / (1/K)) = log K: a constant with zero
gradient, hence dropped (paper Sec. 3.1).

Both losses are means over all B*h*w*d elements, as in the haiku reference
(haiku/_src/nets/vqvae.py). Besides the loss, this file holds the plain-NumPy codebook
tools: usage metrics (perplexity), the EMA codebook update (paper Appendix A.1),
dead-code restarts, and k-means++ initialisation from data.
"""
from collections import namedtuple

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from minivq.layers import gather_rows
from minivq.stopgrad import stop_gradient, straight_through

QuantizerOutput = namedtuple(
    "QuantizerOutput", ["z_q", "indices", "codebook_loss", "commitment_loss", "vq_loss"])
QuantizerOutput.__doc__ = """Result of `quantize`.

z_q: (..., d) straight-through output, value codebook[indices] (up to one rounding).
indices: (...) int64 index of the nearest code.
codebook_loss: scalar mean |sg[z_e] - e|^2 (trains the codebook only).
commitment_loss: scalar mean |z_e - sg[e]|^2, unweighted (trains the encoder only).
vq_loss: codebook_loss + beta * commitment_loss, the two extra terms of Eq. 3.
"""


def _check_codebook(codebook):
    value = onp.asarray(getval(codebook))
    shape, dtype = value.shape, value.dtype
    if len(shape) != 2 or dtype.kind != "f":
        raise ValueError(f"codebook must be a float array of shape (K, d), got {dtype} {shape}")
    return shape


def _check_z_e(z_e, d, name="z_e"):
    """ValueError unless z_e is a finite float array of shape (..., d)."""
    value = onp.asarray(getval(z_e))
    if value.ndim < 1 or value.shape[-1] != d:
        raise ValueError(f"{name} must have shape (..., {d}) to match the codebook, "
                         f"got {value.shape}")
    if value.dtype.kind != "f":
        raise ValueError(f"{name} must be a float array of shape (..., {d}), "
                         f"got dtype {value.dtype}")
    if not onp.all(onp.isfinite(value)):
        raise ValueError(f"{name} of shape {value.shape} contains NaN or inf")
    return value


def _check_indices(indices, num_codes, shape=None):
    value = onp.asarray(indices)
    if value.dtype.kind not in "iu":
        raise ValueError(f"indices must be integers, got dtype {value.dtype}")
    if shape is not None and value.shape != tuple(shape):
        raise ValueError(f"indices must have shape {tuple(shape)}, got {value.shape}")
    if value.size and (value.min() < 0 or value.max() >= num_codes):
        raise ValueError(f"indices must lie in [0, {num_codes}), got range "
                         f"[{value.min()}, {value.max()}]")
    return value


def pairwise_sq_distances(z, codebook):
    """Squared Euclidean distances D[n, k] = |z_n - e_k|^2, differentiable in both.

    z: (N, d), codebook: (K, d) -> (N, K). Expanded as |z|^2 - 2 z E^T + |E|^2 so that
    no (N, K, d) array is built; may be slightly negative (~1e-7 relative) by rounding.
    """
    if np.ndim(z) != 2 or np.ndim(codebook) != 2 or np.shape(z)[1] != np.shape(codebook)[1]:
        raise ValueError(f"expected z (N, d) and codebook (K, d), got {np.shape(z)} "
                         f"and {np.shape(codebook)}")
    z_sq = np.sum(z ** 2, axis=1, keepdims=True)               # (N, 1)
    e_sq = np.sum(codebook ** 2, axis=1)[None, :]              # (1, K)
    return z_sq - 2.0 * np.dot(z, codebook.T) + e_sq            # (N, K)


def nearest_codes(z_e, codebook):
    """Index of the nearest code for every vector: k = argmin_j |z_e - e_j|^2 (Eq. 1).

    z_e: (..., d), codebook: (K, d) -> int64 (...). Ties go to the lowest index. Works
    on plain values (autograd boxes are unwrapped): an argmin carries no gradient.
    """
    num_codes, d = _check_codebook(codebook)
    z = _check_z_e(z_e, d)
    distances = pairwise_sq_distances(z.reshape(-1, d), getval(codebook))  # (N, K)
    return onp.argmin(distances, axis=1).astype(onp.int64).reshape(z.shape[:-1])


def _mean(gap):
    """mean(gap^2) as sum / size: autograd's np.mean VJP would upcast float32 gradients to float64."""
    return np.sum(gap ** 2) / gap.size


def quantize(codebook, z_e, beta=0.25):
    """Quantize z_e to its nearest codes; return z_q, indices and the Eq. 3 VQ losses.

    codebook: (K, d) float; z_e: (..., d) float, e.g. (B, h, w, d) or (B, d).
    Returns a QuantizerOutput. Train with reconstruction_loss + out.vq_loss; the
    decoder gradient reaches z_e through z_q, the codebook only through codebook_loss.
    With the EMA codebook (`ema_update`) use reconstruction + beta * commitment_loss.
    beta = 0.25 is the paper's value (Sec. 3.2), robust over 0.1 to 2.0.
    """
    _check_codebook(codebook)
    indices = nearest_codes(z_e, codebook)                      # (...)
    e = gather_rows(codebook, indices)                          # (..., d), grads reach used rows
    # Eq. 3, second term: moves the codes toward the encoder outputs; sg[z_e] holds z_e fixed.
    codebook_loss = _mean(stop_gradient(z_e) - e)
    # Eq. 3, third term: commits the encoder to its code; sg[e] holds the codebook fixed.
    commitment_loss = _mean(z_e - stop_gradient(e))
    vq_loss = codebook_loss + beta * commitment_loss
    # Eq. 3 / Sec. 3.2 straight-through: forward e, backward d z_q / d z_e = identity.
    z_q = straight_through(z_e, e)
    return QuantizerOutput(z_q, indices, codebook_loss, commitment_loss, vq_loss)


def VectorQuantizer(num_codes, code_dim, beta=0.25):
    """Stax-style quantizer layer: returns (init, apply) with apply -> QuantizerOutput.

    init(rng, in_shape) -> (in_shape, {'codebook': (K, d) float32}); in_shape excludes
    the batch and must end in code_dim. apply(params, z_e) = quantize(codebook, z_e, beta).
    """
    def init(rng, in_shape):
        if len(in_shape) < 1 or in_shape[-1] != code_dim:
            raise ValueError(f"VectorQuantizer expects input shape (..., {code_dim}), "
                             f"got {tuple(in_shape)}")
        # Codes start in a small box around the origin (+-1/K, as in the common PyTorch
        # ports), where a freshly initialised encoder's outputs also start.
        bound = 1.0 / num_codes
        codebook = rng.uniform(-bound, bound, size=(num_codes, code_dim)).astype(onp.float32)
        return tuple(in_shape), {"codebook": codebook}

    def apply(params, z_e):
        return quantize(params["codebook"], z_e, beta)

    return init, apply


# ----------------------------------------------------------------- usage metrics (NumPy)

def code_histogram(indices, num_codes):
    """Counts of each code: (num_codes,) int64 from indices of any shape."""
    return onp.bincount(_check_indices(indices, num_codes).ravel(), minlength=num_codes)


def perplexity(indices, num_codes):
    """exp(H(p)) of the code usage frequencies p: K for uniform use, 1 for a single code."""
    counts = code_histogram(indices, num_codes)
    if counts.sum() == 0:
        raise ValueError("perplexity needs at least one index, got an empty array")
    p = counts[counts > 0] / counts.sum()                      # 0 log 0 = 0
    return float(onp.exp(-onp.sum(p * onp.log(p))))


def used_codes(indices, num_codes):
    """Number of distinct codes that occur in indices."""
    return int(onp.count_nonzero(code_histogram(indices, num_codes)))


# ------------------------------------------------ EMA codebook (paper Appendix A.1, NumPy)

def ema_init(codebook):
    """EMA state {'cluster_size': (K,), 'embed_sum': (K, d)} that reproduces codebook.

    haiku starts both averages at zero and relies on zero-debiased moving averages.
    Here every code starts as if it had been assigned exactly itself once
    (N_i = 1, m_i = e_i), so e_i = m_i / N_i needs no debiasing and a code that is
    never used keeps its initial value instead of drifting to zero.
    """
    num_codes, _ = _check_codebook(codebook)
    codebook = onp.asarray(codebook)
    return {"cluster_size": onp.ones(num_codes, dtype=codebook.dtype),
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
    num_codes, d = _check_codebook(codebook)
    z = _check_z_e(z_e_flat, d, name="z_e_flat")
    indices = _check_indices(indices, num_codes, shape=z.shape[:-1]).ravel()   # (N,)
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
    codes = _check_indices(codes, len(state["cluster_size"]))
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
    num_codes, d = _check_codebook(codebook)
    z = _check_z_e(z_e_flat, d, name="z_e_flat").reshape(-1, d)               # (N, d)
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


# ------------------------------------------------------- codebook init from data (NumPy)

def _check_data(z, num_codes):
    z = onp.asarray(z)
    if z.ndim != 2 or z.shape[0] == 0 or z.dtype.kind != "f" or not onp.all(onp.isfinite(z)):
        raise ValueError(f"z must be a finite float array of shape (N, d), N >= 1, "
                         f"got {z.dtype} {z.shape}")
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
        assign = onp.argmin(pairwise_sq_distances(z, centres), axis=1)         # (N,)
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
