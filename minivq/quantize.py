"""The vector quantizer of the VQ-VAE: nearest-code lookup, straight-through, its losses, usage.

Each encoder output vector z_e (last axis, size d) becomes its nearest of K codebook vectors
e_k (van den Oord et al. 2017, arXiv 1711.00937, Eq. 1-2): k = argmin_j |z_e - e_j|^2, z_q = e_k.
The argmin has no useful derivative, so the decoder's gradient is copied straight to z_e,
and two terms train the codebook and keep the encoder close to it (Eq. 3, sg = stop_gradient):

    L = log p(x | z_q) + |sg[z_e] - e|^2 + beta |z_e - sg[e]|^2
                         codebook_loss     beta * commitment_loss

The ELBO's KL(q(z|x) || p(z)) is dropped: a one-hot q against a uniform prior over K codes
gives KL = log K, a constant (Sec. 3.1). Both losses are means over all B*h*w*d elements,
as in haiku's vqvae.py. Codebook care (EMA, dead-code restarts, k-means++): codebook.py.
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
QuantizerOutput.__doc__ = """Result of `quantize`: z_q (..., d) straight-through output of value
codebook[indices]; indices (...) int64; codebook_loss mean |sg[z_e] - e|^2 (trains the codebook);
commitment_loss mean |z_e - sg[e]|^2, unweighted (trains the encoder); vq_loss = codebook_loss +
beta * commitment_loss."""


def pairwise_sq_distances(codebook, z):
    """D[n, k] = |z_n - e_k|^2, codebook (K, d), z (N, d) -> (N, K), as |z|^2 - 2 z E^T + |E|^2
    (no (N, K, d) array; may be slightly negative, ~1e-7 relative, by rounding)."""
    if np.ndim(z) != 2 or np.ndim(codebook) != 2 or np.shape(z)[1] != np.shape(codebook)[1]:
        raise ValueError(f"expected codebook (K, d) and z (N, d), got {np.shape(codebook)} "
                         f"and {np.shape(z)}")
    z_sq = np.sum(z ** 2, axis=1, keepdims=True)               # (N, 1)
    e_sq = np.sum(codebook ** 2, axis=1)[None, :]              # (1, K)
    return z_sq - 2.0 * np.dot(z, codebook.T) + e_sq            # (N, K)


def nearest_codes(codebook, z_e):
    """k = argmin_j |z_e - e_j|^2 (Eq. 1): codebook (K, d), z_e (..., d) -> int64 (...); ties go
    to the lowest index. Works on plain values: an argmin carries no gradient."""
    codebook = getval(check_vectors(codebook, ("K", "d"), name="codebook"))
    d = codebook.shape[1]
    z = onp.asarray(getval(check_vectors(z_e, (..., d), name="z_e")))
    distances = pairwise_sq_distances(codebook, z.reshape(-1, d))           # (N, K)
    return onp.argmin(distances, axis=1).astype(onp.int64).reshape(z.shape[:-1])


def _mean(gap):
    """mean(gap^2) as sum / size: autograd's np.mean VJP would upcast float32 gradients to float64."""
    return np.sum(gap ** 2) / gap.size


def quantize(codebook, z_e, beta=0.25):
    """Quantize z_e (..., d) to its nearest codes of codebook (K, d): a QuantizerOutput.

    Train with reconstruction + vq_loss (with the EMA codebook: + beta * commitment_loss).
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
    """Stax-style quantizer layer: init(rng, (..., code_dim)) -> (shape, {'codebook': (K, d)});
    apply(params, z_e) = quantize(codebook, z_e, beta), a QuantizerOutput."""
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
