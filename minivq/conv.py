"""2-D convolution and its transpose as autograd primitives, channels last: the plain version.

Activations NHWC (B, H, W, C), weights HWIO (kh, kw, C, F), x_pad = x zero-padded, stride s (or (sh, sw)):

    conv2d            y[n,i,j,f] = sum_{u,v,c} x_pad[n, s*i+u, s*j+v, c] w[u,v,c,f]
    conv_transpose2d  its adjoint in x: <conv2d(x, w), y> = <x, conv_transpose2d(y, w)>

im2col gathers every window of x_pad as a row, cols[(n,i,j), (u,v,c)] = x_pad[n, s*i+u, s*j+v, c],
so that with W = w as a (kh*kw*C, F) matrix each map is one matmul:

    forward      y  = cols(x) @ W        (B*Ho*Wo, kh*kw*C) @ (kh*kw*C, F)
    input grad   dx = col2im(g @ W^T)    (B*Ho*Wo, F) @ (F, kh*kw*C), rows added back onto their windows
    weight grad  dW = cols(x)^T @ g      (kh*kw*C, B*Ho*Wo) @ (B*Ho*Wo, F)

conv_transpose2d's forward is conv2d's input grad, its input grad conv2d's forward, its weight
grad conv2d's with x and g swapped. Raw NumPy: first-order VJPs, float64 output if x or w is.
fast_conv.py: the same, faster (backend.py picks). Argument checks: checks.check_conv_args.
"""
import numpy as onp
from autograd.extend import defvjp, primitive

from .checks import check_conv_args, first_order


def pair(value):
    """(a, b) from an int a (both axes) or a pair (a, b): per-axis (height, width) values."""
    return (value, value) if onp.ndim(value) == 0 else tuple(value)


def pad_sides(padding):
    """(top, bottom, left, right) from p (every side), (ph, pw) (per axis) or ((top, bottom), (left, right))."""
    return tuple(side for axis in pair(padding) for side in pair(axis))   # (before, after) of rows, then columns


def conv_output_size(size, kernel, stride, padding):
    """Output length of a strided conv along one axis: floor((n + 2p - k) / s) + 1, p or (before, after)."""
    return (size + sum(pair(padding)) - kernel) // stride + 1


def conv_transpose_output_size(size, kernel, stride, padding, output_padding=0):
    """Output length of a transposed conv along one axis (PyTorch's): (n - 1) s - 2p + k + op."""
    return (size - 1) * stride - sum(pair(padding)) + kernel + output_padding


def _im2col(x, kh, kw, strides, pads):
    """cols[n,i,j,(u,v,c)] = x_pad[n, sh*i+u, sw*j+v, c]: (B, H, W, C) -> (B, Ho, Wo, kh*kw*C)."""
    (sh, sw), (top, bottom, left, right) = strides, pads
    x_pad = onp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), mode="constant")
    out_h, out_w = (x_pad.shape[1] - kh) // sh + 1, (x_pad.shape[2] - kw) // sw + 1
    cols = onp.empty((x.shape[0], out_h, out_w, kh, kw, x.shape[3]), x.dtype)   # (B, Ho, Wo, kh, kw, C)
    for u in range(kh):
        for v in range(kw):
            cols[:, :, :, u, v, :] = x_pad[:, u:u + sh * out_h:sh, v:v + sw * out_w:sw, :]
    return cols.reshape(x.shape[0], out_h, out_w, -1)                          # (B, Ho, Wo, kh*kw*C)


def _forward(x, w, strides, pads):
    """y = cols(x) @ W: (B, Ho, Wo, kh*kw*C) @ (kh*kw*C, F) -> (B, Ho, Wo, F)."""
    return _im2col(x, w.shape[0], w.shape[1], strides, pads) @ w.reshape(-1, w.shape[3])


def _input_grad(g, w, x_shape, strides, pads):
    """dx = col2im(g @ W^T), the padding cropped off: g (B, Ho, Wo, F) -> x_shape (B, H, W, C)."""
    (kh, kw, c_in, c_out), (batch, out_h, out_w, _), (sh, sw) = w.shape, g.shape, strides
    top, bottom, left, right = pads
    cols = (g @ w.reshape(-1, c_out).T).reshape(batch, out_h, out_w, kh, kw, c_in)   # (B, Ho, Wo, kh, kw, C)
    dx_pad = onp.zeros((batch, x_shape[1] + top + bottom, x_shape[2] + left + right, c_in), cols.dtype)
    for u in range(kh):
        for v in range(kw):
            dx_pad[:, u:u + sh * out_h:sh, v:v + sw * out_w:sw, :] += cols[:, :, :, u, v, :]
    return dx_pad[:, top:top + x_shape[1], left:left + x_shape[2], :]


def _weight_grad(x, g, w_shape, strides, pads):
    """dW = cols(x)^T @ g: (kh*kw*C, B*Ho*Wo) @ (B*Ho*Wo, F) -> (kh, kw, C, F)."""
    cols = _im2col(x, w_shape[0], w_shape[1], strides, pads)                    # (B, Ho, Wo, kh*kw*C)
    return (cols.reshape(-1, cols.shape[3]).T @ g.reshape(-1, w_shape[3])).reshape(w_shape)


@primitive
def conv2d(x, w, stride=1, padding=0):
    """2-D cross-correlation, channels last, zero padding: x (B, H, W, C), w (kh, kw, C, F) -> y (B, Ho, Wo, F),

    y[n,i,j,f] = sum_{u,v,c} x_pad[n, sh*i+u, sw*j+v, c] w[u,v,c,f], Ho = (H + top + bottom - kh) // sh + 1;
    stride s or (sh, sw), padding p, (ph, pw) or ((top, bottom), (left, right)) (the PixelCNN pads one side).
    """
    strides, pads, _ = check_conv_args("conv2d", x, w, stride, padding)
    return _forward(x, w, strides, pads)


def conv2d_vjp_x(ans, x, w, stride=1, padding=0):
    """dx[n, sh*i+u-top, sw*j+v-left, c] += g[n,i,j,f] w[u,v,c,f]: col2im(g @ W^T)."""
    return lambda g: _input_grad(g, w, x.shape, pair(stride), pad_sides(padding))


def conv2d_vjp_w(ans, x, w, stride=1, padding=0):
    """dw[u,v,c,f] = sum_{n,i,j} x_pad[n, sh*i+u, sw*j+v, c] g[n,i,j,f]: cols(x)^T @ g."""
    return lambda g: _weight_grad(x, g, w.shape, pair(stride), pad_sides(padding))


defvjp(conv2d, *first_order(conv2d_vjp_x, conv2d_vjp_w))


@primitive
def conv_transpose2d(y, w, stride=1, padding=0, output_padding=0):
    """Transposed convolution, the adjoint of conv2d with the same weights: y (B, Ho, Wo, F) -> x (B, H, W, C),

    x[n,a,b,c] = sum_{i,j,u,v,f} [sh*i+u-top == a][sw*j+v-left == b] y[n,i,j,f] w[u,v,c,f], w (kh, kw, C, F),
    H = (Ho - 1) sh - top - bottom + kh + op (PyTorch's); output_padding op < stride (int or pair) restores
    the rows a strided conv2d dropped, so conv_transpose2d(conv2d(x, w, s, p), w, s, p, op) has x's shape.
    """
    strides, pads, x_shape = check_conv_args("conv_transpose2d", y, w, stride, padding, output_padding)
    return _input_grad(y, w, x_shape, strides, pads)


def conv_transpose2d_vjp_y(ans, y, w, stride=1, padding=0, output_padding=0):
    """The adjoint of the adjoint: dy = conv2d(g, w)."""
    return lambda g: _forward(g, w, pair(stride), pad_sides(padding))


def conv_transpose2d_vjp_w(ans, y, w, stride=1, padding=0, output_padding=0):
    """<conv_transpose2d(y, w), g> = <y, conv2d(g, w)>, so dw = cols(g)^T @ y."""
    return lambda g: _weight_grad(g, y, w.shape, pair(stride), pad_sides(padding))


defvjp(conv_transpose2d, *first_order(conv_transpose2d_vjp_y, conv_transpose2d_vjp_w))
