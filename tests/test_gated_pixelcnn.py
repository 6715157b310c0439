"""Gated PixelCNN: stack convolutions by hand, exact causality with no blind spot, loop oracle, grads."""
import numpy as onp
import pytest
from autograd import grad
from autograd.test_util import check_grads

from minivq.gated_pixelcnn import gate, horizontal_conv, shift_down, shift_right, vertical_conv
from minivq.prior import build_prior
from minivq.testing import input_dependence, strictly_earlier
from minivq.tree import tree_cast

TINY = dict(num_codes=5, channels=8, num_blocks=4, first_kernel=3, kernel=3, gated=True)


def tiny_gated(rng, input_mode="embedding", num_classes=None):
    """(model, float64 params) of a tiny gated prior; class biases made nonzero."""
    model = build_prior(dict(TINY, input_mode=input_mode, code_dim=3 if input_mode == "codes" else None,
                             num_classes=num_classes))
    params = tree_cast(model.init(rng), onp.float64)
    if num_classes is not None:      # zero-initialised; make them matter for the tests
        for layer in params["body"]:
            layer["class_v"] = rng.normal(size=layer["class_v"].shape)
            layer["class_h"] = rng.normal(size=layer["class_h"].shape)
    return model, params


def stack_conv_support(make_conv, kernel, size=5, at=(2, 2)):
    """Output cells reached by a unit impulse at `at`, all-ones weights, one channel."""
    init, apply = make_conv(1, kernel)
    _, params = init(onp.random.default_rng(0), (size, size, 1))
    params = {"w": onp.ones_like(params["w"]), "b": onp.zeros(1)}
    x = onp.zeros((1, size, size, 1))
    x[0, at[0], at[1], 0] = 1.0
    return apply(params, x)[0, :, :, 0]


def test_stack_convs_by_hand():
    # vertical, k=3: v[i, j] sums rows i-1..i, columns j-1..j+1, so the impulse at (2, 2)
    # reaches rows 2..3, columns 1..3
    onp.testing.assert_array_equal(stack_conv_support(vertical_conv, 3), [[0, 0, 0, 0, 0],
                                                                          [0, 0, 0, 0, 0],
                                                                          [0, 1, 1, 1, 0],
                                                                          [0, 1, 1, 1, 0],
                                                                          [0, 0, 0, 0, 0]])
    # vertical, k=5: rows i-2..i, columns j-2..j+2 -> rows 2..4, every column
    onp.testing.assert_array_equal(stack_conv_support(vertical_conv, 5), [[0] * 5, [0] * 5] + [[1] * 5] * 3)
    # horizontal, k=3: row i, columns j-1..j -> (2, 2) and (2, 3); k=5: columns j-2..j -> (2, 2..4)
    onp.testing.assert_array_equal(stack_conv_support(horizontal_conv, 3)[2], [0, 0, 1, 1, 0])
    onp.testing.assert_array_equal(stack_conv_support(horizontal_conv, 5)[2], [0, 0, 1, 1, 1])
    assert stack_conv_support(horizontal_conv, 5).sum() == 3
    assert vertical_conv(4, 7)[0](onp.random.default_rng(0), (7, 7, 2))[1]["w"].shape == (4, 7, 2, 4)
    assert horizontal_conv(4, 7)[0](onp.random.default_rng(0), (7, 7, 2))[1]["w"].shape == (1, 4, 2, 4)


def test_shifts_by_hand():
    x = onp.arange(6.0).reshape(1, 2, 3, 1)                                      # [[0 1 2] [3 4 5]]
    onp.testing.assert_array_equal(shift_down(x)[0, :, :, 0], [[0, 0, 0], [0, 1, 2]])
    onp.testing.assert_array_equal(shift_right(x)[0, :, :, 0], [[0, 0, 1], [0, 3, 4]])


def test_gate_by_hand():
    # tanh(0.5) * sigmoid(-1) and tanh(-2) * sigmoid(3)
    x = onp.array([[0.5, -2.0, -1.0, 3.0]])
    expected = [onp.tanh(0.5) / (1 + onp.exp(1.0)), onp.tanh(-2.0) / (1 + onp.exp(-3.0))]
    onp.testing.assert_allclose(gate(x), [expected], rtol=1e-14)
    assert gate(onp.array([[0.0, 1000.0]]))[0, 0] == 0.0 and onp.isfinite(gate(onp.array([[1.0, -1000.0]]))).all()


# ---------------------------------------------------------------- slow oracle

def shifted(x, di, dj):
    """y[:, i, j] = x[:, i+di, j+dj], zero outside the grid."""
    _, height, width, _ = x.shape
    y = onp.zeros_like(x)
    for i in range(height):
        for j in range(width):
            if 0 <= i + di < height and 0 <= j + dj < width:
                y[:, i, j] = x[:, i + di, j + dj]
    return y


def naive_gated_logits(params, e, labels=None):
    """The gated network from the paper's equations, as sums over explicit cell offsets."""
    sigmoid = lambda a: 1.0 / (1.0 + onp.exp(-a))   # noqa: E731
    relu = lambda a: onp.maximum(a, 0)              # noqa: E731
    v, h = e, e
    for n, layer in enumerate(params["body"]):
        first, p = n == 0, layer["v"]["w"].shape[1] // 2
        w_v, w_h = layer["v"]["w"], layer["h"]["w"]          # (p+1, k, C, 2C), (1, p+1, C, 2C)
        v_pre = layer["v"]["b"] + sum(shifted(v, di, dj) @ w_v[di + p, dj + p]
                                      for di in range(-p, 1) for dj in range(-p, p + 1))
        skip = 1 if first else 0                              # the first layer excludes the current cell
        h_pre = layer["h"]["b"] + sum(shifted(h, 0, dj - skip) @ w_h[0, dj + p] for dj in range(-p, 1))
        h_pre = h_pre + shifted(v_pre, -1, 0) @ layer["v_to_h"]["w"][0, 0] + layer["v_to_h"]["b"]
        if labels is not None:
            v_pre = v_pre + layer["class_v"][labels][:, None, None, :]
            h_pre = h_pre + layer["class_h"][labels][:, None, None, :]
        c = v_pre.shape[-1] // 2
        v = onp.tanh(v_pre[..., :c]) * sigmoid(v_pre[..., c:])
        h_new = (onp.tanh(h_pre[..., :c]) * sigmoid(h_pre[..., c:])) @ layer["h_out"]["w"][0, 0] + layer["h_out"]["b"]
        h = h_new if first else h + h_new
    head = params["head"]
    x = relu(h) @ head[1]["w"][0, 0] + head[1]["b"]
    return relu(x) @ head[3]["w"][0, 0] + head[3]["b"]


def test_logits_match_loop_oracle(rng):
    model, params = tiny_gated(rng, num_classes=3)
    idx, labels = rng.integers(0, 5, size=(2, 4, 5)), onp.array([2, 0])
    onp.testing.assert_allclose(model.logits(params, idx, labels),
                                naive_gated_logits(params, params["input"]["table"][idx], labels),
                                atol=1e-12)
    model = build_prior(dict(TINY, num_blocks=2, first_kernel=5, input_mode="codes", code_dim=3))
    params = tree_cast(model.init(rng), onp.float64)
    codes = rng.normal(size=(2, 6, 5, 3))
    projected = codes @ params["input"]["w"] + params["input"]["b"]
    onp.testing.assert_allclose(model.logits(params, codes), naive_gated_logits(params, projected),
                                atol=1e-12)


# ---------------------------------------------------------------- causality, no blind spot
# (input_dependence and strictly_earlier: minivq.testing)


@pytest.mark.parametrize("input_mode, num_classes", [("embedding", None), ("codes", None), ("embedding", 3)])
def test_exactly_causal_and_no_blind_spot(rng, input_mode, num_classes):
    """On 5x5 grids with 3x3 kernels and 1 + 4 layers (reach 5 rows up, 5 columns either
    way), logits at (i, j) depend on EVERY earlier cell and on nothing at or after (i, j)."""
    model, params = tiny_gated(rng, input_mode, num_classes)
    labels = None if num_classes is None else onp.array([0, 2])
    if input_mode == "codes":
        x = rng.normal(size=(2, 5, 5, 3))
        dep = input_dependence(lambda c: model.logits(params, c, labels), x)
    else:
        x = params["input"]["table"][rng.integers(0, 5, size=(2, 5, 5))]
        dep = input_dependence(lambda e: model.logits_from_embedded(params, e, labels), x)
    onp.testing.assert_array_equal(dep, strictly_earlier(5, 5))


def test_reference_gated_sees_every_earlier_cell_on_7x7(rng):
    """The default gated shape (7x7 first layer, then 3x3) covers the 7x7 grid with 4 layers."""
    model = build_prior(dict(num_codes=3, channels=2, num_blocks=3, gated=True))
    params = tree_cast(model.init(rng), onp.float64)
    e = params["input"]["table"][rng.integers(0, 3, size=(2, 7, 7))]
    dep = input_dependence(lambda x: model.logits_from_embedded(params, x), e)
    onp.testing.assert_array_equal(dep, strictly_earlier(7, 7))


# ---------------------------------------------------------------- gradients, conditioning

@pytest.mark.parametrize("input_mode, num_classes", [("embedding", 3), ("codes", None)])
def test_prior_loss_gradients(rng, input_mode, num_classes):
    model, params = tiny_gated(rng, input_mode, num_classes)
    idx = rng.integers(0, 5, size=(2, 4, 4))
    codes = rng.normal(size=(2, 4, 4, 3)) if input_mode == "codes" else None
    labels = None if num_classes is None else onp.array([1, 2])
    check_grads(lambda p: model.loss(p, idx, codes, labels), modes=["rev"], order=1)(params)
    check_grads(lambda p: model.loss(p, idx, codes, labels, dropout=0.3, rng=onp.random.default_rng(2)),
                modes=["rev"], order=1)(params)


def test_class_bias_starts_at_zero_and_conditions(rng):
    model = build_prior(dict(TINY, num_classes=3))
    params = model.init(rng)
    idx = rng.integers(0, 5, size=(2, 4, 4))
    # zero biases at init: every class gives the same logits
    onp.testing.assert_array_equal(model.logits(params, idx, onp.array([0, 0])),
                                   model.logits(params, idx, onp.array([2, 1])))
    g = grad(lambda p: model.loss(p, idx, labels=onp.array([0, 0])))(params)
    assert onp.any(g["body"][0]["class_h"][0] != 0) and not onp.any(g["body"][0]["class_h"][1:])


def test_conditional_label_errors(rng):
    model, params = tiny_gated(rng, num_classes=3)
    idx = rng.integers(0, 5, size=(2, 4, 4))
    with pytest.raises(ValueError, match="pass labels"):
        model.loss(params, idx)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        model.loss(params, idx, labels=onp.array([0, 3]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        model.loss(params, idx, labels=onp.array([0, 1, 2]))
