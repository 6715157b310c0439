"""fast_conv's own machinery: its two input-grad algorithms, joint VJPs and their cost rules,
batch chunks, scratch buffers and SETTINGS.

The public behaviour of fast_conv (values, gradients, bad input) is tested with the plain
module's in test_conv.py; this file is the only one that reaches into fast_conv's private
names. The oracles are test_conv.py's.
"""
import threading

import autograd.numpy as np
import numpy as onp
import pytest
from autograd import grad, make_vjp
from autograd.test_util import check_grads

from minivq import fast_conv
from minivq.conv import pad_sides, pair
from test_conv import (CASES, CHANNELS, NON_SQUARE_CASES, NON_SQUARE_TRANSPOSE_CASES, ONE_SIDED_CASES,
                       TRANSPOSE_CASES, loop_conv2d, loop_conv_transpose2d, op_pair, random_case, ref_conv2d,
                       ref_conv_transpose2d)


@pytest.mark.parametrize("algorithm", ["_col2im", "_subpixel"])
@pytest.mark.parametrize("kernel,stride,padding,height,width", CASES + ONE_SIDED_CASES + NON_SQUARE_CASES)
def test_both_input_grad_algorithms_match_loop(rng, kernel, stride, padding, height, width, algorithm):
    # _conv_input_grad picks one of two exact algorithms by cost; each must be right everywhere,
    # the sub-pixel phases with sh != sw included (sh x sw phases, t_h x t_w sub-kernels).
    x, w = random_case(rng, kernel, height, width)
    g = rng.standard_normal(fast_conv.conv2d(x, w, stride, padding).shape)
    dx = getattr(fast_conv, algorithm)(g, w, x.shape, pair(stride), pad_sides(padding))
    expected = grad(lambda x_: np.sum(ref_conv2d(x_, w, stride, padding) * g))(x)
    onp.testing.assert_allclose(dx, expected, rtol=1e-10, atol=1e-12)
    op = op_pair(x.shape, kernel, stride, padding)
    onp.testing.assert_allclose(dx, loop_conv_transpose2d(g, w, stride, padding, op), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel,stride,padding", [(3, 1, 1), (4, 2, 1), (3, 3, 2), (1, 2, 0), (2, 1, 3)])
@pytest.mark.parametrize("size", [1, 5, 8])
def test_phase_range_covers_exactly_the_input_rows(kernel, stride, padding, size):
    # The s-row blocks q_lo..q_hi of x_pad are the fewest that cover x's rows [p, p + size).
    q_lo, q_hi, t = fast_conv.phase_range(size, kernel, stride, padding)
    assert stride * q_lo <= padding < stride * (q_lo + 1)
    assert stride * (q_hi - 1) < padding + size <= stride * q_hi
    assert t == -(-kernel // stride) and (t - 1) * stride < kernel <= t * stride


@pytest.mark.parametrize("w_shape,stride,scatter", [
    ((4, 4, 1, 32), 2, True),      # the encoder's first conv: one image channel, scatter
    ((4, 4, 32, 1), 2, False),     # the decoder's last transpose read as a conv: one output channel, gather
    ((3, 3, 64, 64), 1, False),    # 2 * 9 * 64 scattered against 9 * 64 gathered numbers
    ((3, 3, 4, 64), 1, True),      # 2 * 9 * 4 = 72 < 576
    ((1, 4, 8, 16), (1, 2), False),    # a sequence layer: 2 * 4 * 8 = 64 against 1 * 2 * 16 = 32 gathered
    ((4, 1, 1, 8), (4, 1), False),     # per axis: 2 * 4 * 1 = 8 against ceil(4/4) * ceil(1/1) * 8 = 8
    ((4, 1, 1, 8), (1, 4), True),      # the same kernel, strides swapped: 8 < ceil(4/1) * 1 * 8 = 32
])
def test_scatter_rule_counts_copied_numbers(w_shape, stride, scatter):
    # Counted by hand: scatter when 2 * kh*kw*C < ceil(kh/s) * ceil(kw/s) * F.
    assert fast_conv.scatter_is_cheaper(w_shape, stride) is scatter


def assert_joint_vjp(monkeypatch, fn, reference, shared_name, a, w, g, *options, shared=True):
    """fn's VJP asked for both arguments at once, in both orders, against autograd's
    derivative of `reference`; and proof that it went through fast_conv.<shared_name> (or,
    with shared=False, that it did not)."""
    loss = lambda conv: (lambda a_, w_: np.sum(conv(a_, w_, *options) * g))
    expected = grad(loss(reference), (0, 1))(a, w)
    joint_calls = []
    shared_fn = getattr(fast_conv, shared_name)
    monkeypatch.setattr(fast_conv, shared_name, lambda *args: joint_calls.append(1) or shared_fn(*args))
    for argnums in ((0, 1), (1, 0)):
        got = grad(loss(fn), argnums)(a, w)
        for got_one, which in zip(got, argnums):
            onp.testing.assert_allclose(got_one, expected[which], rtol=1e-10, atol=1e-12)
    assert len(joint_calls) == (2 if shared else 0)   # the shared path really ran (or not), both times
    check_grads(lambda a_, w_: fn(a_, w_, *options), modes=["rev"], order=1)(a, w)


@pytest.mark.parametrize("kernel,stride,padding,height,width", CASES + ONE_SIDED_CASES[:4] + NON_SQUARE_CASES)
def test_joint_vjp_matches_reference(rng, monkeypatch, kernel, stride, padding, height, width):
    # Asked for x and w together, conv2d's VJP takes both from one gather of g
    # (_conv_grads) when the gather path is the input grad's cheaper one (here: C_out <
    # C_in) and the shared dw needs no more multiplies than the plain one. _conv_grads
    # itself must be right in every case; the VJP, whichever way it goes, in both orders.
    x, w = random_case(rng, kernel, height, width, c_in=4, c_out=3)
    g = rng.standard_normal(fast_conv.conv2d(x, w, stride, padding).shape)
    pads = pad_sides(padding)
    loss = lambda conv: (lambda x_, w_: np.sum(conv(x_, w_, stride, padding) * g))
    for got, expected in zip(fast_conv._conv_grads(x, w, g, pair(stride), pads), grad(loss(ref_conv2d), (0, 1))(x, w)):
        onp.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    shared = fast_conv.shared_dw_is_cheaper(x.shape, w.shape, stride, pads)
    assert_joint_vjp(monkeypatch, fast_conv.conv2d, ref_conv2d, "_conv_grads", x, w, g, stride, padding,
                     shared=shared)


@pytest.mark.parametrize("mode,calls", [("always", True), ("never", False)])
def test_shared_dw_setting_forces_the_path(rng, monkeypatch, mode, calls):
    # The encoder's 4x4 stride-2 conv shares nothing by the rule; SETTINGS['shared_dw']
    # 'always' makes it share, 'never' keeps the decoder's 3x3 convs from sharing. Same answers.
    kernel, stride, padding = (4, 2, 1) if mode == "always" else (3, 1, 1)
    x, w = random_case(rng, kernel, 8, 8, c_in=4, c_out=3)
    g = rng.standard_normal(fast_conv.conv2d(x, w, stride, padding).shape)
    assert fast_conv.shared_dw_is_cheaper(x.shape, w.shape, stride, pad_sides(padding)) is not calls
    with fast_conv.configured(shared_dw=mode):
        assert_joint_vjp(monkeypatch, fast_conv.conv2d, ref_conv2d, "_conv_grads", x, w, g, stride, padding,
                         shared=calls)
    assert fast_conv.SETTINGS["shared_dw"] == "auto"


@pytest.mark.parametrize("kernel,stride,padding,size,shared", [
    (3, 1, 1, 7, True),      # the decoder's 3x3 convs: the same multiplies, one gather fewer
    (3, 1, 0, 7, False),     # unpadded: the blocks cover all 7x7 pixels of x for 5x5 outputs
    (2, 2, 0, 8, True),      # non-overlapping 2x2 patches: the blocks are the windows
    (4, 2, 1, 14, False),    # the encoder's 4x4 stride 2: blocks cover 16x16 of x_pad for 14x14 of x
    (3, 2, 1, 7, False),
])
def test_shared_dw_only_when_no_extra_multiplies(kernel, stride, padding, size, shared):
    # Counted by hand: (blocks per image) * (s*t)^2 against (output pixels) * k^2, t = ceil(k/s).
    w_shape, x_shape = (kernel, kernel, 4, 3), (1, size, size, 4)
    assert fast_conv.shared_dw_is_cheaper(x_shape, w_shape, stride, (padding,) * 4) is shared


@pytest.mark.parametrize("c_in,c_out", CHANNELS)
@pytest.mark.parametrize("kernel,stride,padding,height,width", TRANSPOSE_CASES + NON_SQUARE_TRANSPOSE_CASES)
def test_joint_transpose_vjp_matches_reference(rng, monkeypatch, kernel, stride, padding, height, width, c_in, c_out):
    # conv_transpose2d asked for y and w together shares one im2col of g between them
    # (with one output channel, as the decoder's last layer, g's im2col goes tap by tap).
    y, w = random_case(rng, kernel, height, width, c_in, c_out, transpose=True)
    op = (pair(stride)[0] - 1, 0)
    g = rng.standard_normal(fast_conv.conv_transpose2d(y, w, stride, padding, op).shape)
    assert_joint_vjp(monkeypatch, fast_conv.conv_transpose2d, ref_conv_transpose2d, "_conv_forward_and_weight_grad",
                     y, w, g, stride, padding, op)


@pytest.mark.parametrize("chunk_bytes", [1, 6000])
def test_batch_chunking_is_exact(rng, chunk_bytes):
    # The primitives gather and multiply one batch chunk at a time; shrink the chunks to one
    # image (1 byte) or uneven groups of two (6000 bytes) and check all maps against the oracles.
    conv2d, conv_transpose2d = fast_conv.conv2d, fast_conv.conv_transpose2d
    x, w = random_case(rng, 3, 7, 6, batch=5)
    y = rng.standard_normal(conv2d(x, w, 2, 1).shape)
    w1 = rng.standard_normal((1, 1, 3, 4))
    g1 = rng.standard_normal((5, 7, 6, 4))
    with fast_conv.configured(chunk_bytes=chunk_bytes):
        onp.testing.assert_allclose(conv2d(x, w, 2, 1), loop_conv2d(x, w, 2, 1), rtol=1e-12, atol=1e-12)
        onp.testing.assert_allclose(conv_transpose2d(y, w, 2, 1, (0, 1)), loop_conv_transpose2d(y, w, 2, 1, (0, 1)),
                                    rtol=1e-12, atol=1e-12)
        loss = lambda conv: (lambda x_, w_: np.sum(conv(x_, w_, 2, 1) * y))
        onp.testing.assert_allclose(grad(loss(conv2d), 1)(x, w), grad(loss(ref_conv2d), 1)(x, w),
                                    rtol=1e-10, atol=1e-12)
        # 1x1, stride 1, no padding: the rows are views of x, chunked the same way
        onp.testing.assert_allclose(conv2d(x, w1), loop_conv2d(x, w1, 1, 0), rtol=1e-12, atol=1e-12)
        loss1 = lambda conv: (lambda x_, w_: np.sum(conv(x_, w_, 1, 0) * g1))
        for argnum in (0, 1):
            onp.testing.assert_allclose(grad(loss1(conv2d), argnum)(x, w1), grad(loss1(ref_conv2d), argnum)(x, w1),
                                        rtol=1e-10, atol=1e-12)
        assert len(fast_conv._batch_chunks(5, 6000 if chunk_bytes == 1 else 3000)) == (5 if chunk_bytes == 1 else 3)


def test_configured_restores_and_rejects_unknown_settings():
    before = dict(fast_conv.SETTINGS)
    with fast_conv.configured(chunk_bytes=1, scratch_buffers=False):
        assert fast_conv.SETTINGS["chunk_bytes"] == 1 and fast_conv.SETTINGS["scratch_buffers"] is False
    assert fast_conv.SETTINGS == before
    with pytest.raises(ValueError, match="unknown setting.*chunk_size"):
        with fast_conv.configured(chunk_size=1):
            pass
    with pytest.raises(ValueError, match="shared_dw must be one of"):
        with fast_conv.configured(shared_dw="sometimes"):
            pass
    assert fast_conv.SETTINGS == before


def test_without_scratch_buffers_results_are_the_same(rng):
    # scratch_buffers=False (the 'fresh arrays' ablation) allocates every temporary anew.
    x, w = random_case(rng, 4, 8, 7)
    g = rng.standard_normal(fast_conv.conv2d(x, w, 2, 1).shape)
    run = lambda: [fast_conv.conv2d(x, w, 2, 1), fast_conv.conv_transpose2d(g, w, 2, 1, (0, 1)),
                   *grad(lambda x_, w_: np.sum(fast_conv.conv2d(x_, w_, 2, 1) * g), (0, 1))(x, w)]
    expected = run()
    with fast_conv.configured(scratch_buffers=False):
        slot = fast_conv._scratch_array("rows", (3, 2), onp.float64)
        assert slot.base is None                           # a fresh array, not a view of a buffer
        for got, want in zip(run(), expected):
            onp.testing.assert_array_equal(got, want)


def test_results_do_not_alias_the_scratch_buffers(rng):
    # Temporaries live in reused per-thread buffers; outputs and gradients must not: compute
    # everything for case A, then for case B, and check A's arrays are still A's answers.
    conv2d, conv_transpose2d = fast_conv.conv2d, fast_conv.conv_transpose2d
    x, w = random_case(rng, 3, 7, 6)
    g = rng.standard_normal(conv2d(x, w, 2, 1).shape)
    results = [conv2d(x, w, 2, 1), conv_transpose2d(g, w, 2, 1, (0, 1)),
               make_vjp(conv2d, 1)(x, w, 2, 1)[0](g), make_vjp(conv2d, 0)(x, w, 2, 1)[0](g)]
    copies = [r.copy() for r in results]
    x2, w2 = random_case(rng, 3, 7, 6)
    g2 = rng.standard_normal(g.shape)
    conv2d(x2, w2, 2, 1), conv_transpose2d(g2, w2, 2, 1, (0, 1)), make_vjp(conv2d, 1)(x2, w2, 2, 1)[0](g2)
    for result, copy in zip(results, copies):
        onp.testing.assert_array_equal(result, copy)
    onp.testing.assert_allclose(results[0], loop_conv2d(x, w, 2, 1), rtol=1e-12, atol=1e-12)


def test_threads_get_their_own_scratch(rng):
    # Two threads convolving different inputs at once must each get their own answer.
    cases = [random_case(rng, 3, 9, 9, c_in=8, c_out=8, batch=16) for _ in range(4)]
    expected = [loop_conv2d(x, w, 1, 1) for x, w in cases]
    errors = []

    def worker(i):
        for _ in range(20):
            x, w = cases[i]
            if not onp.allclose(fast_conv.conv2d(x, w, 1, 1), expected[i], rtol=1e-12, atol=1e-12):
                errors.append(i)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
