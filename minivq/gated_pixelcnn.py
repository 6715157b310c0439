"""Gated PixelCNN body: vertical and horizontal stacks, no blind spot, optional class bias.

van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders", Sec. 2.
Each layer keeps two feature maps of shape (B, h, w, C), built from convolutions whose
kernels only cover the causal side (the paper's construction, written with zero padding
on one side instead of masks, so no multiply is spent on a masked-out weight):

    vertical   kernel (p+1, k), p = k//2: v[i, j] sees rows i-p .. i, columns j-p .. j+p
    horizontal kernel (1, p+1):           h[i, j] sees row i, columns j-p .. j

The vertical stack may see its own row; it reaches the horizontal stack only shifted
down by one row (the v -> h 1x1 link of Fig. 2), so h[i, j] gets rows < i from it, whole
rows within reach, right of column j included: no blind spot. The first layer shifts the
horizontal input right by one cell, so the current cell is excluded (the mask-A role):

    v_pre = conv_v(v)                         h_pre = conv_h(h') + 1x1(down(v_pre))
    h' = right(e) in the first layer, h later; v = h = e (embedded input) at the start

Gated unit (Eq. 2, with the class term of Eq. 4 as a per-class bias, V^T y for one-hot y):

    y = tanh(W_f * x + b_f[label]) . sigmoid(W_g * x + b_g[label])

The horizontal stack is residual (h <- h + 1x1(y)) except in the first layer, where a
residual from the input would leak the current cell.
"""
import autograd.numpy as np
import numpy as onp

from . import backend
from .conv import pair
from .layers import Conv2d


def shift_down(x):
    """Row i takes row i-1, row 0 zeros: (B, H, W, C) -> (B, H, W, C)."""
    return np.pad(x[:, :-1], ((0, 0), (1, 0), (0, 0), (0, 0)), mode="constant")


def shift_right(x):
    """Column j takes column j-1, column 0 zeros: (B, H, W, C) -> (B, H, W, C)."""
    return np.pad(x[:, :, :-1], ((0, 0), (0, 0), (1, 0), (0, 0)), mode="constant")


def StackConv(out_channels, kernel_shape, pad):
    """Conv with a (kh, kw) kernel after zero padding pad = (top, bottom, left, right).

    x: (B, H, W, C) -> (B, H + top + bottom - kh + 1, W + left + right - kw + 1, out);
    with the paddings below, the grid size is kept. Init as layers.Conv2d (PyTorch's
    U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
    """
    kh, kw = kernel_shape
    top, bottom, left, right = pad

    def init(rng, in_shape):
        height, width, c_in = in_shape
        bound = 1.0 / onp.sqrt(kh * kw * c_in)
        params = {"w": rng.uniform(-bound, bound, (kh, kw, c_in, out_channels)).astype(onp.float32),
                  "b": rng.uniform(-bound, bound, (out_channels,)).astype(onp.float32)}
        return (height + top + bottom - kh + 1, width + left + right - kw + 1, out_channels), params

    def apply(params, x):
        return backend.conv2d(x, params["w"], padding=((top, bottom), (left, right))) + params["b"]

    return init, apply


def vertical_conv(out_channels, kernel):
    """v[i, j] = sum over rows i-p..i, columns j-q..j+q (kernel k or (kh, kw), p = kh//2, q = kw//2):
    kernel (p+1, kw)."""
    kh, kw = pair(kernel)
    return StackConv(out_channels, (kh // 2 + 1, kw), (kh // 2, 0, kw // 2, kw // 2))


def horizontal_conv(out_channels, kernel):
    """h[i, j] = sum over row i, columns j-q..j (q = kw//2 of kernel k or (kh, kw)): kernel (1, q+1)."""
    kw = pair(kernel)[1]
    return StackConv(out_channels, (1, kw // 2 + 1), (0, 0, kw // 2, 0))


def gate(x):
    """tanh(x_f) * sigmoid(x_g) for x = [x_f, x_g] split on the last axis: (..., 2C) -> (..., C)."""
    channels = x.shape[-1] // 2
    x_f, x_g = x[..., :channels], x[..., channels:]
    return np.tanh(x_f) * 0.5 * (np.tanh(0.5 * x_g) + 1.0)   # sigmoid(a) = (tanh(a/2) + 1) / 2, overflow-free


def GatedLayer(channels, kernel, first, num_classes=None):
    """One gated layer, (v, h) each (B, h, w, C) -> (v, h); apply(params, v, h, labels=None).

    first=True shifts the horizontal input right (excludes the current cell) and drops the
    residual. With num_classes, params hold per-class biases (num_classes, 2C) for both
    stacks, initialised to zero so that training starts from the unconditional model.
    """
    vertical, horizontal = vertical_conv(2 * channels, kernel), horizontal_conv(2 * channels, kernel)
    v_to_h, h_out = Conv2d(2 * channels, 1), Conv2d(channels, 1)

    def init(rng, in_shape):
        pre_shape = tuple(in_shape[:2]) + (2 * channels,)
        params = {"v": vertical[0](rng, in_shape)[1], "h": horizontal[0](rng, in_shape)[1],
                  "v_to_h": v_to_h[0](rng, pre_shape)[1],
                  "h_out": h_out[0](rng, tuple(in_shape[:2]) + (channels,))[1]}
        if num_classes is not None:
            params["class_v"] = onp.zeros((num_classes, 2 * channels), onp.float32)
            params["class_h"] = onp.zeros((num_classes, 2 * channels), onp.float32)
        return tuple(in_shape[:2]) + (channels,), params

    def apply(params, v, h, labels=None):
        v_pre = vertical[1](params["v"], v)                                   # (B, h, w, 2C), rows <= i
        h_pre = horizontal[1](params["h"], shift_right(h) if first else h)    # row i, left of / up to j
        h_pre = h_pre + v_to_h[1](params["v_to_h"], shift_down(v_pre))        # + rows < i
        if num_classes is not None:
            v_pre = v_pre + params["class_v"][labels][:, None, None, :]       # (B, 2C) -> (B, 1, 1, 2C)
            h_pre = h_pre + params["class_h"][labels][:, None, None, :]
        h_new = h_out[1](params["h_out"], gate(h_pre))
        return gate(v_pre), h_new if first else h + h_new

    return init, apply


def GatedPixelCNN(channels=64, num_blocks=6, first_kernel=7, kernel=3, num_classes=None):
    """Gated PixelCNN body: embedded input e (B, h, w, C) -> horizontal-stack features (B, h, w, C).

    One first layer (first_kernel) then num_blocks layers (kernel); apply(params, e,
    labels=None) with labels (B,) int when num_classes is set. Params: a list of
    per-layer dicts {'v', 'h', 'v_to_h', 'h_out'[, 'class_v', 'class_h']}.
    """
    layers = [GatedLayer(channels, first_kernel, True, num_classes)]
    layers += [GatedLayer(channels, kernel, False, num_classes) for _ in range(num_blocks)]

    def init(rng, in_shape):
        params = [layer_init(rng, in_shape)[1] for layer_init, _ in layers]
        return tuple(in_shape[:2]) + (channels,), params

    def apply(params, e, labels=None):
        v, h = e, e
        for (_, layer_apply), layer_params in zip(layers, params):
            v, h = layer_apply(layer_params, v, h, labels)
        return h

    return init, apply
