"""Layers as stax-style `(init, apply)` pairs over nested-dict parameters.

Every constructor returns two functions:

    init(rng, in_shape) -> (out_shape, params)    in_shape excludes the batch axis
    apply(params, x)    -> y                      x includes the batch axis

Parameters are plain dicts/lists of float32 arrays, so `autograd.grad` returns
gradients of the same structure. Hyper-parameters (sizes, strides, masks) live in
the closures, never in `params`.

Initialisation follows PyTorch's defaults (kaiming_uniform with a=sqrt(5)): weights
and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), so results are comparable with the
PyTorch reference models.
"""
import autograd.numpy as np
import numpy as onp
from autograd.extend import defvjp, primitive

from .conv import conv2d, conv_output_size, conv_transpose2d, conv_transpose_output_size


def _uniform(rng, shape, fan_in, dtype=onp.float32):
    bound = 1.0 / onp.sqrt(fan_in)   # PyTorch: kaiming_uniform(a=sqrt(5)) gives gain/sqrt(3*fan_in) = 1/sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _mask_crop(mask, kernel_size, padding):
    """Where a fixed mask lets the kernel see: (rows, cols, padding) of the cropped conv, or None.

    The rows and columns of the kernel that the mask zeroes entirely contribute nothing, so
    they can be cut off and the padding on that side cut by as much: the conv of the
    cropped kernel over the input padded ((top, bottom), (left, right)) gives the same
    output. For a causal 7x7 mask that skips 3 of 7 rows, for 3x3 one of 3.
    """
    k = kernel_size
    seen = onp.broadcast_to(mask, onp.broadcast_shapes(mask.shape, (k, k, 1, 1))).any(axis=(2, 3))  # (k, k)
    if not seen.any():
        return None
    rows, cols = onp.flatnonzero(seen.any(axis=1)), onp.flatnonzero(seen.any(axis=0))
    top, bottom = padding - rows[0], padding - (k - 1 - rows[-1])
    left, right = padding - cols[0], padding - (k - 1 - cols[-1])
    if min(top, bottom, left, right) < 0:   # cropping would also have to cut the input: keep it simple
        return None
    return (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1),
            ((int(top), int(bottom)), (int(left), int(right))))


@primitive
def crop_kernel(w, rows, cols):
    """w[rows, cols] for slices rows, cols of the two kernel axes: (kh, kw, C, F) -> (h', w', C, F).

    A primitive for its VJP, the gradient written into a zero kernel: autograd's own
    getitem VJP scatters with np.add.at, several times slower.
    """
    return w[rows, cols]


def crop_kernel_vjp_w(ans, w, rows, cols):
    def vjp(g):
        grad = onp.zeros(w.shape, g.dtype)
        grad[rows, cols] = g
        return grad
    return vjp


defvjp(crop_kernel, crop_kernel_vjp_w)


def Conv2d(out_channels, kernel_size, stride=1, padding=0, mask=None):
    """Conv layer, x: (B, H, W, C) -> (B, Ho, Wo, out_channels).

    `mask` (optional, broadcastable to the HWIO weight) is fixed: apply uses
    `w * mask`, so masked weights get exactly zero gradient and are never edited.
    Kernel rows and columns the mask zeroes entirely are cropped away before the conv
    (see _mask_crop): same output, fewer multiplies.
    """
    k = kernel_size
    fixed_mask = None if mask is None else onp.asarray(mask, dtype=onp.float32)
    crop = None if mask is None else _mask_crop(fixed_mask, k, padding)

    def init(rng, in_shape):
        height, width, c_in = in_shape
        fan_in = k * k * c_in
        params = {"w": _uniform(rng, (k, k, c_in, out_channels), fan_in),
                  "b": _uniform(rng, (out_channels,), fan_in)}
        if fixed_mask is not None:
            onp.broadcast_shapes(fixed_mask.shape, params["w"].shape)   # fail early on a bad mask
        out_shape = (conv_output_size(height, k, stride, padding),
                     conv_output_size(width, k, stride, padding), out_channels)
        return out_shape, params

    def apply(params, x):
        if fixed_mask is None:
            return conv2d(x, params["w"], stride, padding) + params["b"]
        w = params["w"] * fixed_mask.astype(params["w"].dtype)
        if crop is None:
            return conv2d(x, w, stride, padding) + params["b"]
        rows, cols, cropped_padding = crop
        return conv2d(x, crop_kernel(w, rows, cols), stride, cropped_padding) + params["b"]

    return init, apply


def ConvTranspose2d(out_channels, kernel_size, stride=1, padding=0, output_padding=0):
    """Transposed conv (upsampling), x: (B, H, W, C) -> (B, (H-1)s - 2p + k + op, ..., out_channels).

    The weight is stored as conv2d's weight of the opposite direction, HWIO
    `(k, k, out_channels, C)`, and applied with `conv_transpose2d`.
    """
    k = kernel_size

    def init(rng, in_shape):
        height, width, c_in = in_shape
        fan_in = k * k * out_channels   # PyTorch computes fan_in from weight dim 1 (= out) for ConvTranspose
        params = {"w": _uniform(rng, (k, k, out_channels, c_in), fan_in),
                  "b": _uniform(rng, (out_channels,), fan_in)}
        out_shape = (conv_transpose_output_size(height, k, stride, padding, output_padding),
                     conv_transpose_output_size(width, k, stride, padding, output_padding),
                     out_channels)
        return out_shape, params

    def apply(params, x):
        return conv_transpose2d(x, params["w"], stride, padding, output_padding) + params["b"]

    return init, apply


def Dense(out_features):
    """Affine map on the last axis, x: (..., in) -> (..., out_features)."""
    def init(rng, in_shape):
        fan_in = in_shape[-1]
        params = {"w": _uniform(rng, (fan_in, out_features), fan_in),
                  "b": _uniform(rng, (out_features,), fan_in)}
        return tuple(in_shape[:-1]) + (out_features,), params

    def apply(params, x):
        return np.dot(x, params["w"]) + params["b"]

    return init, apply


@primitive
def gather_rows(table, indices):
    """table[indices]: table (K, D), integer indices (...) -> (..., D).

    The embedding lookup and the quantizer's codebook gather. A primitive for its VJP:
    autograd's own scatters with np.add.at, several times slower than the segment sum below.
    """
    return table[indices]


def gather_rows_vjp_table(ans, table, indices):
    # d table[k] = sum of the upstream rows g[n] with indices[n] == k: sort the rows by
    # index and add each run of equal indices with one reduceat.
    def vjp(g):
        flat = onp.asarray(indices).reshape(-1)
        order = onp.argsort(flat, kind="stable")
        sorted_indices = flat[order]
        starts = onp.flatnonzero(onp.r_[True, sorted_indices[1:] != sorted_indices[:-1]])
        grad = onp.zeros(table.shape, g.dtype)
        if flat.size:
            rows = g.reshape(flat.size, -1)[order]
            grad[sorted_indices[starts]] = onp.add.reduceat(rows, starts, axis=0)
        return grad
    return vjp


defvjp(gather_rows, gather_rows_vjp_table, None)


def Embedding(num_embeddings, dim):
    """Lookup table, integer indices (...) -> vectors (..., dim); table ~ N(0, 1) as in PyTorch."""
    def init(rng, in_shape):
        table = rng.standard_normal((num_embeddings, dim)).astype(onp.float32)
        return tuple(in_shape) + (dim,), {"table": table}

    def apply(params, indices):
        indices = onp.asarray(indices)
        if not onp.issubdtype(indices.dtype, onp.integer):
            raise ValueError(f"Embedding: indices must be integers, got dtype {indices.dtype}")
        if indices.size and (indices.min() < 0 or indices.max() >= num_embeddings):
            raise ValueError(f"Embedding: indices must lie in [0, {num_embeddings}), "
                             f"got range [{indices.min()}, {indices.max()}]")
        return gather_rows(params["table"], indices)

    return init, apply


@primitive
def relu(x):
    """max(x, 0) elementwise."""
    return onp.maximum(x, 0)


def relu_vjp_x(ans, x):
    # d relu / dx = 1 where the output is positive, 0 elsewhere (0 at the kink, as in PyTorch).
    return lambda g: g * (ans > 0)


defvjp(relu, relu_vjp_x)


def elementwise(fn):
    """A parameter-free layer applying `fn` to every entry."""
    def init(rng, in_shape):
        return tuple(in_shape), {}

    def apply(params, x):
        return fn(x)

    return init, apply


Relu = elementwise(relu)
Tanh = elementwise(np.tanh)
Sigmoid = elementwise(lambda x: 0.5 * (np.tanh(0.5 * x) + 1.0))   # overflow-free logistic


def Reshape(shape):
    """Reshape everything but the batch axis: (B, ...) -> (B, *shape)."""
    shape = tuple(shape)

    def init(rng, in_shape):
        if int(onp.prod(in_shape)) != int(onp.prod(shape)):
            raise ValueError(f"Reshape: cannot reshape {tuple(in_shape)} into {shape}")
        return shape, {}

    def apply(params, x):
        return np.reshape(x, (x.shape[0],) + shape)

    return init, apply


def Flatten():
    """(B, H, W, C) -> (B, H*W*C)."""
    def init(rng, in_shape):
        return (int(onp.prod(in_shape)),), {}

    def apply(params, x):
        return np.reshape(x, (x.shape[0], -1))

    return init, apply


def serial(*layers):
    """Compose layers left to right; params are a list, one entry per layer."""
    inits, applies = zip(*layers)

    def init(rng, in_shape):
        params = []
        for layer_init in inits:
            in_shape, layer_params = layer_init(rng, in_shape)
            params.append(layer_params)
        return in_shape, params

    def apply(params, x):
        for layer_apply, layer_params in zip(applies, params):
            x = layer_apply(layer_params, x)
        return x

    return init, apply


def Residual(*layers):
    """x + f(x) with f = serial(*layers); f must keep the shape."""
    body_init, body_apply = serial(*layers)

    def init(rng, in_shape):
        out_shape, params = body_init(rng, in_shape)
        if tuple(out_shape) != tuple(in_shape):
            raise ValueError(f"Residual: body maps {tuple(in_shape)} to {tuple(out_shape)}; "
                             f"a residual block must keep the shape")
        return out_shape, params

    def apply(params, x):
        return x + body_apply(params, x)

    return init, apply
