"""PixelCNN prior: masks by hand, the masked conv and its crop, exact causality through
gradients, a loop oracle, the loss."""
import json
import math

import autograd.numpy as np
import numpy as onp
import pytest
from autograd import grad
from autograd.test_util import check_grads

from minivq.conv import conv2d
from minivq.optim import adam
from minivq.pixelcnn import MaskedConv2d, _mask_crop, causal_mask, crop_kernel
from minivq.prior import build_prior, cross_entropy, make_config
from minivq.testing import check_layer_grads, input_dependence, strictly_earlier
from minivq.tree import tree_cast

TINY = dict(num_codes=5, channels=6, num_blocks=2, first_kernel=3, kernel=3)


def tiny_prior(rng, input_mode="embedding", **overrides):
    """(model, float64 params) of a tiny plain prior."""
    model = build_prior(dict(TINY, input_mode=input_mode, code_dim=3 if input_mode == "codes" else None,
                             **overrides))
    return model, tree_cast(model.init(rng), onp.float64)


# ---------------------------------------------------------------- masks, by hand

def test_masks_k3_by_hand():
    onp.testing.assert_array_equal(causal_mask(3, "A")[..., 0, 0], [[1, 1, 1],
                                                                    [1, 0, 0],
                                                                    [0, 0, 0]])
    onp.testing.assert_array_equal(causal_mask(3, "B")[..., 0, 0], [[1, 1, 1],
                                                                    [1, 1, 0],
                                                                    [0, 0, 0]])


def test_masks_k5_by_hand():
    onp.testing.assert_array_equal(causal_mask(5, "A")[..., 0, 0], [[1, 1, 1, 1, 1],
                                                                    [1, 1, 1, 1, 1],
                                                                    [1, 1, 0, 0, 0],
                                                                    [0, 0, 0, 0, 0],
                                                                    [0, 0, 0, 0, 0]])
    onp.testing.assert_array_equal(causal_mask(5, "B")[..., 0, 0], [[1, 1, 1, 1, 1],
                                                                    [1, 1, 1, 1, 1],
                                                                    [1, 1, 1, 0, 0],
                                                                    [0, 0, 0, 0, 0],
                                                                    [0, 0, 0, 0, 0]])
    assert causal_mask(5, "A").shape == (5, 5, 1, 1) and causal_mask(5, "A").dtype == onp.float32


@pytest.mark.parametrize("kernel, mask_type", [(4, "A"), (3, "C")])
def test_mask_rejects_bad_arguments(kernel, mask_type):
    with pytest.raises(ValueError):
        causal_mask(kernel, mask_type)


# ---------------------------------------------------------------- the masked convolution

def test_masked_conv_weights_get_zero_gradient_and_never_change_under_adam():
    mask = onp.ones((3, 3, 1, 1), onp.float32)
    mask[1, 2:] = 0
    mask[2:] = 0                       # a PixelCNN-style causal mask
    init, apply = MaskedConv2d(4, 3, mask, padding=1)
    rng = onp.random.default_rng(0)
    _, params = init(rng, (5, 5, 2))
    x = rng.normal(size=(2, 5, 5, 2)).astype(onp.float32)
    loss = lambda p: np.sum(apply(p, x) ** 2)
    g = grad(loss)(params)
    assert onp.all(g["w"][mask[..., 0, 0] == 0] == 0)
    assert onp.all(g["w"][mask[..., 0, 0] == 1] != 0)
    opt_init, opt_update = adam(1e-2)
    state = opt_init(params)
    new = params
    for _ in range(5):
        new, state = opt_update(new, grad(loss)(new), state)
    masked = mask[..., 0, 0] == 0
    onp.testing.assert_array_equal(new["w"][masked], params["w"][masked])
    assert not onp.array_equal(new["w"][~masked], params["w"][~masked])
    check_layer_grads((init, apply), (4, 4, 2))


def _causal(k, centre_included):
    mask = onp.zeros((k, k, 1, 1), onp.float32)
    mask[:k // 2] = 1
    mask[k // 2, :k // 2 + centre_included] = 1
    return mask


def _corner_mask():
    mask = onp.zeros((5, 5, 1, 1), onp.float32)
    mask[1:3, 2:4] = 1                 # zero rows and columns on every side
    return mask


@pytest.mark.parametrize("mask, kernel, stride, padding, cropped", [
    (_causal(7, False), 7, 1, 3, ((0, 4), (0, 7), ((3, 0), (3, 3)))),
    (_causal(3, True), 3, 1, 1, ((0, 2), (0, 3), ((1, 0), (1, 1)))),
    (_causal(3, True), 3, 2, 1, ((0, 2), (0, 3), ((1, 0), (1, 1)))),
    (_corner_mask(), 5, 1, 2, ((1, 3), (2, 4), ((1, 0), (0, 1)))),
    (_corner_mask(), 5, 1, 0, None),   # cropping would need negative padding: conv the full kernel
    (onp.zeros((3, 3, 1, 1), onp.float32), 3, 1, 1, None),
])
def test_masked_conv_crops_the_kernel_and_keeps_the_output(mask, kernel, stride, padding, cropped):
    # The cropped conv against the uncropped conv of the masked kernel (the plain path).
    crop = _mask_crop(mask, kernel, padding)
    if cropped is None:
        assert crop is None
    else:
        (r0, r1), (c0, c1), pads = cropped
        assert crop == (slice(r0, r1), slice(c0, c1), pads)
    init, apply = MaskedConv2d(3, kernel, mask, stride, padding)
    rng = onp.random.default_rng(1)
    _, params = init(rng, (7, 6, 2))
    x = rng.normal(size=(2, 7, 6, 2))
    params64 = {k: v.astype(onp.float64) for k, v in params.items()}
    expected = conv2d(x, params64["w"] * mask, stride, padding) + params64["b"]
    onp.testing.assert_allclose(apply(params64, x), expected, rtol=1e-12, atol=1e-12)
    check_layer_grads((init, apply), (5, 6, 2))


def test_crop_kernel_vjp_matches_autograd_slicing():
    rng = onp.random.default_rng(2)
    w = rng.normal(size=(5, 5, 2, 3))
    weights = rng.normal(size=(2, 3, 2, 3))
    rows, cols = slice(1, 3), slice(2, 5)
    ours = grad(lambda w_: np.sum(crop_kernel(w_, rows, cols) * weights))(w)
    reference = grad(lambda w_: np.sum(w_[rows, cols] * weights))(w)
    onp.testing.assert_array_equal(ours, reference)
    check_grads(lambda w_: crop_kernel(w_, rows, cols), modes=["rev"], order=1)(w)


# ---------------------------------------------------------------- config

@pytest.mark.parametrize("overrides", [
    dict(TINY), dict(TINY, input_mode="codes", code_dim=3), dict(num_codes=64),
    dict(TINY, gated=True, num_classes=4), dict(TINY, gated=True, input_mode="codes", code_dim=2),
])
def test_build_prior_keeps_its_config_through_json(rng, overrides):
    # A checkpoint stores the config as JSON; the prior rebuilt from it is the same model.
    model = build_prior(overrides)
    assert model.config == make_config(**overrides)
    rebuilt = build_prior(json.loads(json.dumps(model.config)))
    assert rebuilt.config == model.config
    params = model.init(rng)
    idx = rng.integers(0, model.config["num_codes"], size=(2, 3, 3))
    code_dim = model.config["code_dim"]
    codes = rng.normal(size=(2, 3, 3, code_dim)) if code_dim else None
    labels = onp.array([0, 1]) if model.config["num_classes"] else None
    assert rebuilt.loss(params, idx, codes, labels) == model.loss(params, idx, codes, labels)


@pytest.mark.parametrize("overrides, match", [
    (dict(input_mode="pixels"), "input_mode"), (dict(input_mode="codes"), "code_dim"),
    (dict(kernel=4), "odd"), (dict(num_classes=10), "gated"), (dict(colour=3), "unknown"),
])
def test_config_rejects_bad_values(overrides, match):
    with pytest.raises(ValueError, match=match):
        make_config(**overrides)


def test_reference_size():
    # embedding 64x64 + 7x7x64x64 conv + 6 x 3x3x64x64 convs + two 1x1 convs, all with biases
    params = build_prior().init(onp.random.default_rng(0))
    sizes = [64 * 64, 49 * 64 * 64 + 64, 6 * (9 * 64 * 64 + 64), 64 * 64 + 64, 64 * 64 + 64]
    assert sum(onp.size(leaf) for leaf in _leaves(params)) == sum(sizes)


def _leaves(tree):
    if isinstance(tree, dict):
        return [leaf for key in tree for leaf in _leaves(tree[key])]
    if isinstance(tree, list):
        return [leaf for child in tree for leaf in _leaves(child)]
    return [tree]


# ---------------------------------------------------------------- slow oracle

def naive_masked_conv(x, w, b, mask):
    """y[n,i,j,:] = b + sum over unmasked taps (u, v) of x[n, i+u-p, j+v-p, :] @ w[u, v]."""
    batch, height, width, _ = x.shape
    p = w.shape[0] // 2
    x_pad = onp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    y = onp.zeros((batch, height, width, w.shape[3])) + b
    for u in range(w.shape[0]):
        for v in range(w.shape[1]):
            if mask[u, v, 0, 0]:
                y += x_pad[:, u:u + height, v:v + width, :] @ w[u, v]
    return y


def naive_reference_logits(params, e):
    """The reference network written out with loops: mask-A conv, residual blocks, 1x1 head."""
    relu = lambda a: onp.maximum(a, 0)   # noqa: E731
    body, head = params["body"], params["head"]
    x = naive_masked_conv(e, body[0]["w"], body[0]["b"], causal_mask(body[0]["w"].shape[0], "A"))
    for block in body[1:]:
        conv = block[1]
        x = x + naive_masked_conv(relu(x), conv["w"], conv["b"], causal_mask(conv["w"].shape[0], "B"))
    x = relu(x) @ head[1]["w"][0, 0] + head[1]["b"]
    return relu(x) @ head[3]["w"][0, 0] + head[3]["b"]


def test_logits_match_loop_oracle_both_modes(rng):
    idx = rng.integers(0, 5, size=(2, 4, 5))
    model, params = tiny_prior(rng)
    onp.testing.assert_allclose(model.logits(params, idx),
                                naive_reference_logits(params, params["input"]["table"][idx]), atol=1e-12)
    model, params = tiny_prior(rng, "codes")
    codes = rng.normal(size=(2, 4, 5, 3))
    projected = codes @ params["input"]["w"] + params["input"]["b"]
    onp.testing.assert_allclose(model.logits(params, codes), naive_reference_logits(params, projected),
                                atol=1e-12)


# ---------------------------------------------------------------- causality, exactly
# (input_dependence and strictly_earlier: minivq.testing)


def propagate(dep, mask):
    """Cells reachable through one masked conv: out[i,j] = union of dep[i+u-p, j+v-p] over taps."""
    height, width = dep.shape[:2]
    p = mask.shape[0] // 2
    out = onp.zeros_like(dep)
    for u, v in zip(*onp.nonzero(mask[..., 0, 0])):
        di, dj = u - p, v - p
        rows, cols = slice(max(0, -di), min(height, height - di)), slice(max(0, -dj), min(width, width - dj))
        src_rows, src_cols = slice(rows.start + di, rows.stop + di), slice(cols.start + dj, cols.stop + dj)
        out[rows, cols] |= dep[src_rows, src_cols]
    return out


def reference_reach(height, width, first_kernel, kernel, num_blocks):
    """Receptive field of the reference network, by propagating mask supports (no network)."""
    dep = onp.eye(height * width, dtype=bool).reshape(height, width, height, width)
    dep = propagate(dep, causal_mask(first_kernel, "A"))
    for _ in range(num_blocks):
        dep = dep | propagate(dep, causal_mask(kernel, "B"))
    return dep


def test_causality_codes_mode_exact(rng):
    """No logit at (i, j) depends on the code vector at (i, j) or any later cell, the
    per-cell input projection (Dense) included; the dependence is exactly the mask support."""
    model, params = tiny_prior(rng, "codes")
    codes = rng.normal(size=(3, 5, 5, 3))
    dep = input_dependence(lambda c: model.logits(params, c), codes)
    assert not onp.any(dep & ~strictly_earlier(5, 5))
    onp.testing.assert_array_equal(dep, reference_reach(5, 5, 3, 3, TINY["num_blocks"]))


def test_causality_embedding_mode_exact_with_dropout(rng):
    """Same for a function of the embedded input, dropout on (a per-cell mask cannot mix cells)."""
    model, params = tiny_prior(rng)
    e = params["input"]["table"][rng.integers(0, 5, size=(3, 5, 5))]            # (3, 5, 5, C)
    dep = input_dependence(lambda x: model.logits_from_embedded(params, x), e)
    assert not onp.any(dep & ~strictly_earlier(5, 5))
    onp.testing.assert_array_equal(dep, reference_reach(5, 5, 3, 3, TINY["num_blocks"]))
    dep_dropout = input_dependence(
        lambda x: model.logits_from_embedded(params, x, dropout=0.5, rng=onp.random.default_rng(1)), e)
    assert not onp.any(dep_dropout & ~strictly_earlier(5, 5))


def test_plain_pixelcnn_blind_spot():
    """Observed (and explained by the mask supports): the plain PixelCNN has a blind spot.

    A 3x3 mask-B conv reaches (i-1, j+1) at best, so every column gained to the right in
    the rows above costs one row: on a 5x5 grid with 3x3 kernels and 2 blocks the logits
    at (2, 1) see row 1 only up to column 2 and row 0 up to column 3. The reference
    network (7x7 mask A, 6 blocks) on 7x7 grids misses 55 of the 1176 (cell, earlier cell)
    pairs: cell (i, j) never sees (i-1, j+4...), (i-2, j+5...), (i-3, j+6).
    """
    dep = reference_reach(5, 5, 3, 3, 2)
    onp.testing.assert_array_equal(dep[2, 1], [[1, 1, 1, 1, 0],
                                               [1, 1, 1, 0, 0],
                                               [1, 0, 0, 0, 0],
                                               [0, 0, 0, 0, 0],
                                               [0, 0, 0, 0, 0]])
    blind = strictly_earlier(7, 7) & ~reference_reach(7, 7, 7, 3, 6)
    assert blind.sum() == 55
    assert blind[4, 0, 3, 4:].all() and not blind[4, 0, 3, :4].any()
    assert blind[4, 0, 2, 5:].all() and blind[4, 0, 1, 6] and not blind[4, 0, 0].any()


# ---------------------------------------------------------------- loss

def test_cross_entropy_by_hand():
    # -log softmax([1, 2, 3])[2] = log(1 + e^-1 + e^-2) = 0.40760596444...
    logits = onp.array([[[[1.0, 2.0, 3.0]]]])
    assert cross_entropy(logits, onp.array([[[2]]])) == pytest.approx(0.4076059644443803, abs=1e-14)
    # mean over two cells: targets 0 and 2 of the same logits -> (2.40760596 + 0.40760596) / 2
    two = onp.array([[[[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]]])
    assert cross_entropy(two, onp.array([[[0, 2]]])) == pytest.approx(1.4076059644443803, abs=1e-14)
    # stable for huge logits: shifting by 1000 changes nothing
    assert cross_entropy(logits + 1000.0, onp.array([[[2]]])) == pytest.approx(0.4076059644443803, abs=1e-12)


def test_uniform_logits_give_log2_k_bits(rng):
    model = build_prior(dict(TINY, num_codes=8))
    params = model.init(rng)
    params["head"][3] = {"w": onp.zeros_like(params["head"][3]["w"]), "b": onp.zeros(8, onp.float32)}
    idx = rng.integers(0, 8, size=(7, 4, 4))
    assert model.bits_per_code(params, idx, batch_size=3) == pytest.approx(3.0, abs=1e-6)


def test_bits_in_batches_equals_one_batch(rng):
    model, params = tiny_prior(rng)
    idx = rng.integers(0, 5, size=(7, 3, 4))
    whole = float(model.loss(params, idx)) / math.log(2)
    assert model.bits_per_code(params, idx, batch_size=3) == pytest.approx(whole, rel=1e-12)
    assert model.bits_per_code(params, idx, batch_size=100) == pytest.approx(whole, rel=1e-12)


@pytest.mark.parametrize("input_mode", ["embedding", "codes"])
def test_prior_loss_gradients(rng, input_mode):
    model, params = tiny_prior(rng, input_mode)
    idx = rng.integers(0, 5, size=(2, 4, 4))
    codes = rng.normal(size=(2, 4, 4, 3)) if input_mode == "codes" else None
    check_grads(lambda p: model.loss(p, idx, codes), modes=["rev"], order=1)(params)
    # with dropout: a fresh Generator per call gives the same mask at every evaluation
    check_grads(lambda p: model.loss(p, idx, codes, dropout=0.3, rng=onp.random.default_rng(4)),
                modes=["rev"], order=1)(params)


def test_dropout_is_training_only(rng):
    model, params = tiny_prior(rng)
    idx = rng.integers(0, 5, size=(2, 4, 4))
    evaluation = model.logits(params, idx)
    onp.testing.assert_array_equal(model.logits(params, idx, dropout=0.5), evaluation)   # no rng: off
    assert not onp.allclose(model.logits(params, idx, dropout=0.5, rng=rng), evaluation)
    with pytest.raises(ValueError, match="dropout"):
        model.logits(params, idx, dropout=1.0, rng=rng)


def test_bad_inputs_raise(rng):
    model, params = tiny_prior(rng)
    idx = rng.integers(0, 5, size=(2, 4, 4))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        model.loss(params, idx + 5)
    with pytest.raises(ValueError, match=r"\(B, h, w\)"):
        model.loss(params, idx[0])
    with pytest.raises(ValueError, match="integer"):
        model.logits(params, idx.astype(float))
    with pytest.raises(ValueError, match="unconditional"):
        model.loss(params, idx, labels=onp.array([0, 1]))
    codes_model, codes_params = tiny_prior(rng, "codes")
    with pytest.raises(ValueError, match="pass codes"):
        codes_model.loss(codes_params, idx)
    with pytest.raises(ValueError, match=r"\(2, 4, 4, 3\)"):
        codes_model.loss(codes_params, idx, codes=onp.zeros((2, 4, 4, 2)))
    with pytest.raises(ValueError, match="float array"):
        codes_model.logits(codes_params, idx)


def test_cross_entropy_gradient_is_softmax_minus_one_hot():
    # Closed form: d mean_n(-log softmax(l_n)[t_n]) / d l_n = (softmax(l_n) - onehot(t_n)) / N.
    rng = onp.random.default_rng(3)
    logits = rng.normal(size=(2, 3, 3, 5))
    targets = rng.integers(0, 5, size=(2, 3, 3))
    softmax = onp.exp(logits) / onp.exp(logits).sum(-1, keepdims=True)
    expected = (softmax - onp.eye(5)[targets]) / targets.size
    onp.testing.assert_allclose(grad(cross_entropy)(logits, targets), expected, rtol=1e-12, atol=1e-15)
    check_grads(lambda l: cross_entropy(l, targets), modes=["rev"], order=1)(logits)
    assert grad(cross_entropy)(logits.astype(onp.float32), targets).dtype == onp.float32
