"""The vector quantizer of the VQ-VAE: nearest-code lookup, straight-through, its losses, usage.

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
(haiku/_src/nets/vqvae.py). Codebook care (EMA updates, dead-code restarts, k-means++)
lives in codebook.py.
"""
from collections import namedtuple

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from .checks import check_indices, check_vectors
from .layers import gather_rows
from .stopgrad import stop_gradient, straight_through

QuantizerOutput = namedtuple(
    "QuantizerOutput", ["z_q", "indices", "codebook_loss", "commitment_loss", "vq_loss"])
QuantizerOutput.__doc__ = """Result of `quantize`.

z_q: (..., d) straight-through output, value codebook[indices] (up to one rounding).
indices: (...) int64 index of the nearest code.
codebook_loss: scalar mean |sg[z_e] - e|^2 (trains the codebook only).
commitment_loss: scalar mean |z_e - sg[e]|^2, unweighted (trains the encoder only).
vq_loss: codebook_loss + beta * commitment_loss, the two extra terms of Eq. 3.
"""


def pairwise_sq_distances(codebook, z):
    """Squared Euclidean distances D[n, k] = |z_n - e_k|^2, differentiable in both.

    codebook: (K, d), z: (N, d) -> (N, K). Expanded as |z|^2 - 2 z E^T + |E|^2 so that
    no (N, K, d) array is built; may be slightly negative (~1e-7 relative) by rounding.
    """
    if np.ndim(z) != 2 or np.ndim(codebook) != 2 or np.shape(z)[1] != np.shape(codebook)[1]:
        raise ValueError(f"expected codebook (K, d) and z (N, d), got {np.shape(codebook)} "
                         f"and {np.shape(z)}")
    z_sq = np.sum(z ** 2, axis=1, keepdims=True)               # (N, 1)
    e_sq = np.sum(codebook ** 2, axis=1)[None, :]              # (1, K)
    return z_sq - 2.0 * np.dot(z, codebook.T) + e_sq            # (N, K)


def nearest_codes(codebook, z_e):
    """Index of the nearest code for every vector: k = argmin_j |z_e - e_j|^2 (Eq. 1).

    codebook: (K, d), z_e: (..., d) -> int64 (...). Ties go to the lowest index. Works
    on plain values (autograd boxes are unwrapped): an argmin carries no gradient.
    """
    codebook = getval(check_vectors(codebook, ("K", "d"), name="codebook"))
    d = codebook.shape[1]
    z = onp.asarray(getval(check_vectors(z_e, (..., d), name="z_e")))
    distances = pairwise_sq_distances(codebook, z.reshape(-1, d))           # (N, K)
    return onp.argmin(distances, axis=1).astype(onp.int64).reshape(z.shape[:-1])


def _mean(gap):
    """mean(gap^2) as sum / size: autograd's np.mean VJP would upcast float32 gradients to float64."""
    return np.sum(gap ** 2) / gap.size


def quantize(codebook, z_e, beta=0.25):
    """Quantize z_e to its nearest codes; return z_q, indices and the Eq. 3 VQ losses.

    codebook: (K, d) float; z_e: (..., d) float, e.g. (B, h, w, d) or (B, d).
    Returns a QuantizerOutput. Train with reconstruction_loss + out.vq_loss; the
    decoder gradient reaches z_e through z_q, the codebook only through codebook_loss.
    With the EMA codebook (codebook.ema_update) use reconstruction + beta * commitment_loss.
    beta = 0.25 is the paper's value (Sec. 3.2), robust over 0.1 to 2.0.
    """
    indices = nearest_codes(codebook, z_e)                      # (...)
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
    return onp.bincount(check_indices(indices, num_codes).ravel(), minlength=num_codes)


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
