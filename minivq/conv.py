"""2-D convolution and its transpose as autograd primitives, channels last: the plain version.

Activations NHWC (B, H, W, C), weights HWIO (kh, kw, C, F), stride s, x_pad = x zero-padded:

    conv2d            y[n,i,j,f] = sum_{u,v,c} x_pad[n, s*i+u, s*j+v, c] w[u,v,c,f]
    conv_transpose2d  its adjoint in x: <conv2d(x, w), y> = <x, conv_transpose2d(y, w)>

im2col gathers every window of x_pad as a row, cols[(n,i,j), (u,v,c)] = x_pad[n, s*i+u, s*j+v, c],
so that with W = w as a (kh*kw*C, F) matrix each map is one matmul:

    forward      y  = cols(x) @ W        (B*Ho*Wo, kh*kw*C) @ (kh*kw*C, F)
    input grad   dx = col2im(g @ W^T)    (B*Ho*Wo, F) @ (F, kh*kw*C), rows added back onto their windows
    weight grad  dW = cols(x)^T @ g      (kh*kw*C, B*Ho*Wo) @ (B*Ho*Wo, F)

conv_transpose2d's forward is conv2d's input grad, its input grad conv2d's forward, its weight
grad conv2d's with x and g swapped. Raw NumPy (`onp`) bodies: the VJPs are first-order only.
minivq/fast_conv.py computes the same faster; minivq/backend.py picks one for the layers.
"""
import numpy as onp
from autograd.extend import defvjp, primitive


def conv_output_size(size, kernel, stride, padding):
    """Output length of a strided conv along one axis: floor((n + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_transpose_output_size(size, kernel, stride, padding, output_padding=0):
    """Output length of a transposed conv along one axis (PyTorch's formula)."""
    return (size - 1) * stride - 2 * padding + kernel + output_padding


def pad_sides(padding):
    """(top, bottom, left, right) from an int p (all four sides) or ((top, bottom), (left, right))."""
    return (padding,) * 4 if onp.ndim(padding) == 0 else (*padding[0], *padding[1])


def check_conv_args(name, x, w, stride, padding, output_padding=0):
    """(stride, (top, bottom, left, right), output shape) of `name` ('conv2d' or 'conv_transpose2d'), or a
    ValueError saying what was expected: x (or y) (B, H, W, C) and w (kh, kw, C_in, C_out) float, channels
    matching, int stride >= 1, padding >= 0 (conv2d: or ((top, bottom), (left, right))), output_padding < s."""
    conv, x_label = (True, "x") if name == "conv2d" else (False, "y")
    for label, arr, layout in ((x_label, x, "(B, H, W, C) (channels last)"), ("w", w, "(kh, kw, C_in, C_out)")):
        if not onp.issubdtype(getattr(arr, "dtype", object), onp.floating):
            raise ValueError(f"{name}: {label} must be a float32/float64 array, got {getattr(arr, 'dtype', type(arr))}")
        if arr.ndim != 4:
            raise ValueError(f"{name}: {label} must have shape {layout}, got {arr.ndim}-D shape {arr.shape}")
    if int(stride) != stride or stride < 1:
        raise ValueError(f"{name}: stride must be an integer >= 1, got {stride!r}")
    try:
        pads = tuple(int(p) for p in pad_sides(padding) if int(p) == p >= 0)
    except (TypeError, ValueError):
        pads = ()
    if len(pads) != 4 or (not conv and onp.ndim(padding) != 0):
        sides = " or ((top, bottom), (left, right)) of such integers" if conv else ""
        raise ValueError(f"{name}: padding must be an integer >= 0{sides}, got {padding!r}")
    ops = onp.broadcast_to(output_padding, 2)
    if not all(int(op) == op and 0 <= op < stride for op in ops):
        raise ValueError(f"{name}: output_padding must be an integer (or a pair) in [0, stride), "
                         f"got {output_padding!r} with stride {stride}")
    kh, kw, c_in, c_out = w.shape
    if x.shape[3] != (c_in if conv else c_out):
        raise ValueError(f"{name}: {x_label} has {x.shape[3]} channels but w of shape {w.shape} (kh, kw, C_in, "
                         f"C_out) needs {'C_in' if conv else 'C_out'}={x.shape[3]}")
    padded = (x.shape[1] + pads[0] + pads[1], x.shape[2] + pads[2] + pads[3])
    out = ((padded[0] - kh) // stride + 1, (padded[1] - kw) // stride + 1) if conv else tuple(
        conv_transpose_output_size(n, k, stride, padding, int(op)) for n, k, op in zip(x.shape[1:3], (kh, kw), ops))
    if min(out) < 1:
        raise ValueError(f"conv2d: kernel {kh}x{kw} is larger than the padded input {padded[0]}x{padded[1]}" if conv
                         else f"conv_transpose2d: output would be {out[0]}x{out[1]}; padding {padding} is too "
                         f"large for input {x.shape[1:3]} and kernel {kh}x{kw}")
    return int(stride), pads, (x.shape[0], *out, c_out if conv else c_in)


def _im2col(x, kh, kw, stride, pads):
    """cols[n,i,j,(u,v,c)] = x_pad[n, s*i+u, s*j+v, c]: (B, H, W, C) -> (B, Ho, Wo, kh*kw*C)."""
    top, bottom, left, right = pads
    x_pad = onp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), mode="constant")
    out_h, out_w = (x_pad.shape[1] - kh) // stride + 1, (x_pad.shape[2] - kw) // stride + 1
    cols = onp.empty((x.shape[0], out_h, out_w, kh, kw, x.shape[3]), x.dtype)   # (B, Ho, Wo, kh, kw, C)
    for u in range(kh):
        for v in range(kw):
            cols[:, :, :, u, v, :] = x_pad[:, u:u + stride * out_h:stride, v:v + stride * out_w:stride, :]
    return cols.reshape(x.shape[0], out_h, out_w, -1)                          # (B, Ho, Wo, kh*kw*C)


def _forward(x, w, stride, pads):
    """y = cols(x) @ W: (B, Ho, Wo, kh*kw*C) @ (kh*kw*C, F) -> (B, Ho, Wo, F)."""
    return _im2col(x, w.shape[0], w.shape[1], stride, pads) @ w.reshape(-1, w.shape[3])


def _input_grad(g, w, x_shape, stride, pads):
    """dx = col2im(g @ W^T), the padding cropped off: g (B, Ho, Wo, F) -> x_shape (B, H, W, C)."""
    kh, kw, c_in, c_out = w.shape
    batch, out_h, out_w, _ = g.shape
    top, bottom, left, right = pads
    cols = (g @ w.reshape(-1, c_out).T).reshape(batch, out_h, out_w, kh, kw, c_in)   # (B, Ho, Wo, kh, kw, C)
    dx_pad = onp.zeros((batch, x_shape[1] + top + bottom, x_shape[2] + left + right, c_in), cols.dtype)
    for u in range(kh):
        for v in range(kw):
            dx_pad[:, u:u + stride * out_h:stride, v:v + stride * out_w:stride, :] += cols[:, :, :, u, v, :]
    return dx_pad[:, top:top + x_shape[1], left:left + x_shape[2], :]


def _weight_grad(x, g, w_shape, stride, pads):
    """dW = cols(x)^T @ g: (kh*kw*C, B*Ho*Wo) @ (B*Ho*Wo, F) -> (kh, kw, C, F)."""
    cols = _im2col(x, w_shape[0], w_shape[1], stride, pads)                     # (B, Ho, Wo, kh*kw*C)
    return (cols.reshape(-1, cols.shape[3]).T @ g.reshape(-1, w_shape[3])).reshape(w_shape)


@primitive
def conv2d(x, w, stride=1, padding=0):
    """2-D cross-correlation, channels last, zero padding: x (B, H, W, C), w (kh, kw, C, F) -> y (B, Ho, Wo, F),

    y[n,i,j,f] = sum_{u,v,c} x_pad[n, s*i+u, s*j+v, c] w[u,v,c,f], Ho = (H + top + bottom - kh) // s + 1.
    `padding` is an int p (p on every side) or ((top, bottom), (left, right)): the PixelCNN's
    causal convolutions pad only above and to the sides.
    """
    stride, pads, _ = check_conv_args("conv2d", x, w, stride, padding)
    return _forward(x, w, stride, pads)


def conv2d_vjp_x(ans, x, w, stride=1, padding=0):
    """dx[n, s*i+u-top, s*j+v-left, c] += g[n,i,j,f] w[u,v,c,f]: col2im(g @ W^T)."""
    return lambda g: _input_grad(g, w, x.shape, stride, pad_sides(padding))


def conv2d_vjp_w(ans, x, w, stride=1, padding=0):
    """dw[u,v,c,f] = sum_{n,i,j} x_pad[n, s*i+u, s*j+v, c] g[n,i,j,f]: cols(x)^T @ g."""
    return lambda g: _weight_grad(x, g, w.shape, stride, pad_sides(padding))


defvjp(conv2d, conv2d_vjp_x, conv2d_vjp_w)


@primitive
def conv_transpose2d(y, w, stride=1, padding=0, output_padding=0):
    """Transposed convolution, the adjoint of conv2d with the same weights: y (B, Ho, Wo, F) -> x (B, H, W, C),

    x[n,a,b,c] = sum_{i,j,u,v,f} [s*i+u-p == a][s*j+v-p == b] y[n,i,j,f] w[u,v,c,f], w (kh, kw, C, F),
    H = (Ho - 1) * s - 2p + kh + op (PyTorch's formula). output_padding op (an int or (h, w), < s) adds
    the rows a strided conv2d may have dropped: conv_transpose2d(conv2d(x, w, s, p), w, s, p, op) has x's shape.
    """
    stride, pads, x_shape = check_conv_args("conv_transpose2d", y, w, stride, padding, output_padding)
    return _input_grad(y, w, x_shape, stride, pads)


def conv_transpose2d_vjp_y(ans, y, w, stride=1, padding=0, output_padding=0):
    """The adjoint of the adjoint: dy = conv2d(g, w)."""
    return lambda g: _forward(g, w, stride, pad_sides(padding))


def conv_transpose2d_vjp_w(ans, y, w, stride=1, padding=0, output_padding=0):
    """<conv_transpose2d(y, w), g> = <y, conv2d(g, w)>, so dw = cols(g)^T @ y."""
    return lambda g: _weight_grad(g, y, w.shape, stride, pad_sides(padding))


defvjp(conv_transpose2d, conv_transpose2d_vjp_y, conv_transpose2d_vjp_w)
