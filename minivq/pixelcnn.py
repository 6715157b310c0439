"""PixelCNN: causal masks, the masked convolution, and the plain (reference) network.

van den Oord et al. 2016, "Pixel Recurrent Neural Networks", Sec. 3.4: a grid of code
indices (B, h, w) in raster order, p(x) = prod_{i,j} p(x[i,j] | x[<(i,j)]) (Eq. 1), so the
logits at (i, j) may see only earlier cells. A masked convolution multiplies its kernel by a
fixed causal mask; the first (mask A) also hides the centre. Config and loss: prior.py.

Plain network (the PyTorch course model):
    e (B, h, w, C) | conv 7x7 mask A | num_blocks x [ReLU, conv 3x3 mask B, + residual]
"""
import numpy as onp
from autograd.extend import defvjp, primitive

from . import backend
from .conv import pad_sides, pair
from .layers import Conv2d, Relu, Residual, serial


def causal_mask(kernel, mask_type):
    """(kh, kw, 1, 1) float32 raster-scan mask, broadcasting over the HWIO channels; kernel k or
    (kh, kw), odd. 1 on the rows above the centre and left of it on its row; mask 'A' (first
    layer) hides the centre, 'B' shows it. (1, k) is the row case of a 1 x L grid. One channel
    group: codes need no per-channel (R, G, B) order."""
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    try:
        kh, kw = pair(kernel)
        valid = all(int(k) == k >= 1 and k % 2 == 1 for k in (kh, kw))
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"a causal mask needs an odd kernel size k or (kh, kw), got {kernel!r}")
    mask = onp.zeros((int(kh), int(kw), 1, 1), onp.float32)
    mask[:kh // 2] = 1.0                                             # rows above
    mask[kh // 2, :kw // 2 + (mask_type == "B")] = 1.0              # left of (and for B, at) the centre
    return mask


def _mask_crop(mask, kernel_size, padding):
    """(rows, cols, padding) of the conv cropped to what the mask lets the kernel see, or None.

    Rows and columns the mask zeroes entirely are cut off, and the padding on that side by as
    much: the same output (a causal mask keeps the upper k//2 + 1 rows and drops the bottom padding).
    """
    (kh, kw), (top, bottom, left, right) = pair(kernel_size), pad_sides(padding)
    seen = onp.broadcast_to(mask, onp.broadcast_shapes(mask.shape, (kh, kw, 1, 1))).any(axis=(2, 3))  # (kh, kw)
    if not seen.any():
        return None
    rows, cols = onp.flatnonzero(seen.any(axis=1)), onp.flatnonzero(seen.any(axis=0))
    top, bottom = top - rows[0], bottom - (kh - 1 - rows[-1])
    left, right = left - cols[0], right - (kw - 1 - cols[-1])
    if min(top, bottom, left, right) < 0:   # cropping would also have to cut the input: keep it simple
        return None
    return (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1),
            ((int(top), int(bottom)), (int(left), int(right))))


@primitive
def crop_kernel(w, rows, cols):
    """w[rows, cols], (kh, kw, C, F) -> (h', w', C, F); a primitive whose VJP writes g into a
    zero kernel (autograd's getitem VJP scatters with np.add.at, several times slower)."""
    return w[rows, cols]


def crop_kernel_vjp_w(ans, w, rows, cols):
    def vjp(g):
        grad = onp.zeros(w.shape, g.dtype)
        grad[rows, cols] = g
        return grad
    return vjp


defvjp(crop_kernel, crop_kernel_vjp_w)


def MaskedConv2d(out_channels, kernel_size, mask, stride=1, padding=0):
    """Conv layer with a fixed mask (broadcastable to the HWIO weight), x: (B, H, W, C) -> (B, Ho,
    Wo, out_channels). apply uses `w * mask` (masked weights get zero gradient, never edited),
    cropped to the rows and columns the mask shows (same output, fewer multiplies)."""
    mask = onp.asarray(mask, dtype=onp.float32)
    crop = _mask_crop(mask, kernel_size, padding)
    conv_init, _ = Conv2d(out_channels, kernel_size, stride, padding)

    def init(rng, in_shape):
        out_shape, params = conv_init(rng, in_shape)
        onp.broadcast_shapes(mask.shape, params["w"].shape)   # fail early on a bad mask
        return out_shape, params

    def apply(params, x):
        w = params["w"] * mask.astype(params["w"].dtype)
        if crop is None:
            return backend.conv2d(x, w, stride, padding) + params["b"]
        rows, cols, cropped_padding = crop
        return backend.conv2d(x, crop_kernel(w, rows, cols), stride, cropped_padding) + params["b"]

    return init, apply


def same_padding(kernel):
    """(ph, pw) = (kh // 2, kw // 2): an odd kernel k or (kh, kw) keeps the grid size."""
    kh, kw = pair(kernel)
    return kh // 2, kw // 2


def PixelCNN(channels=64, num_blocks=6, first_kernel=7, kernel=3):
    """Plain PixelCNN body: embedded input e (B, h, w, C) -> features (B, h, w, C), 'same' size.
    Kernels k or (kh, kw), (1, k) for a 1 x L grid. Params: [mask-A conv, block, ...]."""
    return serial(
        MaskedConv2d(channels, first_kernel, causal_mask(first_kernel, "A"), padding=same_padding(first_kernel)),
        *[Residual(Relu, MaskedConv2d(channels, kernel, causal_mask(kernel, "B"), padding=same_padding(kernel)))
          for _ in range(num_blocks)])
