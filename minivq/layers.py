"""Layers as stax-style pairs `init(rng, in_shape) -> (out_shape, params)` (in_shape without
the batch axis) and `apply(params, x) -> y`. Params are dicts/lists of float32 arrays, so
`autograd.grad` returns the same structure; sizes and strides live in the closures.
Init as PyTorch's defaults: weights and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
"""
import autograd.numpy as np
import numpy as onp
from autograd.extend import defvjp, primitive

from .checks import check_indices
from . import backend
from .conv import conv_output_size, conv_transpose_output_size, pad_sides, pair


def _uniform(rng, shape, fan_in, dtype=onp.float32):
    bound = 1.0 / onp.sqrt(fan_in)   # PyTorch: kaiming_uniform(a=sqrt(5)) gives gain/sqrt(3*fan_in) = 1/sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def Conv2d(out_channels, kernel_size, stride=1, padding=0):
    """Conv layer, x: (B, H, W, C) -> (B, Ho, Wo, out_channels); kernel_size, stride and
    padding as conv.conv2d's (per axis for a sequence (B, 1, L, C): (1, k), (1, s))."""
    (kh, kw), (sh, sw), (top, bottom, left, right) = pair(kernel_size), pair(stride), pad_sides(padding)

    def init(rng, in_shape):
        height, width, c_in = in_shape
        fan_in = kh * kw * c_in
        params = {"w": _uniform(rng, (kh, kw, c_in, out_channels), fan_in),
                  "b": _uniform(rng, (out_channels,), fan_in)}
        out_shape = (conv_output_size(height, kh, sh, (top, bottom)),
                     conv_output_size(width, kw, sw, (left, right)), out_channels)
        return out_shape, params

    def apply(params, x):
        return backend.conv2d(x, params["w"], stride, padding) + params["b"]

    return init, apply


def ConvTranspose2d(out_channels, kernel_size, stride=1, padding=0, output_padding=0):
    """Transposed conv, x: (B, H, W, C) -> (B, (H-1)s - 2p + k + op, ..., out_channels); the
    weight is the opposite conv2d's, HWIO (kh, kw, out_channels, C); arguments as in Conv2d."""
    (kh, kw), (sh, sw), (top, bottom, left, right) = pair(kernel_size), pair(stride), pad_sides(padding)
    op_h, op_w = pair(output_padding)

    def init(rng, in_shape):
        height, width, c_in = in_shape
        fan_in = kh * kw * out_channels   # PyTorch computes fan_in from weight dim 1 (= out) for ConvTranspose
        params = {"w": _uniform(rng, (kh, kw, out_channels, c_in), fan_in),
                  "b": _uniform(rng, (out_channels,), fan_in)}
        out_shape = (conv_transpose_output_size(height, kh, sh, (top, bottom), op_h),
                     conv_transpose_output_size(width, kw, sw, (left, right), op_w), out_channels)
        return out_shape, params

    def apply(params, x):
        return backend.conv_transpose2d(x, params["w"], stride, padding, output_padding) + params["b"]

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
    """table[indices]: table (K, D), integer indices (...) -> (..., D), the embedding lookup and
    codebook gather; a primitive because autograd's own VJP scatters with np.add.at (slower)."""
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
        return gather_rows(params["table"], check_indices(indices, num_embeddings))

    return init, apply


@primitive
def relu(x):
    """max(x, 0) elementwise."""
    return onp.maximum(x, 0)


def relu_vjp_x(ans, x):
    return lambda g: g * (ans > 0)   # 1 where the output is positive, 0 elsewhere (and at the kink)


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
