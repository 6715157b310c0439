"""conv2d and conv_transpose2d as in minivq/conv.py (same signatures, math and results), made fast.

Read minivq/conv.py first: the same three maps (forward cols(x) @ W, input grad, weight grad
cols(x)^T @ g), computed here with the tricks below. minivq/backend.py selects this module
by default. Layout: activations NHWC, weights HWIO (kh, kw, C_in, C_out).

What each trick buys (B=128, float32, 2 BLAS threads; the figures come from bench/README.md,
the ablation table of `python -m bench.ablations`, and the git log of minivq/conv.py, where
this code lived until the plain/fast split):

- Batch chunks (SETTINGS['chunk_bytes'], 2 MiB): each chunk of gathered rows is still in
  cache when its matmul reads it. Forward + both VJPs on the reference layers: 73 ms at
  2 MiB, 101 ms unchunked; training steps 12-40% slower at 512 KiB, 8 or 32 MiB (ablations).
- Scratch buffers (_scratch_array, SETTINGS['scratch_buffers']): padded inputs, im2col rows
  and GEMM products in reused per-thread buffers, no fresh multi-megabyte arrays for glibc
  to page-fault in: 16,600 -> 1,700 minor faults per VQ-VAE step; in a process that only
  trains, 89.7-89.9 ms per step against 119.5-120.9 ms with fresh arrays.
- Input grad by gather (_subpixel, Shi et al. 2016): each of the s*s output phases is a
  stride-1 correlation of g with a t x t sub-kernel, t = ceil(k/s), all from one GEMM over
  one gather of g. Per-axis strides (sh, sw) and kernels (kh, kw) take the same path with
  sh*sw phases and t_h x t_w sub-kernels (no fallback; the square case is unchanged). conv.py's col2im scatter stays where it copies fewer numbers (few
  channels: scatter_is_cheaper, a measured crossover; no step timing is recorded for it).
- Joint VJPs (conv2d_vjp, conv_transpose2d_vjp, SETTINGS['shared_dw']): asked for both
  gradients, conv2d takes dx and dw from one gather of g (_conv_grads) and a transposed conv
  shares one im2col of g: one gather of three saved, 4-9% per training step ("separate VJPs"
  ablation rows: 1.06 VQ-VAE, 1.09 prior). conv2d shares only where its dw then needs no
  extra multiplies (shared_dw_is_cheaper): the encoder's 4x4 stride-2 backward took 10.9 ms
  with that rule against 14.2 ms always sharing; about 1% of the step.
- One-channel im2col tap by tap (_im2col_chunks): a grey image's window row is too short a
  copy; the first conv's forward 0.84 -> 0.53 ms, its dw 1.04 -> 0.69 ms, the last
  transposed conv's backward 1.29 -> 0.93 ms.
- A 1x1 stride-1 conv uses the pixels as its rows, and unpadded x at stride 1 is its own
  space-to-depth grid: no copies (not timed on their own).

The bodies are raw NumPy (`onp`), so the VJPs are first-order only. Argument checks, output
sizes and padding sides come from minivq/conv.py.
"""
import contextlib
import threading

import numpy as onp
from autograd.extend import defvjp_argnums, primitive

from .checks import first_order
from .conv import check_conv_args, conv_output_size, conv_transpose_output_size, pad_sides, pair

__all__ = ["SETTINGS", "configured", "conv2d", "conv2d_vjp", "conv_transpose2d", "conv_transpose2d_vjp",
           "conv_output_size", "conv_transpose_output_size", "phase_range", "scatter_is_cheaper",
           "shared_dw_is_cheaper"]


# The knobs the ablations (bench/ablations.py) turn; change them with `configured(...)`.
SETTINGS = {
    # 2 MiB of im2col rows per batch chunk: small enough that a chunk is still in cache (2 MiB
    # of L2 per core here, 32 MiB of L3) when the matmul reads it, large enough that the matmul
    # splits well over 2 BLAS threads. Measured on the reference layers, 2 threads, B=128: forward
    # + both VJPs summed 73 ms at 2 MiB, 74 at 4, 95 at 0.5, 101 unchunked.
    "chunk_bytes": 2 ** 21,
    # True: temporaries live in reused per-thread buffers (_scratch_array); False: fresh arrays.
    "scratch_buffers": True,
    # conv2d's dx and dw from one gather of g when both are asked for: "auto" where
    # shared_dw_is_cheaper says so, "always" wherever dx takes the gather path, "never"
    # (each gradient on its own, the 'separate VJPs' ablation).
    "shared_dw": "auto",
}
_SHARED_DW_MODES = ("auto", "always", "never")


@contextlib.contextmanager
def configured(**changes):
    """Run a block with some SETTINGS changed, then restore them (for ablations and tests).

    e.g. `with fast_conv.configured(chunk_bytes=2 ** 19, shared_dw="never"): step(batch)`.
    The settings are module-wide, not per thread.
    """
    unknown = sorted(set(changes) - set(SETTINGS))
    if unknown:
        raise ValueError(f"configured: unknown setting(s) {unknown}; expected some of {sorted(SETTINGS)}")
    if changes.get("shared_dw", "auto") not in _SHARED_DW_MODES:
        raise ValueError(f"configured: shared_dw must be one of {_SHARED_DW_MODES}, got {changes['shared_dw']!r}")
    saved = dict(SETTINGS)
    SETTINGS.update(changes)
    try:
        yield
    finally:
        SETTINGS.update(saved)


def _batch_chunks(batch, bytes_per_image):
    """Slices of the batch axis, each about SETTINGS['chunk_bytes'] of gathered rows."""
    step = max(1, SETTINGS["chunk_bytes"] // bytes_per_image)
    return [slice(start, start + step) for start in range(0, batch, step)]


def _pad_or_crop(x, top, bottom, left, right):
    """Zero-pad (positive) or crop (negative) the two spatial sides of x (B, H, W, C).
    A padded copy is built in the 'padded' scratch buffer (see _scratch_array)."""
    x = x[:, max(-top, 0):x.shape[1] - max(-bottom, 0), max(-left, 0):x.shape[2] - max(-right, 0), :]
    if max(top, bottom, left, right) <= 0:
        return x
    shape = (x.shape[0], x.shape[1] + max(top, 0) + max(bottom, 0), x.shape[2] + max(left, 0) + max(right, 0),
             x.shape[3])
    out = _scratch_array("padded", shape, x.dtype)
    top, left = max(top, 0), max(left, 0)
    out[:, :top], out[:, top + x.shape[1]:] = 0, 0                            # the border
    out[:, top:top + x.shape[1], :left], out[:, top:top + x.shape[1], left + x.shape[2]:] = 0, 0
    out[:, top:top + x.shape[1], left:left + x.shape[2], :] = x
    return out


def _windows(x_pad, kh, kw, strides, out_h, out_w):
    """Strided view of every conv window, no copy.

    x_pad: (B, Hp, Wp, C) -> view (B, Ho, Wo, kh, kw, C) with
    view[n,i,j,u,v,c] = x_pad[n, sh*i+u, sw*j+v, c], strides (sh, sw).
    """
    (sh, sw), (byte_b, byte_h, byte_w, byte_c) = strides, x_pad.strides
    shape = (x_pad.shape[0], out_h, out_w, kh, kw, x_pad.shape[3])
    strides = (byte_b, sh * byte_h, sw * byte_w, byte_h, byte_w, byte_c)
    return onp.lib.stride_tricks.as_strided(x_pad, shape, strides, writeable=False)


_scratch = threading.local()


def _scratch_array(slot, shape, dtype):
    """An uninitialised array in this thread's reusable buffer `slot` (grown when too small).

    The temporaries of a primitive live here ('padded' input, im2col 'rows', GEMM 'product'
    before depth-to-space). As fresh arrays they cost more than the copies that fill them:
    glibc returns freed multi-megabyte blocks to the OS, so every new one page-faults
    (measured: 16,600 minor faults and 44 ms of system time per VQ-VAE training step at
    B=128; 1,700 faults and 5 ms with these buffers). Contents are valid until the next
    use of the same slot in the same thread; each buffer keeps the largest size it was
    asked for (a few MiB for the reference models, more for large padded inputs).
    """
    if not SETTINGS["scratch_buffers"]:
        return onp.empty(shape, dtype)
    nbytes = int(onp.prod(shape)) * onp.dtype(dtype).itemsize
    buffer = getattr(_scratch, slot, None)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = onp.empty(nbytes, onp.uint8)
        setattr(_scratch, slot, buffer)
    return buffer[:nbytes].view(dtype).reshape(shape)


def _im2col_chunks(x, kh, kw, strides, pads, out_h, out_w):
    """im2col one batch chunk at a time: yields (batch slice n, rows), rows (b*Ho*Wo, kh*kw*C),

    rows[(n,i,j), (u,v,c)] = x_pad[n, sh*i+u, sw*j+v, c] with x_pad = _pad_or_crop(x, *pads).
    x is padded once (a copy 1/(kh*kw) the size of the rows); the rows are gathered a chunk
    at a time into one reused scratch buffer, so each copy is still in cache for the matmul
    that reads it. A chunk's rows are overwritten by the next chunk's.
    """
    c_in = x.shape[3]
    chunks = _batch_chunks(x.shape[0], out_h * out_w * kh * kw * c_in * x.itemsize)
    if (kh, kw, *strides) == (1, 1, 1, 1) and not any(pads):
        for n in chunks:                       # a 1x1 conv's rows are the pixels themselves
            yield n, x[n].reshape(-1, c_in)    # a view when x is contiguous (read only)
        return
    windows = _windows(_pad_or_crop(x, *pads), kh, kw, strides, out_h, out_w)   # (B, Ho, Wo, kh, kw, C)
    for n in chunks:
        if c_in == 1:
            # One channel (grey images): a window row is only kw numbers, too short a copy.
            # Copy tap by tap instead, each a strided image of Wo-long rows, into (kh*kw, pixels),
            # and hand over its transpose, which BLAS reads as it is.
            taps = _scratch_array("rows", (kh, kw) + windows[n].shape[:3], x.dtype)
            onp.copyto(taps, windows[n][..., 0].transpose(3, 4, 0, 1, 2))
            yield n, taps.reshape(kh * kw, -1).T
            continue
        rows = _scratch_array("rows", windows[n].shape, x.dtype)
        onp.copyto(rows, windows[n])                                           # the copy
        yield n, rows.reshape(-1, kh * kw * c_in)


def _conv_forward(x, w, strides, pads):
    """y = cols(x) @ W: (B*Ho*Wo, kh*kw*C) @ (kh*kw*C, F) -> (B, Ho, Wo, F); pads (top, bottom, left, right)."""
    kh, kw, c_in, c_out = w.shape
    out_h = conv_output_size(x.shape[1], kh, strides[0], pads[:2])
    out_w = conv_output_size(x.shape[2], kw, strides[1], pads[2:])
    y = onp.empty((x.shape[0], out_h, out_w, c_out), onp.result_type(x, w))
    w_mat = w.reshape(kh * kw * c_in, c_out)
    for n, rows in _im2col_chunks(x, kh, kw, strides, pads, out_h, out_w):
        onp.matmul(rows, w_mat, out=y[n].reshape(-1, c_out))      # (b*Ho*Wo, F), written in place
    return y


def _conv_forward_and_weight_grad(x, w, g, strides, pads):
    """(conv2d(x, w), d<g, conv2d(x, w)>/dw) from one im2col of x: conv_transpose2d's two
    VJPs, which are exactly these two maps of its upstream gradient."""
    kh, kw, c_in, c_out = w.shape
    _, out_h, out_w, _ = g.shape
    y = onp.empty(g.shape[:3] + (c_out,), onp.result_type(x, w))
    w_mat = w.reshape(kh * kw * c_in, c_out)
    dw = onp.zeros((kh * kw * c_in, c_out), onp.result_type(x, g))
    for n, rows in _im2col_chunks(x, kh, kw, strides, pads, out_h, out_w):
        onp.matmul(rows, w_mat, out=y[n].reshape(-1, c_out))
        dw += rows.T @ g[n].reshape(-1, c_out)
    return y, dw.reshape(w.shape)


def _conv_weight_grad(x, g, w_shape, strides, pads):
    """d<g, conv2d(x, w)>/dw = cols(x)^T @ g, (kh*kw*C, B*Ho*Wo) @ (B*Ho*Wo, F) -> HWIO,
    summed over batch chunks."""
    kh, kw, c_in, c_out = w_shape
    _, out_h, out_w, _ = g.shape
    dw = onp.zeros((kh * kw * c_in, c_out), onp.result_type(x, g))
    for n, rows in _im2col_chunks(x, kh, kw, strides, pads, out_h, out_w):
        dw += rows.T @ g[n].reshape(-1, c_out)
    return dw.reshape(w_shape)


def _col2im(g, w, x_shape, strides, pads):
    """dx by scatter: cols = g @ W^T (B, Ho, Wo, kh, kw, C), then kh*kw strided adds
    x_pad[n, sh*i+u, sw*j+v, c] += cols[n,i,j,u,v,c]; crop the padding (only top and left matter)."""
    (kh, kw, c_in, c_out), (sh, sw) = w.shape, strides
    batch, out_h, out_w, _ = g.shape
    _, height, width, _ = x_shape
    top, _, left, _ = pads
    cols = g.reshape(-1, c_out) @ w.reshape(kh * kw * c_in, c_out).T   # (B*Ho*Wo, kh*kw*C)
    cols = cols.reshape(batch, out_h, out_w, kh, kw, c_in)
    x_pad = onp.zeros((batch, max(top + height, sh * (out_h - 1) + kh),
                       max(left + width, sw * (out_w - 1) + kw), c_in), cols.dtype)
    for u in range(kh):
        for v in range(kw):
            x_pad[:, u:u + sh * out_h:sh, v:v + sw * out_w:sw, :] += cols[:, :, :, u, v, :]
    return x_pad[:, top:top + height, left:left + width, :]


def _phase_kernels(w, strides):
    """conv2d's weights regrouped for the sub-pixel form of its transpose (see _subpixel).

    w (kh, kw, C, F) -> (t_h*t_w*F, sh*sw*C) with t_h = ceil(kh/sh), t_w = ceil(kw/sw) and,
    writing u = sh*m + r, v = sw*m' + r',
    out[(t_h-1-m, t_w-1-m', f), (r, r', c)] = w[sh*m+r, sw*m'+r', c, f]   (zero where u >= kh or v >= kw).
    """
    (kh, kw, c_in, c_out), (sh, sw) = w.shape, strides
    t_h, t_w = -(-kh // sh), -(-kw // sw)
    w = onp.pad(w, ((0, t_h * sh - kh), (0, t_w * sw - kw), (0, 0), (0, 0)), mode="constant")
    w = w.reshape(t_h, sh, t_w, sw, c_in, c_out)[::-1, :, ::-1]   # (m, r, m', r', C, F), m flipped
    # (m, r, m', r', C, F) -> (m, m', F, r, r', C): rows match a window of g, columns an output phase
    return w.transpose(0, 2, 5, 1, 3, 4).reshape(t_h * t_w * c_out, sh * sw * c_in)


def phase_range(size, kernel, stride, padding):
    """Phase rows q_lo..q_hi whose s output rows s*q+r cover x_pad rows [p, p+size), and t."""
    return padding // stride, -(-(padding + size) // stride), -(-kernel // stride)


def _subpixel(g, w, x_shape, strides, pads):
    """dx by gather (Shi et al. 2016, "Real-time single image and video super-resolution").

    Split each padded output row into a phase, a = sh*q + r with r in [0, sh) (columns
    likewise with sw). Only taps u = sh*m + r reach phase r, from input row i = q - m, so

        x_pad[n, sh*q+r, sw*q'+r', c] = sum_{m,m',f} g[n, q-m, q'-m', f] w[sh*m+r, sw*m'+r', c, f]:

    for every phase a stride-1 correlation of g with a flipped t_h x t_w kernel, t = ceil(k/s)
    per axis. All sh*sw phases read the same windows of g, so one GEMM gives them all:
        (B*Q*Q', t_h*t_w*F) @ (t_h*t_w*F, sh*sw*C) -> (B, Q, Q', sh, sw, C) -> depth-to-space -> crop.
    Square and non-square strides take the same path (sh == sw is the common case).
    """
    return _subpixel_grads(g, w, x_shape, strides, pads)[0]


def _subpixel_grads(g, w, x_shape, strides, pads, x=None):
    """_subpixel's dx, and with x also dw from the same rows of g (see _conv_grads)."""
    (kh, kw, c_in, c_out), (sh, sw) = w.shape, strides
    batch, out_h, out_w, _ = g.shape
    _, height, width, _ = x_shape
    top, _, left, _ = pads                     # x sits at rows top.., columns left.. of x_pad
    q_lo, q_hi, t_h = phase_range(height, kh, sh, top)
    r_lo, r_hi, t_w = phase_range(width, kw, sw, left)
    grid = (batch, q_hi - q_lo, sh, r_hi - r_lo, sw, c_in)   # x_pad rows [sh*q_lo, sh*q_hi) in sh x sw blocks
    top, left = top - sh * q_lo, left - sw * r_lo            # where x sits in that grid
    # rows q - m for q in [q_lo, q_hi), m in [0, t): g rows [q_lo - t + 1, q_hi), zeros outside g
    g_pads = (t_h - 1 - q_lo, q_hi - out_h, t_w - 1 - r_lo, r_hi - out_w)
    w_phases = _phase_kernels(w, strides)                                     # (t_h*t_w*F, sh*sw*C)
    x_pad = onp.empty((batch, grid[1] * sh, grid[3] * sw, c_in), onp.result_type(g, w))
    # depth-to-space as a view: (B, Q*sh, Q'*sw, C) -> (B, Q, sh, Q', sw, C) -> (B, Q, Q', sh, sw, C)
    phases = x_pad.reshape(grid).transpose(0, 1, 3, 2, 4, 5)
    if x is not None:
        # space-to-depth of x: X[n, q, q', r, r', c] = x_pad[n, sh*q+r, sw*q'+r', c], as rows
        x_grid = x
        if (top, left, grid[1] * sh, grid[3] * sw) != (0, 0, height, width):   # x must be padded
            x_grid = onp.zeros((batch, grid[1] * sh, grid[3] * sw, c_in), x.dtype)
            x_grid[:, top:top + height, left:left + width] = x
        # a view at stride 1 (x itself), one copy otherwise
        x_rows = x_grid.reshape(grid).transpose(0, 1, 3, 2, 4, 5).reshape(batch, -1, sh * sw * c_in)
        dw_phases = onp.zeros(w_phases.shape, onp.result_type(x, g))          # (t_h*t_w*F, sh*sw*C)
    for n, rows in _im2col_chunks(g, t_h, t_w, (1, 1), g_pads, grid[1], grid[3]):
        product = _scratch_array("product", (rows.shape[0], w_phases.shape[1]), x_pad.dtype)
        onp.matmul(rows, w_phases, out=product)                           # (b*Q*Q', sh*sw*C)
        phases[n] = product.reshape(phases[n].shape)                      # -> (b, Q, Q', sh, sw, C)
        if x is not None:
            dw_phases += rows.T @ x_rows[n].reshape(-1, sh * sw * c_in)
    dx = x_pad[:, top:top + height, left:left + width, :]
    return dx, (None if x is None else _phase_kernels_inverse(dw_phases, w.shape, strides))


def _phase_kernels_inverse(w_phases, w_shape, strides):
    """(t_h*t_w*F, sh*sw*C) -> (kh, kw, C, F): undoes _phase_kernels (taps u >= kh, v >= kw dropped)."""
    (kh, kw, c_in, c_out), (sh, sw) = w_shape, strides
    t_h, t_w = -(-kh // sh), -(-kw // sw)
    w = w_phases.reshape(t_h, t_w, c_out, sh, sw, c_in).transpose(0, 3, 1, 4, 5, 2)  # (m, r, m', r', C, F)
    w = w[::-1, :, ::-1].reshape(t_h * sh, t_w * sw, c_in, c_out)                 # m unflipped
    return onp.ascontiguousarray(w[:kh, :kw])


def _conv_input_grad(g, w, x_shape, strides, pads):
    """d<g, conv2d(x, w)>/dx for g (B, Ho, Wo, F): returns (B, H, W, C). Also conv_transpose2d.

    Two exact algorithms; the cheaper one is the one that copies fewer numbers per pixel:
    _col2im writes kh*kw*C per input pixel and scatters them with strided adds, _subpixel
    gathers t_h*t_w*F (t = ceil(k/s) per axis) per output pixel into a GEMM. The scatter wins
    only with few image channels (the first and last layers).
    """
    if scatter_is_cheaper(w.shape, strides):
        return _col2im(g, w, x_shape, strides, pads)
    return _subpixel(g, w, x_shape, strides, pads)


def scatter_is_cheaper(w_shape, stride):
    """True when _col2im beats _subpixel: kh*kw*C scattered numbers per input pixel against
    t_h*t_w*F gathered per output pixel; a gathered number costs about half a scattered one
    (measured crossover, OpenBLAS/AVX-512). stride: s or (sh, sw)."""
    (kh, kw, c_in, c_out), (sh, sw) = w_shape, pair(stride)
    return 2 * kh * kw * c_in < -(-kh // sh) * -(-kw // sw) * c_out


def _conv_grads(x, w, g, strides, pads):
    """(dx, dw) of <g, conv2d(x, w, stride, pads)>, both from the one gather of g that
    _subpixel makes; x needs no window gather, only a space-to-depth copy.

    Split the taps as _subpixel does, u = s*m + r, and cut x_pad into s x s blocks,
    X[n, q, q', r, r', c] = x_pad[n, s*q+r, s*q'+r', c]. Then tap u meets g at row q - m:

        dw[s*m+r, s*m'+r', c, f] = sum_{n,q,q'} X[n,q,q',r,r',c] g[n, q-m, q'-m', f],

    one GEMM over the rows G of g that the input grad uses, X^T (s*s*C, B*Q*Q') @ G,
    regrouped to (kh, kw, C, F) by the inverse of _phase_kernels. At stride 1, X is x.
    """
    return _subpixel_grads(g, w, x.shape, strides, pads, x=x)


def shared_dw_is_cheaper(x_shape, w_shape, stride, pads):
    """True when _conv_grads's dw, X^T @ G over the s x s blocks of x_pad, does no more
    multiplies than cols(x)^T @ g: (s*t)^2 taps per block against kh*kw per output pixel.

    At stride 1 the two are equal and sharing saves a gather of x. With a 4x4 kernel at
    stride 2, pad 1 on 14x14 the blocks cover 16x16 rows for 14x14 of x: 1.31x the
    multiplies, plus a padded space-to-depth copy of x: there the two gradients took 10.0 ms
    shared against 7.3 ms on their own (B=128, 32->64 channels, a one-off interleaved
    timing; `python -m bench.ablations`, row 'vqvae, always shared dw', times the step).
    """
    (kh, kw, _, _), (_, height, width, _), (sh, sw) = w_shape, x_shape, pair(stride)
    top, bottom, left, right = pads
    q_lo, q_hi, t_h = phase_range(height, kh, sh, top)
    r_lo, r_hi, t_w = phase_range(width, kw, sw, left)
    out_h = conv_output_size(height, kh, sh, (top, bottom))
    out_w = conv_output_size(width, kw, sw, (left, right))
    shared = (q_hi - q_lo) * (r_hi - r_lo) * t_h * t_w * sh * sw
    return shared <= out_h * out_w * kh * kw


@primitive
def conv2d(x, w, stride=1, padding=0):
    """minivq.conv.conv2d, fast: x (B, H, W, C), w (kh, kw, C, F) -> (B, Ho, Wo, F), stride s or (sh, sw),
    padding as minivq.conv.pad_sides reads it; chunked im2col into scratch buffers, one GEMM per chunk."""
    strides, pads, _ = check_conv_args("conv2d", x, w, stride, padding)
    return _conv_forward(x, w, strides, pads)


def conv2d_vjp(argnums, ans, args, kwargs):
    """conv2d's VJP for the arguments autograd asks for (0: x, 1: w), as a tuple in that order.

    Each on its own: dx by _conv_input_grad, dw = cols(x)^T @ g. Both at once, where the
    gather path is the input grad's better one and its dw costs no more multiplies than
    cols(x)^T @ g (or as SETTINGS['shared_dw'] says): one shared gather of g (_conv_grads).
    """
    x, w = args[:2]
    options = dict(zip(("stride", "padding"), args[2:]), **kwargs)
    strides, pads, mode = pair(options.get("stride", 1)), pad_sides(options.get("padding", 0)), SETTINGS["shared_dw"]
    each = (lambda g: _conv_input_grad(g, w, x.shape, strides, pads),
            lambda g: _conv_weight_grad(x, g, w.shape, strides, pads))
    share = mode == "always" or (mode == "auto" and shared_dw_is_cheaper(x.shape, w.shape, strides, pads))
    if share and not scatter_is_cheaper(w.shape, strides):
        return _argnums_vjp(argnums, each, lambda g: _conv_grads(x, w, g, strides, pads))
    return _argnums_vjp(argnums, each)


def _argnums_vjp(argnums, each, both=None):
    """A VJP returning the gradients for `argnums` (a subset of (0, 1)) as a tuple in that order:
    both(g) -> (d0, d1) when both are asked for and `both` is given, else each[argnum](g)."""
    if sorted(argnums) == [0, 1] and both is not None:
        return both if argnums[0] == 0 else (lambda g: both(g)[::-1])
    return lambda g: tuple(each[argnum](g) for argnum in argnums)


defvjp_argnums(conv2d, *first_order(conv2d_vjp))


@primitive
def conv_transpose2d(y, w, stride=1, padding=0, output_padding=0):
    """minivq.conv.conv_transpose2d, fast: y (B, Ho, Wo, F), w (kh, kw, C, F) -> (B, H, W, C), PyTorch's
    output size; computed as conv2d's input grad (_conv_input_grad: sub-pixel gather or col2im)."""
    strides, pads, x_shape = check_conv_args("conv_transpose2d", y, w, stride, padding, output_padding)
    return _conv_input_grad(y, w, x_shape, strides, pads)


def conv_transpose2d_vjp(argnums, ans, args, kwargs):
    """conv_transpose2d's VJP for the arguments asked for (0: y, 1: w), a tuple in that order.

    The adjoint of the adjoint is conv2d: dy = conv2d(g, w); and <conv_transpose2d(y, w), g> =
    <y, conv2d(g, w)>, so dw is conv2d's weight grad at (g, y), cols(g)^T @ y. Both read the
    windows of g: asked for together, they share one im2col of g.
    """
    y, w = args[:2]
    options = dict(zip(("stride", "padding", "output_padding"), args[2:]), **kwargs)
    strides, pads = pair(options.get("stride", 1)), pad_sides(options.get("padding", 0))
    each = (lambda g: _conv_forward(g, w, strides, pads),
            lambda g: _conv_weight_grad(g, y, w.shape, strides, pads))
    return _argnums_vjp(argnums, each, lambda g: _conv_forward_and_weight_grad(g, w, y, strides, pads))


defvjp_argnums(conv_transpose2d, *first_order(conv_transpose2d_vjp))
