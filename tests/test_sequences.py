"""Sequences end to end: a sequence is a (B, 1, L, C) image with (1, k) kernels and (1, s) strides.

Evidence: per-axis layers against the primitive and finite differences; the causal masks on a
1 x L grid written out by hand and proved exactly through input gradients (plain and gated
prior); the sequence VQ-VAE's shapes and gradients; the array loader on (N, L) and (N, L, C)
arrays with its min-max scaling undone by hand; and the CLI pipeline train-vqvae -> encode ->
train-prior -> sample on a small synthetic set.
"""
import json
import os

import numpy as onp
import pytest
from autograd.test_util import check_grads

from minivq import data
from minivq.autoencoder import build_autoencoder, is_sequence
from minivq.checkpoint import load_checkpoint
from minivq.cli import main
from minivq.conv import conv2d, conv_transpose2d
from minivq.layers import Conv2d, ConvTranspose2d
from minivq.pixelcnn import MaskedConv2d, causal_mask
from minivq.prior import build_prior
from minivq.run_dir import load_codes, load_vqvae
from minivq.testing import check_layer_grads, input_dependence, strictly_earlier
from minivq.tree import tree_cast, tree_leaves
from minivq.vqvae import build_vqvae, code_grid_shape


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


# ---------------------------------------------------------------- the sequence VQ-VAE

SEQUENCE_VQVAE = dict(input_shape=(1, 16, 2), hidden=6, res_hidden=3, num_res_blocks=1,
                      num_downsamplings=2, code_dim=3, num_codes=5)


def test_sequence_vqvae_downsamples_along_the_length_only(rng):
    # H == 1 decides: (1, 4) kernels with (1, 2) strides halve L twice, 16 -> 4; the grid is 1 x 4.
    model = build_vqvae(SEQUENCE_VQVAE)
    assert is_sequence(model.config) and code_grid_shape(model.config) == (1, 4)
    params = model.init(rng)
    assert params["encoder"][0]["w"].shape == (1, 4, 2, 3)          # (1, 4) kernel, 2 -> hidden // 2
    assert all(leaf.shape[0] == 1 for leaf in tree_leaves(params["encoder"]) + tree_leaves(params["decoder"])
               if leaf.ndim == 4)                                   # every conv kernel is one row high
    x = rng.uniform(size=(3, 1, 16, 2)).astype(onp.float32)
    indices, codes = model.encode(params, x)
    assert indices.shape == (3, 1, 4) and codes.shape == (3, 1, 4, 3)
    assert model.decode_indices(params, indices).shape == x.shape
    aux = model.forward(params, x)
    assert aux["z_e"].shape == (3, 1, 4, 3) and aux["recon"].shape == x.shape
    with pytest.raises(ValueError, match="a sequence"):
        build_vqvae(dict(SEQUENCE_VQVAE, input_shape=(1, 10, 2)))   # 10 is not divisible by 4


def test_sequence_autoencoder_gradients_float64(rng):
    model = build_autoencoder({key: value for key, value in SEQUENCE_VQVAE.items() if key != "num_codes"})
    params = tree_cast(model.init(rng), onp.float64)
    x = rng.uniform(size=(2, 1, 16, 2))
    check_grads(lambda p: model.loss(p, x), modes=["rev"], order=1)(params)


# ---------------------------------------------------------------- loading sequences

def test_npy_of_shape_n_l_loads_as_scaled_sequences(tmp_path):
    x = onp.array([[-2.0, 0.0, 6.0], [1.0, 2.0, 3.0], [4.0, 5.0, -1.0], [0.5, 0.5, 0.5]])
    onp.save(tmp_path / "s.npy", x)
    ds = data.load_array_file(tmp_path / "s.npy", test_fraction=0.25)
    assert ds.x_train.shape == (3, 1, 3, 1) and ds.x_test.shape == (1, 1, 3, 1)
    assert ds.value_range == (-2.0, 6.0)
    both = onp.concatenate([ds.x_train, ds.x_test])[:, 0, :, 0]
    # (v + 2) / 8 by hand, e.g. -2 -> 0, 6 -> 1, 2 -> 0.5; rows in some permuted order
    assert sorted(map(tuple, onp.round(both * 8 - 2, 5))) == sorted(map(tuple, x))
    back = data.unscale(onp.concatenate([ds.x_train, ds.x_test]), ds.value_range)[:, 0, :, 0]   # undone
    onp.testing.assert_allclose(sorted(map(tuple, back)), sorted(map(tuple, x)), atol=1e-5)
    line = data.describe(ds._replace(source="s.npy"))
    assert line == "s.npy: 3 train + 1 test sequences, length 3, 1 channel, min-max scaled from [-2, 6], no labels"


def test_npz_sequences_with_channels_and_labels(tmp_path):
    # (N, L, C) needs kind='sequences' (a bare 3-D array is (N, H, W) grey images); one
    # scaling for train and test together.
    x_train = onp.arange(24.0).reshape(4, 3, 2)
    x_test = -onp.ones((2, 3, 2))
    onp.savez(tmp_path / "s.npz", x_train=x_train, y_train=onp.array([0, 1, 0, 1]), x_test=x_test,
              y_test=onp.array([1, 0]), kind="sequences")
    ds = data.load_array_file(tmp_path / "s.npz")
    assert ds.x_train.shape == (4, 1, 3, 2) and ds.value_range == (-1.0, 23.0)
    onp.testing.assert_allclose(ds.x_train[:, 0], (x_train + 1) / 24, rtol=1e-6)
    onp.testing.assert_array_equal(ds.x_test, 0.0)
    assert "4 train + 2 test sequences, length 3, 2 channels" in data.describe(ds)
    onp.savez(tmp_path / "i.npz", x=x_train / 23)                 # no kind: 3-D is images
    assert data.load_array_file(tmp_path / "i.npz").x_train.shape[1:] == (3, 2, 1)
    onp.savez(tmp_path / "bad.npz", x=x_train, kind="audio")
    with pytest.raises(ValueError, match="kind must be 'images' or 'sequences'"):
        data.load_array_file(tmp_path / "bad.npz")
    onp.save(tmp_path / "nan.npy", onp.array([[0.0, onp.nan]]))
    with pytest.raises(ValueError, match="finite"):
        data.load_array_file(tmp_path / "nan.npy")


# ---------------------------------------------------------------- end to end through the CLI

def test_cli_pipeline_on_synthetic_sequences(tmp_path):
    # train-vqvae -> encode -> train-prior -> sample on 40 noisy sine waves (N, L) = (40, 32):
    # a few steps each; the outputs have the sequence shapes: grids 1 x 8, row-kernel prior.
    t = onp.linspace(0, 2 * onp.pi, 32)
    phases = onp.random.default_rng(0).uniform(0, 2 * onp.pi, 40)
    onp.save(tmp_path / "waves.npy", 3.0 * onp.sin(t[None, :] + phases[:, None]))
    run_dir = str(tmp_path / "run")
    tiny = ["--batch-size", "8", "--eval-every", "2", "--no-progress"]
    assert main(["train-vqvae", "--data", str(tmp_path / "waves.npy"), "--out", run_dir, "--steps", "3",
                 "--hidden", "8", "--res-hidden", "4", "--num-res-blocks", "1", "--code-dim", "4",
                 "--num-codes", "8", *tiny]) == 0
    assert main(["encode", "--run", run_dir, "--no-progress"]) == 0
    train_grids, test_grids, _ = load_codes(run_dir)
    assert train_grids.indices.shape[1:] == (1, 8) and test_grids.indices.shape[1:] == (1, 8)
    assert main(["train-prior", "--run", run_dir, "--steps", "2", "--channels", "8", "--num-blocks", "1",
                 *tiny]) == 0
    prior_config = load_checkpoint(os.path.join(run_dir, "prior", "checkpoint.npz"))["config"]
    assert list(prior_config["first_kernel"]) == [1, 7] and list(prior_config["kernel"]) == [1, 3]
    assert main(["sample", "--run", run_dir, "-n", "3", "--seed", "1", "--no-progress"]) == 0
    indices = onp.load(os.path.join(run_dir, "samples", "seed1_T1.npy"))       # the sampled index grids
    assert indices.shape == (3, 1, 8) and indices.min() >= 0 and indices.max() < 8
    vqvae = load_vqvae(run_dir)
    assert vqvae.model.decode_indices(vqvae.params, indices).shape == (3, 1, 32, 1)   # decoded sequences
    assert os.path.isfile(os.path.join(run_dir, "samples", "seed1_T1.png"))
