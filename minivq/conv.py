"""2-D convolution and its transpose as autograd primitives, channels last.

Layout: activations NHWC `(B, H, W, C)`, weights HWIO `(kh, kw, C_in, C_out)`.

    conv2d:            y[n,i,j,f] = sum_{u,v,c} x_pad[n, s*i+u, s*j+v, c] * w[u,v,c,f]
    conv_transpose2d:  the adjoint of conv2d in x, i.e. <conv2d(x, w), y> = <x, conv_transpose2d(y, w)>

Both are computed by im2col: the windows of x are gathered as rows of a matrix
(one contiguous run of kh*kw*C values per output pixel in NHWC), and a single BLAS
matmul does all the arithmetic. The three maps we need:

    forward      y    = cols(x) @ W                     (B*Ho*Wo, kh*kw*C) @ (kh*kw*C, F)
    input grad   dx   = col2im(g @ W^T)                 scatter-add of rows back onto windows
    weight grad  dW   = cols(x)^T @ g                   (kh*kw*C, B*Ho*Wo) @ (B*Ho*Wo, F)

conv_transpose2d's forward is conv2d's input grad, so the same three maps give both
primitives and all four VJPs. The bodies are raw NumPy (`onp`); autograd only sees the
primitives.
"""
import numpy as onp
from autograd.extend import defvjp, primitive


def conv_output_size(size, kernel, stride, padding):
    """Output length of a strided conv along one axis: floor((n + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def conv_transpose_output_size(size, kernel, stride, padding, output_padding=0):
    """Output length of a transposed conv along one axis (PyTorch's formula)."""
    return (size - 1) * stride - 2 * padding + kernel + output_padding


def _check_args(name, x, w, stride, padding, x_label="x"):
    """Validate shapes and dtypes shared by both primitives; returns (stride, padding)."""
    for label, arr in ((x_label, x), ("w", w)):
        if not hasattr(arr, "dtype") or not onp.issubdtype(arr.dtype, onp.floating):
            raise ValueError(f"{name}: {label} must be a float32/float64 array, "
                             f"got {getattr(arr, 'dtype', type(arr).__name__)}")
    if x.ndim != 4:
        raise ValueError(f"{name}: {x_label} must have shape (B, H, W, C) (channels last), "
                         f"got {x.ndim}-D shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"{name}: w must have shape (kh, kw, C_in, C_out), got shape {w.shape}")
    if int(stride) != stride or stride < 1:
        raise ValueError(f"{name}: stride must be an integer >= 1, got {stride!r}")
    if int(padding) != padding or padding < 0:
        raise ValueError(f"{name}: padding must be an integer >= 0, got {padding!r}")
    return int(stride), int(padding)


def _windows(x_pad, kh, kw, stride, out_h, out_w):
    """Strided view of every conv window, no copy.

    x_pad: (B, Hp, Wp, C) -> view (B, Ho, Wo, kh, kw, C) with
    view[n,i,j,u,v,c] = x_pad[n, s*i+u, s*j+v, c].
    """
    sb, sh, sw, sc = x_pad.strides
    shape = (x_pad.shape[0], out_h, out_w, kh, kw, x_pad.shape[3])
    strides = (sb, stride * sh, stride * sw, sh, sw, sc)
    return onp.lib.stride_tricks.as_strided(x_pad, shape, strides, writeable=False)


def _pad(x, padding):
    if padding == 0:
        return x
    return onp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)), mode="constant")


def _im2col(x, kh, kw, stride, padding):
    """Rows of conv windows: x (B, H, W, C) -> cols (B*Ho*Wo, kh*kw*C), plus (Ho, Wo)."""
    out_h = conv_output_size(x.shape[1], kh, stride, padding)
    out_w = conv_output_size(x.shape[2], kw, stride, padding)
    windows = _windows(_pad(x, padding), kh, kw, stride, out_h, out_w)
    # (B, Ho, Wo, kh, kw, C) -> (B*Ho*Wo, kh*kw*C): one contiguous copy
    return windows.reshape(-1, kh * kw * x.shape[3]), out_h, out_w


def _col2im(cols, x_shape, kh, kw, stride, padding):
    """Adjoint of _im2col: scatter-add every window row back onto the image.

    cols: (B, Ho, Wo, kh, kw, C) -> (B, H, W, C); x_pad[n, s*i+u, s*j+v, c] += cols[n,i,j,u,v,c].
    """
    batch, height, width, channels = x_shape
    out_h, out_w = cols.shape[1], cols.shape[2]
    x_pad = onp.zeros((batch, height + 2 * padding, width + 2 * padding, channels), cols.dtype)
    for u in range(kh):
        for v in range(kw):
            x_pad[:, u:u + stride * out_h:stride, v:v + stride * out_w:stride, :] += cols[:, :, :, u, v, :]
    return x_pad[:, padding:padding + height, padding:padding + width, :]


def _conv_forward(x, w, stride, padding):
    kh, kw, c_in, c_out = w.shape
    cols, out_h, out_w = _im2col(x, kh, kw, stride, padding)
    y = cols @ w.reshape(kh * kw * c_in, c_out)          # (B*Ho*Wo, F)
    return y.reshape(x.shape[0], out_h, out_w, c_out)


def _conv_input_grad(g, w, x_shape, stride, padding):
    """d<g, conv2d(x, w)>/dx for g (B, Ho, Wo, F): returns (B, H, W, C)."""
    kh, kw, c_in, c_out = w.shape
    batch, out_h, out_w, _ = g.shape
    cols = g.reshape(-1, c_out) @ w.reshape(kh * kw * c_in, c_out).T   # (B*Ho*Wo, kh*kw*C)
    cols = cols.reshape(batch, out_h, out_w, kh, kw, c_in)
    return _col2im(cols, x_shape, kh, kw, stride, padding)


def _conv_weight_grad(x, g, w_shape, stride, padding):
    """d<g, conv2d(x, w)>/dw for x (B, H, W, C), g (B, Ho, Wo, F): returns w_shape."""
    kh, kw, c_in, c_out = w_shape
    cols, _, _ = _im2col(x, kh, kw, stride, padding)
    return (cols.T @ g.reshape(-1, c_out)).reshape(w_shape)   # (kh*kw*C, F) -> HWIO


@primitive
def conv2d(x, w, stride=1, padding=0):
    """2-D cross-correlation, channels last, zero padding.

    x: (B, H, W, C), w: (kh, kw, C, F) -> y: (B, Ho, Wo, F),
    Ho = (H + 2p - kh) // s + 1, and
    y[n,i,j,f] = sum_{u,v,c} x_pad[n, s*i+u, s*j+v, c] w[u,v,c,f].
    """
    stride, padding = _check_args("conv2d", x, w, stride, padding)
    kh, kw, c_in, _ = w.shape
    if x.shape[3] != c_in:
        raise ValueError(f"conv2d: x has {x.shape[3]} channels but w of shape {w.shape} "
                         f"expects (kh, kw, C_in={x.shape[3]}, C_out)")
    if kh > x.shape[1] + 2 * padding or kw > x.shape[2] + 2 * padding:
        raise ValueError(f"conv2d: kernel {kh}x{kw} is larger than the padded input "
                         f"{x.shape[1] + 2 * padding}x{x.shape[2] + 2 * padding}")
    return _conv_forward(x, w, stride, padding)


def conv2d_vjp_x(ans, x, w, stride=1, padding=0):
    return lambda g: _conv_input_grad(g, w, x.shape, stride, padding)


def conv2d_vjp_w(ans, x, w, stride=1, padding=0):
    return lambda g: _conv_weight_grad(x, g, w.shape, stride, padding)


defvjp(conv2d, conv2d_vjp_x, conv2d_vjp_w)


@primitive
def conv_transpose2d(y, w, stride=1, padding=0, output_padding=0):
    """Transposed convolution: the adjoint of conv2d with the same weight array.

    y: (B, Ho, Wo, F), w: (kh, kw, C, F) -> x: (B, H, W, C) with
    H = (Ho - 1) * s - 2p + kh + output_padding (PyTorch's formula; output_padding is
    an int or an (h, w) pair), and
    x[n,a,b,c] = sum_{i,j,u,v,f} [s*i+u-p == a][s*j+v-p == b] y[n,i,j,f] w[u,v,c,f].
    `output_padding` (< stride) adds the rows a strided conv2d may have dropped, so
    conv_transpose2d(conv2d(x, w, s, p), w, s, p, op) can return x's exact shape.
    """
    stride, padding = _check_args("conv_transpose2d", y, w, stride, padding, x_label="y")
    kh, kw, c_in, c_out = w.shape
    if y.shape[3] != c_out:
        raise ValueError(f"conv_transpose2d: y has {y.shape[3]} channels but w of shape {w.shape} "
                         f"expects (kh, kw, C_in, C_out={y.shape[3]})")
    op_h, op_w = (output_padding, output_padding) if onp.ndim(output_padding) == 0 else output_padding
    for op in (op_h, op_w):
        if int(op) != op or not 0 <= op < stride:
            raise ValueError(f"conv_transpose2d: output_padding must be an integer (or a pair) "
                             f"in [0, stride), got {output_padding!r} with stride {stride}")
    height = conv_transpose_output_size(y.shape[1], kh, stride, padding, int(op_h))
    width = conv_transpose_output_size(y.shape[2], kw, stride, padding, int(op_w))
    if height < 1 or width < 1:
        raise ValueError(f"conv_transpose2d: output would be {height}x{width}; "
                         f"padding {padding} is too large for input {y.shape[1:3]} and kernel {kh}x{kw}")
    return _conv_input_grad(y, w, (y.shape[0], height, width, c_in), stride, padding)


def conv_transpose2d_vjp_y(ans, y, w, stride=1, padding=0, output_padding=0):
    # The adjoint of the adjoint is conv2d itself.
    return lambda g: _conv_forward(g, w, stride, padding)


def conv_transpose2d_vjp_w(ans, y, w, stride=1, padding=0, output_padding=0):
    # <conv_transpose2d(y, w), g> = <y, conv2d(g, w)>, so dw is conv2d's weight grad at (g, y).
    return lambda g: _conv_weight_grad(g, y, w.shape, stride, padding)


defvjp(conv_transpose2d, conv_transpose2d_vjp_y, conv_transpose2d_vjp_w)
