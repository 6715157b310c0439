"""conv2d / conv_transpose2d of both backends: hand-computed numbers, loop oracles, adjointness, gradients.

Every test that takes the `conv` fixture runs on minivq.conv (plain) and minivq.fast_conv
(fast), through their public names only. Evidence, in order: (1) tiny cases with the
numbers written out, (2) the primitives against naive loops kept here, and
conv_transpose2d as the exact adjoint of conv2d, (3) finite-difference gradient checks,
plus the hand VJPs against autograd's own derivative of a slow autograd.numpy conv,
(4) plain against fast on random cases. torch, when installed, is a last cross-check.
The tests of fast_conv's own machinery (its two input-grad algorithms, joint VJPs, batch
chunks, scratch buffers) are in test_fast_conv.py.
"""
import autograd.numpy as np
import numpy as onp
import pytest
from autograd import grad, make_vjp
from autograd.test_util import check_grads

from minivq import conv as plain_conv
from minivq import fast_conv
from minivq.conv import conv_output_size, conv_transpose_output_size

# (kernel, stride, padding, H, W): kernels 1..4, strides 1..3, paddings 0..2, odd and
# non-square images; every case keeps the kernel within the padded input.
CASES = [
    (1, 1, 0, 5, 5),
    (1, 2, 1, 6, 5),
    (2, 1, 0, 4, 7),
    (2, 2, 1, 5, 6),
    (3, 1, 1, 7, 5),
    (3, 2, 0, 7, 8),
    (3, 3, 2, 5, 4),
    (4, 2, 1, 8, 7),
    (4, 1, 2, 3, 6),
    (4, 3, 1, 9, 5),
    (1, 1, 2, 4, 3),   # padding >= kernel: the output is larger than the input
    (2, 1, 2, 3, 4),
]
# (C_in, C_out): in fast_conv few image channels send the input gradient down the scatter
# path, many down the gather path; both must be exercised.
CHANNELS = [(3, 2), (1, 8)]
DTYPE_TOL = {onp.float32: 1e-5, onp.float64: 1e-12}
# One-sided padding ((top, bottom), (left, right)): the PixelCNN's cropped causal kernels.
ONE_SIDED_CASES = [
    (3, 1, ((1, 0), (1, 1)), 5, 6),    # a 3x3 mask-B kernel cropped to its 2 causal rows, padded above
    (2, 1, ((1, 0), (1, 1)), 4, 5),
    (4, 2, ((2, 1), (0, 3)), 7, 6),
    (3, 2, ((0, 2), (2, 0)), 5, 5),
    (1, 1, ((0, 1), (2, 0)), 3, 4),
]
# Per-axis kernels (kh, kw), strides (sh, sw) and paddings (ph, pw): a sequence is a 1 x L
# image with (1, k) kernels and (1, s) strides; the others mix every axis difference.
NON_SQUARE_CASES = [
    ((1, 4), (1, 2), (0, 1), 1, 12),   # the sequence encoder's downsampling
    ((1, 3), (1, 1), (0, 1), 1, 7),    # its residual convs
    ((1, 5), (1, 3), (0, 2), 1, 11),
    ((2, 3), (1, 2), (1, 0), 5, 8),
    ((3, 1), (2, 1), (1, 0), 7, 4),
    ((4, 2), (3, 2), (2, 1), 8, 7),
    ((3, 4), (2, 3), 1, 6, 9),
    ((2, 5), (2, 2), ((1, 0), (2, 1)), 5, 7),
    ((1, 1), (2, 3), 0, 5, 7),
]


def axes(value):
    """(height, width) of an int (both axes) or a pair: the per-axis form of a kernel size or stride."""
    return (value, value) if onp.ndim(value) == 0 else tuple(value)


def sides(padding):
    """(top, bottom, left, right) of an int, a per-axis pair (ph, pw) or ((top, bottom), (left, right))."""
    return tuple(side for axis in axes(padding) for side in axes(axis))


def transpose_fits(kernel, stride, padding, height, width):
    """conv_transpose2d of a height x width input has a non-empty output."""
    (kh, kw), (sh, sw), (top, bottom, left, right) = axes(kernel), axes(stride), sides(padding)
    return (height - 1) * sh + kh > top + bottom and (width - 1) * sw + kw > left + right


# conv_transpose2d reads (H, W) as its input; keep the cases with a non-empty output.
TRANSPOSE_CASES = [case for case in CASES if transpose_fits(*case)]
NON_SQUARE_TRANSPOSE_CASES = [case for case in NON_SQUARE_CASES + ONE_SIDED_CASES if transpose_fits(*case)]


@pytest.fixture(params=[plain_conv, fast_conv], ids=["plain", "fast"])
def conv(request):
    """The conv module under test: minivq.conv (plain) or minivq.fast_conv (fast)."""
    return request.param


# ---------------------------------------------------------------- oracles (slow, obvious)

def pad_width(padding):
    """np.pad's pad_width for an NHWC array from conv2d's padding (int, (ph, pw), ((top, bottom), (left, right)))."""
    top, bottom, left, right = sides(padding)
    return ((0, 0), (top, bottom), (left, right), (0, 0))


def loop_conv2d(x, w, stride, padding):
    """y[n,i,j,f] = sum_{u,v,c} x_pad[n, sh*i+u, sw*j+v, c] w[u,v,c,f], one output pixel at a time."""
    (kh, kw, _, c_out), (sh, sw) = w.shape, axes(stride)
    x_pad = onp.pad(x, pad_width(padding), mode="constant")
    out_h = (x_pad.shape[1] - kh) // sh + 1
    out_w = (x_pad.shape[2] - kw) // sw + 1
    y = onp.zeros((x.shape[0], out_h, out_w, c_out), x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            window = x_pad[:, sh * i:sh * i + kh, sw * j:sw * j + kw, :]  # (B, kh, kw, C)
            for f in range(c_out):
                y[:, i, j, f] = (window * w[:, :, :, f]).sum(axis=(1, 2, 3))
    return y


def transposed_size(y_shape, w_shape, stride, padding, output_padding):
    """(H, W) of conv_transpose2d's output: PyTorch's (n - 1) s - before - after + k + op per axis."""
    (sh, sw), (top, bottom, left, right), (oph, opw) = axes(stride), sides(padding), axes(output_padding)
    return ((y_shape[1] - 1) * sh - top - bottom + w_shape[0] + oph,
            (y_shape[2] - 1) * sw - left - right + w_shape[1] + opw)


def loop_conv_transpose2d(y, w, stride, padding, output_padding=(0, 0)):
    """Scatter every input pixel's y[n,i,j,:] @ w[u,v,:,:]^T onto x_pad[n, sh*i+u, sw*j+v, :], then crop."""
    (kh, kw, c_in, _), (sh, sw) = w.shape, axes(stride)
    batch, in_h, in_w, _ = y.shape
    top, bottom, left, right = sides(padding)
    height, width = transposed_size(y.shape, w.shape, stride, padding, output_padding)
    x_pad = onp.zeros((batch, height + top + bottom, width + left + right, c_in), y.dtype)
    for i in range(in_h):
        for j in range(in_w):
            for u in range(kh):
                for v in range(kw):
                    x_pad[:, sh * i + u, sw * j + v, :] += y[:, i, j, :] @ w[u, v].T
    return x_pad[:, top:top + height, left:left + width, :]


def ref_conv2d(x, w, stride, padding):
    """The same conv in differentiable autograd.numpy: one shifted, strided slice per tap."""
    (kh, kw, _, _), (sh, sw) = w.shape, axes(stride)
    x_pad = np.pad(x, pad_width(padding), mode="constant")
    out_h = (x_pad.shape[1] - kh) // sh + 1
    out_w = (x_pad.shape[2] - kw) // sw + 1
    taps = [np.dot(x_pad[:, u:u + sh * (out_h - 1) + 1:sh, v:v + sw * (out_w - 1) + 1:sw, :],
                   w[u, v])                                  # (B, Ho, Wo, C) @ (C, F)
            for u in range(kh) for v in range(kw)]
    return sum(taps)


def ref_conv_transpose2d(y, w, stride, padding, output_padding=(0, 0)):
    """Differentiable scatter: each tap's (B, Ho, Wo, C) block is zero-dilated by the stride,
    shifted by (u, v) with np.pad, summed, and cropped."""
    (kh, kw, _, _), (sh, sw) = w.shape, axes(stride)
    batch, in_h, in_w, _ = y.shape
    top, bottom, left, right = sides(padding)
    height, width = transposed_size(y.shape, w.shape, stride, padding, output_padding)
    full_h, full_w = height + top + bottom, width + left + right
    total = 0.0
    for u in range(kh):
        for v in range(kw):
            tap = np.dot(y, w[u, v].T)                                           # (B, Ho, Wo, C)
            c_in = tap.shape[3]
            tap = np.pad(tap[:, :, None, :, None, :],                            # (B, Ho, 1, Wo, 1, C)
                         ((0, 0), (0, 0), (0, sh - 1), (0, 0), (0, sw - 1), (0, 0)), mode="constant")
            tap = np.reshape(tap, (batch, in_h * sh, in_w * sw, c_in))           # zero-dilated
            tap = tap[:, :sh * (in_h - 1) + 1, :sw * (in_w - 1) + 1, :]
            tap = np.pad(tap, ((0, 0), (u, full_h - u - tap.shape[1]), (v, full_w - v - tap.shape[2]), (0, 0)),
                         mode="constant")
            total = total + tap
    return total[:, top:top + height, left:left + width, :]


def op_pair(x_shape, kernel, stride, padding):
    """output_padding (h, w) such that conv_transpose2d(conv2d(x)) has x's spatial shape."""
    (kh, kw), (sh, sw), (top, bottom, left, right) = axes(kernel), axes(stride), sides(padding)
    return (x_shape[1] + top + bottom - kh) % sh, (x_shape[2] + left + right - kw) % sw


def random_case(rng, kernel, height, width, c_in=3, c_out=2, batch=2, dtype=onp.float64, transpose=False):
    """(x, w) for conv2d, or (y, w) with C_out input channels for conv_transpose2d; kernel k or (kh, kw)."""
    x = rng.standard_normal((batch, height, width, c_out if transpose else c_in)).astype(dtype)
    w = rng.standard_normal(axes(kernel) + (c_in, c_out)).astype(dtype)
    return x, w


# ---------------------------------------------------------------- 1. hand-computed numbers

def test_conv2d_hand_computed(conv):
    # x = [[1,2,3],[4,5,6],[7,8,9]] padded by 1, 2x2 kernel [[1,2],[3,4]], stride 2:
    # windows [[0,0],[0,1]], [[0,0],[2,3]], [[0,4],[0,7]], [[5,6],[8,9]].
    x = onp.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    w = onp.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)
    y = conv.conv2d(x, w, stride=2, padding=1)
    onp.testing.assert_array_equal(y[0, :, :, 0], [[4.0, 18.0], [36.0, 77.0]])
    # stride 1, no padding, all-ones kernel: sums of 2x2 blocks.
    y = conv.conv2d(x, onp.ones((2, 2, 1, 1)))
    onp.testing.assert_array_equal(y[0, :, :, 0], [[12.0, 16.0], [24.0, 28.0]])


def test_conv_transpose2d_hand_computed(conv):
    y = onp.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    # stride 2 = kernel: every input pixel stamps a scaled copy of the kernel, no overlap.
    w = onp.array([[1.0, 10.0], [100.0, 1000.0]]).reshape(2, 2, 1, 1)
    onp.testing.assert_array_equal(conv.conv_transpose2d(y, w, stride=2)[0, :, :, 0],
                                   [[1, 10, 2, 20], [100, 1000, 200, 2000],
                                    [3, 30, 4, 40], [300, 3000, 400, 4000]])
    # stride 1, all-ones 2x2 kernel: overlapping stamps add up.
    onp.testing.assert_array_equal(conv.conv_transpose2d(y, onp.ones((2, 2, 1, 1)))[0, :, :, 0],
                                   [[1, 3, 2], [4, 10, 6], [3, 7, 4]])


# ---------------------------------------------------------------- 2. against the loop oracles

@pytest.mark.parametrize("c_in,c_out", CHANNELS)   # one input channel: fast_conv's im2col copies tap by tap
@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
@pytest.mark.parametrize("kernel,stride,padding,height,width", CASES + ONE_SIDED_CASES + NON_SQUARE_CASES)
def test_conv2d_matches_loop(conv, rng, kernel, stride, padding, height, width, dtype, c_in, c_out):
    x, w = random_case(rng, kernel, height, width, c_in, c_out, dtype=dtype)
    y = conv.conv2d(x, w, stride=stride, padding=padding)
    assert y.dtype == dtype
    onp.testing.assert_allclose(y, loop_conv2d(x, w, stride, padding), rtol=DTYPE_TOL[dtype], atol=DTYPE_TOL[dtype])


@pytest.mark.parametrize("c_in,c_out", CHANNELS)
@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
@pytest.mark.parametrize("kernel,stride,padding,height,width", TRANSPOSE_CASES + NON_SQUARE_TRANSPOSE_CASES)
def test_conv_transpose2d_matches_loop(conv, rng, kernel, stride, padding, height, width, dtype, c_in, c_out):
    y, w = random_case(rng, kernel, height, width, c_in, c_out, dtype=dtype, transpose=True)
    sh, sw = axes(stride)
    for output_padding in sorted({(0, 0), (sh - 1, 0), (0, sw - 1)}):
        x = conv.conv_transpose2d(y, w, stride=stride, padding=padding, output_padding=output_padding)
        assert x.dtype == dtype
        onp.testing.assert_allclose(x, loop_conv_transpose2d(y, w, stride, padding, output_padding),
                                    rtol=DTYPE_TOL[dtype], atol=DTYPE_TOL[dtype])


@pytest.mark.parametrize("kernel,stride,padding,height,width", CASES + ONE_SIDED_CASES + NON_SQUARE_CASES)
def test_conv_transpose2d_is_adjoint_of_conv2d(conv, rng, kernel, stride, padding, height, width):
    # <conv2d(x, w), y> == <x, conv_transpose2d(y, w)> to rounding.
    x, w = random_case(rng, kernel, height, width)
    output_padding = op_pair(x.shape, kernel, stride, padding)
    y = rng.standard_normal(conv.conv2d(x, w, stride, padding).shape)
    x_back = conv.conv_transpose2d(y, w, stride, padding, output_padding)
    assert x_back.shape == x.shape
    lhs = onp.sum(conv.conv2d(x, w, stride, padding) * y)
    rhs = onp.sum(x * x_back)
    assert abs(lhs - rhs) <= 1e-12 * (1.0 + abs(lhs))


def test_one_sided_padding_equals_explicit_pad(conv, rng):
    # padding=((t, b), (l, r)) is conv2d of the zero-padded input with padding 0.
    x, w = random_case(rng, 3, 5, 6)
    padding = ((2, 0), (1, 2))
    onp.testing.assert_allclose(conv.conv2d(x, w, 1, padding),
                                conv.conv2d(onp.pad(x, pad_width(padding)), w, 1, 0), rtol=1e-12, atol=1e-12)
    onp.testing.assert_array_equal(conv.conv2d(x, w, 2, ((1, 1), (1, 1))), conv.conv2d(x, w, 2, 1))
    # per-axis padding (ph, pw) is ((ph, ph), (pw, pw)), and stride s is (s, s)
    onp.testing.assert_array_equal(conv.conv2d(x, w, (2, 2), (2, 0)), conv.conv2d(x, w, 2, ((2, 2), (0, 0))))


def test_sequence_conv_is_a_1d_conv(conv, rng):
    # A (B, 1, L, C) sequence with a (1, k) kernel and (1, s) stride is the 1-D correlation
    # y[n, i, f] = sum_{v,c} x_pad[n, s*i+v, c] w[v, c, f], written here with np.convolve.
    x, w = random_case(rng, (1, 3), 1, 9, c_in=2, c_out=2)
    y = conv.conv2d(x, w, (1, 2), (0, 1))
    assert y.shape == (2, 1, 5, 2)
    x_pad = onp.pad(x[:, 0], ((0, 0), (1, 1), (0, 0)))                      # (B, L + 2, C)
    for n in range(2):
        for f in range(2):
            full = sum(onp.convolve(x_pad[n, :, c], w[0, ::-1, c, f], mode="valid") for c in range(2))
            onp.testing.assert_allclose(y[n, 0, :, f], full[::2], rtol=1e-12, atol=1e-12)
    x_back = conv.conv_transpose2d(y, w, (1, 2), (0, 1), (0, 0))
    assert x_back.shape == x.shape

def test_reference_transpose_matches_loop(rng):
    # The autograd reference above is itself checked against the scatter loop.
    y, w = random_case(rng, 3, 4, 5, transpose=True)
    onp.testing.assert_allclose(ref_conv_transpose2d(y, w, 2, 1, (1, 0)),
                                loop_conv_transpose2d(y, w, 2, 1, (1, 0)), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- 3. gradients

@pytest.mark.parametrize("kernel,stride,padding,height,width",
                         CASES[::2] + [CASES[7]] + ONE_SIDED_CASES + NON_SQUARE_CASES)
def test_conv2d_check_grads(conv, rng, kernel, stride, padding, height, width):
    x, w = random_case(rng, kernel, height, width)
    check_grads(lambda x_: conv.conv2d(x_, w, stride, padding), modes=["rev"], order=1)(x)
    check_grads(lambda w_: conv.conv2d(x, w_, stride, padding), modes=["rev"], order=1)(w)
    check_grads(lambda x_, w_: conv.conv2d(x_, w_, stride, padding), modes=["rev"], order=1)(x, w)


@pytest.mark.parametrize("kernel,stride,padding,height,width", TRANSPOSE_CASES[1::2] + NON_SQUARE_TRANSPOSE_CASES)
def test_conv_transpose2d_check_grads(conv, rng, kernel, stride, padding, height, width):
    y, w = random_case(rng, kernel, height, width, transpose=True)
    op = (axes(stride)[0] - 1, 0)
    check_grads(lambda y_: conv.conv_transpose2d(y_, w, stride, padding, op), modes=["rev"], order=1)(y)
    check_grads(lambda w_: conv.conv_transpose2d(y, w_, stride, padding, op), modes=["rev"], order=1)(w)
    check_grads(lambda y_, w_: conv.conv_transpose2d(y_, w_, stride, padding, op), modes=["rev"], order=1)(y, w)


@pytest.mark.parametrize("c_in,c_out", CHANNELS)
@pytest.mark.parametrize("kernel,stride,padding,height,width", CASES + ONE_SIDED_CASES + NON_SQUARE_CASES)
def test_hand_vjps_match_autograd_reference(conv, rng, kernel, stride, padding, height, width, c_in, c_out):
    # The hand VJPs, one argument at a time and both at once in either order (fast_conv's
    # joint VJPs), against autograd differentiating the slicing conv above.
    x, w = random_case(rng, kernel, height, width, c_in, c_out)
    g = rng.standard_normal(conv.conv2d(x, w, stride, padding).shape)
    loss = lambda fn: (lambda x_, w_: np.sum(fn(x_, w_, stride, padding) * g))
    expected = grad(loss(ref_conv2d), (0, 1))(x, w)
    for argnums in (0, 1, (0, 1), (1, 0)):
        got = grad(loss(conv.conv2d), argnums)(x, w)
        for got_one, which in zip(got, argnums) if isinstance(argnums, tuple) else [(got, argnums)]:
            onp.testing.assert_allclose(got_one, expected[which], rtol=1e-10, atol=1e-12)
    op = op_pair(x.shape, kernel, stride, padding)
    loss_t = lambda fn: (lambda y_, w_: np.sum(fn(y_, w_, stride, padding, op) * x))
    expected = grad(loss_t(ref_conv_transpose2d), (0, 1))(g, w)
    for argnums in (0, 1, (0, 1), (1, 0)):
        got = grad(loss_t(conv.conv_transpose2d), argnums)(g, w)
        for got_one, which in zip(got, argnums) if isinstance(argnums, tuple) else [(got, argnums)]:
            onp.testing.assert_allclose(got_one, expected[which], rtol=1e-10, atol=1e-12)


def test_float32_is_preserved_through_gradients(conv, rng):
    x, w = random_case(rng, 3, 6, 5, dtype=onp.float32)
    for fn, arg in ((conv.conv2d, x), (conv.conv_transpose2d, conv.conv2d(x, w, 2, 1))):
        vjp, out = make_vjp(lambda a, b: fn(a, b, 2, 1), argnum=0)(arg, w)
        assert out.dtype == onp.float32
        assert vjp(onp.ones_like(out)).dtype == onp.float32
        assert grad(lambda b: np.sum(fn(arg, b, 2, 1)))(w).dtype == onp.float32


# ---------------------------------------------------------------- 4. plain against fast

@pytest.mark.parametrize("dtype", [onp.float32, onp.float64])
@pytest.mark.parametrize("seed", range(9))
def test_plain_and_fast_agree_on_random_cases(dtype, seed):
    # Random shapes, kernels, strides and paddings (one-sided and per-axis included): values
    # and all four VJPs of the two modules agree to rounding.
    rng = onp.random.default_rng(100 + seed)
    kernel, stride = tuple(int(k) for k in rng.integers(1, 5, 2)), tuple(int(s) for s in rng.integers(1, 4, 2))
    if seed % 3 != 2:                            # two of three square, one per-axis
        kernel, stride = kernel[0], stride[0]
    c_in, c_out, batch = (int(n) for n in rng.integers(1, 9, 3))
    pads = [int(p) for p in rng.integers(0, 3, 4)]
    padding = (pads[0], (pads[:2], pads[2:]), (pads[0], pads[1]))[seed % 3]
    height, width = (int(n) for n in rng.integers(max(axes(kernel)), 10, 2))
    x, w = random_case(rng, kernel, height, width, c_in, c_out, batch, dtype)
    op = op_pair(x.shape, kernel, stride, padding)
    tol = DTYPE_TOL[dtype] * 10
    results = []
    for module in (plain_conv, fast_conv):       # each VJP's upstream gradient: its own output
        y = module.conv2d(x, w, stride, padding)
        x_back = module.conv_transpose2d(y, w, stride, padding, op)
        results.append([y] + [make_vjp(module.conv2d, argnum)(x, w, stride, padding)[0](y) for argnum in (0, 1)]
                       + [x_back] + [make_vjp(module.conv_transpose2d, argnum)(y, w, stride, padding, op)[0](x_back)
                                     for argnum in (0, 1)])
    for plain, fast in zip(*results):
        assert plain.dtype == fast.dtype == dtype
        scale = max(1.0, onp.abs(plain).max())
        onp.testing.assert_allclose(fast, plain, rtol=tol, atol=tol * scale)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("call,match", [
    (lambda c, x, w: c.conv2d(x[..., :2], w), r"x has 2 channels .*C_in=2"),
    (lambda c, x, w: c.conv2d(x[:, :2, :2], w), r"output would be 0x0: kernel 3x3, input 2x2"),
    (lambda c, x, w: c.conv2d(x[0], w), r"\(B, H, W, C\).*3-D"),
    (lambda c, x, w: c.conv2d(x, w, stride=0), r"stride must be an integer >= 1 or a pair \(sh, sw\).*got 0"),
    (lambda c, x, w: c.conv2d(x, w, stride=(1, 0)), r"stride must be .*got \(1, 0\)"),
    (lambda c, x, w: c.conv2d(x, w, stride=(1, 2, 1)), r"stride must be .*got \(1, 2, 1\)"),
    (lambda c, x, w: c.conv2d(x, w, stride=1.5), r"stride must be"),
    (lambda c, x, w: c.conv2d(x.astype(onp.int64), w), r"float32/float64 .*int64"),
    (lambda c, x, w: c.conv2d(x, w[0]), r"\(kh, kw, C_in, C_out\)"),
    (lambda c, x, w: c.conv2d(x, w, padding=-1), r"padding must be an int >= 0, \(ph, pw\)"),
    (lambda c, x, w: c.conv2d(x, w, padding=(1, -1)), r"padding must be"),
    (lambda c, x, w: c.conv2d(x, w, padding=(1, 1, 1)), r"padding must be"),
    (lambda c, x, w: c.conv2d(x, w, padding=((1, -1), (0, 0))),
     r"padding must be .*\(\(top, bottom\), \(left, right\)\)"),
    (lambda c, x, w: c.conv2d(x, w, padding=((1,), (0, 0))), r"padding must be"),
    (lambda c, x, w: c.conv2d(x, w, padding="same"), r"padding must be"),
    (lambda c, x, w: c.conv2d(x[:, :1], w, padding=((1, 0), (1, 1))),
     r"output would be 0x5: kernel 3x3, input 1x5, padding \(1, 0, 1, 1\)"),
    (lambda c, x, w: c.conv_transpose2d(x[..., :2], w, padding=((1, -1), (1, 1))), r"padding must be"),
    (lambda c, x, w: c.conv_transpose2d(x, w), r"y has 3 channels .*C_out=3"),
    (lambda c, x, w: c.conv_transpose2d(x[..., :2], w, stride=2, output_padding=2), r"output_padding .*\[0, stride\)"),
    (lambda c, x, w: c.conv_transpose2d(x[..., :2], w, stride=1, output_padding=(0, 1)), r"output_padding"),
    (lambda c, x, w: c.conv_transpose2d(x[..., :2], w, stride=(2, 1), output_padding=(1, 1)),
     r"output_padding must be in \[0, stride\), got \(1, 1\) with stride \(2, 1\)"),
    (lambda c, x, w: c.conv_transpose2d(x[..., :2], w, output_padding=-1), r"output_padding must be an integer"),
    (lambda c, x, w: c.conv_transpose2d(x[:, :1, :1, :2], w, padding=2), r"output would be"),
    (lambda c, x, w: c.conv_transpose2d(x[0, ..., :2], w), r"\(B, H, W, C\)"),
])
def test_bad_input_raises(conv, rng, call, match):
    x, w = random_case(rng, 3, 5, 5)   # x (2, 5, 5, 3), w (3, 3, 3, 2)
    with pytest.raises(ValueError, match=match):
        call(conv, x, w)


# ---------------------------------------------------------------- output sizes

def test_output_size_formulas_match_pytorch_examples():
    # From torch.nn.Conv2d / ConvTranspose2d docs examples on a 50x100 input:
    # Conv2d(k=3, s=2) -> 24x49; Conv2d(k=(3,5), s=(2,1), p=(4,2)) -> 28x100.
    assert (conv_output_size(50, 3, 2, 0), conv_output_size(100, 3, 2, 0)) == (24, 49)
    assert (conv_output_size(50, 3, 2, 4), conv_output_size(100, 5, 1, 2)) == (28, 100)
    # ConvTranspose2d(k=3, s=2) -> 101x201; with k=(3,5), s=(2,1), p=(4,2) -> 93x100.
    assert (conv_transpose_output_size(50, 3, 2, 0), conv_transpose_output_size(100, 3, 2, 0)) == (101, 201)
    assert (conv_transpose_output_size(50, 3, 2, 4), conv_transpose_output_size(100, 5, 1, 2)) == (93, 100)
    # 12x12 -> Conv2d(k=3, s=2, p=1) -> 6x6 -> ConvTranspose2d(same, output_padding=1) -> 12x12.
    assert conv_output_size(12, 3, 2, 1) == 6
    assert conv_transpose_output_size(6, 3, 2, 1, output_padding=1) == 12
    # one-sided padding (before, after) along an axis: n + before + after in the formulas
    assert conv_output_size(10, 3, 2, (2, 0)) == 5 and conv_transpose_output_size(5, 3, 2, (2, 0), 1) == 10


def test_pytorch_doc_example_shapes(conv):
    # torch.nn.Conv2d(16, 33, (3, 5), stride=(2, 1), padding=(4, 2)) on 50x100 -> 28x100, and
    # the ConvTranspose2d of the same settings -> 93x100 (the formulas above, through the primitives).
    x = onp.zeros((1, 50, 100, 2))
    assert conv.conv2d(x, onp.zeros((3, 5, 2, 3)), (2, 1), (4, 2)).shape == (1, 28, 100, 3)
    assert conv.conv_transpose2d(x, onp.zeros((3, 5, 3, 2)), (2, 1), (4, 2)).shape == (1, 93, 100, 3)


# ---------------------------------------------------------------- torch cross-check (optional)

@pytest.mark.parametrize("kernel,stride,padding,height,width",   # torch pads symmetrically: p or (ph, pw)
                         CASES[::3] + [case for case in NON_SQUARE_CASES if onp.ndim(case[2]) < 2])
def test_against_torch(conv, rng, kernel, stride, padding, height, width):
    torch = pytest.importorskip("torch")
    fn = torch.nn.functional
    conv2d, conv_transpose2d = conv.conv2d, conv.conv_transpose2d
    nchw = lambda a: torch.tensor(a.transpose(0, 3, 1, 2), requires_grad=True)   # NHWC -> NCHW
    nhwc = lambda t: t.detach().numpy().transpose(0, 2, 3, 1)                    # NCHW -> NHWC
    x, w = random_case(rng, kernel, height, width)
    g = rng.standard_normal(conv2d(x, w, stride, padding).shape)

    x_t, w_t = nchw(x), torch.tensor(w.transpose(3, 2, 0, 1), requires_grad=True)   # HWIO -> OIHW
    y_t = fn.conv2d(x_t, w_t, stride=stride, padding=padding)
    dx_t, dw_t = torch.autograd.grad(y_t, (x_t, w_t), torch.tensor(g.transpose(0, 3, 1, 2)))
    vjp_x, y = make_vjp(conv2d, 0)(x, w, stride, padding)
    onp.testing.assert_allclose(y, nhwc(y_t), rtol=1e-10, atol=1e-12)
    onp.testing.assert_allclose(vjp_x(g), nhwc(dx_t), rtol=1e-10, atol=1e-12)
    onp.testing.assert_allclose(make_vjp(conv2d, 1)(x, w, stride, padding)[0](g),
                                dw_t.numpy().transpose(2, 3, 1, 0), rtol=1e-10, atol=1e-12)

    op = op_pair(x.shape, kernel, stride, padding)
    g_t, w_tt = nchw(g), torch.tensor(w.transpose(3, 2, 0, 1), requires_grad=True)   # torch: (in=F, out=C, kh, kw)
    x_back_t = fn.conv_transpose2d(g_t, w_tt, stride=stride, padding=padding, output_padding=op)
    dg_t, dw_tt = torch.autograd.grad(x_back_t, (g_t, w_tt), torch.tensor(x.transpose(0, 3, 1, 2)))
    vjp_g, x_back = make_vjp(conv_transpose2d, 0)(g, w, stride, padding, op)
    onp.testing.assert_allclose(x_back, nhwc(x_back_t), rtol=1e-10, atol=1e-12)
    onp.testing.assert_allclose(vjp_g(x), nhwc(dg_t), rtol=1e-10, atol=1e-12)
    onp.testing.assert_allclose(make_vjp(conv_transpose2d, 1)(g, w, stride, padding, op)[0](x),
                                dw_tt.numpy().transpose(2, 3, 1, 0), rtol=1e-10, atol=1e-12)
