"""Encoding without gradients, fast: the settings of a forward-only pass and the nearest
codes in one pass. The fast backend's half of `backend.inference` and `backend.nearest_codes`.

A forward pass on plain arrays is not traced: autograd's primitives see no boxes and call
their raw NumPy bodies directly, so what is left to choose is how the work is cut.

- Larger im2col chunks (SETTINGS['chunk_bytes'], 32 MiB against training's 2 MiB): a
  forward pass has no backward GEMM waiting for the rows, and fewer, larger GEMMs spend
  less time starting and joining BLAS threads. Encoding 2,000 digits in batches of 500,
  default VQ-VAE, 2 BLAS threads, interleaved (the machine shared with other jobs): 0.27-0.29x
  the time of 2 MiB chunks at 32 MiB or unchunked, 0.42x at 8 MiB; with 1 BLAS thread
  2 MiB stayed best (32 MiB 1.2-1.3x), so chunks follow the thread count (forward_chunk_bytes).
- Sub-batches of the encoder through all layers (64 or 128 images, activations kept in
  cache): 1.2-1.6x slower than batches of 500 in the same run; not used.
- The nearest codes (Eq. 1) in one pass per chunk of vectors: argmin_k |z - e_k|^2 =
  argmin_k (|e_k|^2 - 2 z.e_k), since |z|^2 is the same for every k; one GEMM with -2 E^T
  (exact: a power of two), one add, one argmin, in the input's float type.
"""
import contextlib

import numpy as onp
from autograd.tracer import getval

from . import fast_conv, threads
from .checks import check_vectors

# Rows of z per distance chunk: 4096 x K=512 float32 scores are 8 MiB at most.
DISTANCE_ROWS = 4096
# im2col chunk of a forward-only pass with 2+ BLAS threads (see the module docstring).
FORWARD_CHUNK_BYTES = 2 ** 25


def forward_chunk_bytes():
    """The im2col chunk for a forward-only pass: FORWARD_CHUNK_BYTES with several BLAS
    threads, training's chunk with one (or when the thread count cannot be read)."""
    count = threads.get_blas_threads()
    return FORWARD_CHUNK_BYTES if count is not None and count > 1 else fast_conv.SETTINGS["chunk_bytes"]


@contextlib.contextmanager
def inference():
    """Run a block of forward passes (no gradients) with the forward-pass conv settings."""
    with fast_conv.configured(chunk_bytes=max(forward_chunk_bytes(), fast_conv.SETTINGS["chunk_bytes"])):
        yield


def nearest_codes(codebook, z_e):
    """quantize.nearest_codes, fast: k = argmin_j |z_e - e_j|^2 for every vector of z_e.

    codebook: (K, d), z_e: (..., d) -> int64 (...). Scores |e_j|^2 - 2 z.e_j (|z|^2 dropped),
    DISTANCE_ROWS vectors at a time; ties go to the lowest index.
    """
    codebook = onp.asarray(getval(check_vectors(codebook, ("K", "d"), name="codebook")))
    d = codebook.shape[1]
    z = onp.asarray(getval(check_vectors(z_e, (..., d), name="z_e")))
    dtype = onp.result_type(z, codebook)
    rows = z.reshape(-1, d)                                                # (N, d)
    minus_two_e_t = (-2 * codebook.T).astype(dtype)                        # (d, K)
    e_sq = onp.sum(codebook.astype(dtype) ** 2, axis=1)                    # (K,)
    indices = onp.empty(len(rows), onp.int64)
    scores = onp.empty((min(DISTANCE_ROWS, len(rows)), len(codebook)), dtype)
    for start in range(0, len(rows), DISTANCE_ROWS):
        chunk = rows[start:start + DISTANCE_ROWS]
        out = scores[:len(chunk)]
        onp.matmul(chunk, minus_two_e_t, out=out)                          # (n, K)
        out += e_sq
        onp.argmin(out, axis=1, out=indices[start:start + len(chunk)])
    return indices.reshape(z.shape[:-1])
