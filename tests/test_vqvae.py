"""Tests for minivq.autoencoder and minivq.vqvae: shapes and parameter counts by hand,
brute-force and PyTorch oracles, gradient checks (frozen-constant for the stop-gradient
paths), the straight-through lesson, the codebook hooks and input validation."""
import autograd.numpy as np
import numpy as onp
import pytest
from autograd import grad
from autograd.test_util import check_grads

from minivq.autoencoder import Encoder, build_autoencoder, make_config
from minivq.stopgrad import straight_through
from minivq.tree import tree_cast, tree_count, tree_leaves
from minivq.vqvae import build_vqvae, init_codebook_from_batch

# 8x8 images, two stride-2 convs -> a 2x2 grid of 3-dim codes, 5 codes.
TINY = dict(input_shape=(8, 8, 1), hidden=4, res_hidden=2, num_res_blocks=1,
            num_downsamplings=2, code_dim=3, num_codes=5)
TINY_AE = {k: v for k, v in TINY.items() if k != "num_codes"}


def tiny_problem(seed, batch=2, dtype=onp.float64, **overrides):
    """(model, params, x) with float64 params and images, as check_grads needs."""
    rng = onp.random.default_rng(seed)
    model = build_vqvae(dict(TINY, **overrides))
    params = tree_cast(model.init(rng), dtype)
    x = rng.random((batch, 8, 8, 1)).astype(dtype)
    return model, params, x


def with_codebook(params, codebook):
    return dict(params, quantizer={"codebook": codebook})


def all_zero(tree):
    return all(onp.all(onp.asarray(leaf) == 0) for leaf in tree_leaves(tree))


# ---------------------------------------------------------------- shapes and sizes by hand

def reference_param_count():
    """The PyTorch reference VQ-VAE's parameter count, layer by layer (weights + biases)."""
    conv = lambda k, c_in, c_out: k * k * c_in * c_out + c_out   # noqa: E731
    res_block = conv(3, 64, 32) + conv(1, 32, 64)                 # 18464 + 2112
    encoder = conv(4, 1, 32) + conv(4, 32, 64) + conv(3, 64, 64) + 2 * res_block + conv(1, 64, 16)
    codebook = 64 * 16
    decoder = conv(3, 16, 64) + 2 * res_block + conv(4, 64, 32) + conv(4, 32, 1)
    assert (encoder, codebook, decoder) == (112496, 1024, 83745)
    return encoder + codebook + decoder


def test_reference_architecture_shapes_and_parameter_count():
    model = build_vqvae()
    params = model.init(onp.random.default_rng(0))
    assert tree_count(params) == reference_param_count() == 197265
    assert tree_count(params["quantizer"]) == 64 * 16
    x = onp.random.default_rng(1).random((2, 28, 28, 1)).astype(onp.float32)
    indices, codes = model.encode(params, x)
    assert indices.shape == (2, 7, 7) and indices.dtype == onp.int64
    assert codes.shape == (2, 7, 7, 16) and codes.dtype == onp.float32
    recon = model.decode_indices(params, indices)
    assert recon.shape == (2, 28, 28, 1) and recon.dtype == onp.float32


def test_flat_model_one_code_per_image_and_parameter_count():
    model = build_vqvae(dict(TINY, kind="flat"))
    params = model.init(onp.random.default_rng(0))
    grid = build_vqvae(TINY).init(onp.random.default_rng(0))
    # flat adds Dense(2*2*3 -> 3) to the encoder and Dense(3 -> 2*2*3) to the decoder
    assert tree_count(params) == tree_count(grid) + (12 * 3 + 3) + (3 * 12 + 12)
    x = onp.random.default_rng(1).random((4, 8, 8, 1)).astype(onp.float32)
    indices, codes = model.encode(params, x)
    assert indices.shape == (4, 1, 1) and codes.shape == (4, 1, 1, 3)
    assert model.decode(params, codes).shape == (4, 8, 8, 1)


@pytest.mark.parametrize("kind", ["grid", "flat"])
def test_decode_indices_equals_decode_of_codes(kind):
    model, params, x = tiny_problem(0, batch=3, dtype=onp.float32, kind=kind)
    indices, codes = model.encode(params, x)
    onp.testing.assert_array_equal(model.decode_indices(params, indices), model.decode(params, codes))


def test_encode_matches_brute_force_nearest_code():
    model, params, x = tiny_problem(1, batch=3)
    z_e = model.forward(params, x)["z_e"]                          # (3, 2, 2, 3)
    codebook = params["quantizer"]["codebook"]
    expected = onp.zeros(z_e.shape[:3], onp.int64)
    for n, i, j in onp.ndindex(*z_e.shape[:3]):
        expected[n, i, j] = min(range(len(codebook)),
                                key=lambda k: sum((z_e[n, i, j, c] - codebook[k, c]) ** 2 for c in range(3)))
    indices, codes = model.encode(params, x)
    onp.testing.assert_array_equal(indices, expected)
    onp.testing.assert_array_equal(codes, codebook[expected])


def test_loss_terms_by_hand():
    model, params, x = tiny_problem(2)
    aux = model.forward(params, x)
    e = params["quantizer"]["codebook"][aux["indices"]]
    recon_mse = onp.mean((aux["recon"] - x) ** 2)
    vq = onp.mean((aux["z_e"] - e) ** 2)
    assert aux["recon_mse"] == pytest.approx(recon_mse, rel=1e-12)
    assert aux["loss"] == pytest.approx(recon_mse + vq + 0.25 * vq, rel=1e-12)   # Eq. 3, beta 0.25
    ema_model = build_vqvae(dict(TINY, codebook_update="ema"))
    assert ema_model.loss(params, x) == pytest.approx(recon_mse + 0.25 * vq, rel=1e-12)


@pytest.mark.parametrize("update", ["grad", "ema"])
def test_recon_weight_scales_only_the_reconstruction_term(update):
    """loss = s * mse + VQ terms, from a brute-force nearest code and the decoder run by hand."""
    s, beta = 3.5, 0.4
    model, params, x = tiny_problem(4, recon_weight=s, beta=beta, codebook_update=update)
    codebook = params["quantizer"]["codebook"]
    z_e = model.forward(params, x)["z_e"]                                   # (B, 2, 2, d)
    rows = z_e.reshape(-1, z_e.shape[-1])                                   # (B*4, d)
    nearest = onp.array([min(range(len(codebook)), key=lambda k: onp.sum((z - codebook[k]) ** 2))
                         for z in rows])
    e = codebook[nearest].reshape(z_e.shape)
    recon_mse = onp.mean((model.decode(params, e) - x) ** 2)
    vq = onp.mean((z_e - e) ** 2)
    expected = s * recon_mse + (beta * vq if update == "ema" else vq + beta * vq)
    assert model.loss(params, x) == pytest.approx(expected, rel=1e-12)
    assert model.forward(params, x)["recon_mse"] == pytest.approx(recon_mse, rel=1e-12)


def test_recon_weight_under_adam_is_beta_divided_by_it():
    """Adam ignores the loss scale: weight s with beta trains exactly as weight 1 with beta / s."""
    from minivq.optim import adam
    s, beta = 4.0, 0.5
    runs = []
    for weight, b in ((s, beta), (1.0, beta / s), (1.0, beta)):
        model, params, x = tiny_problem(5, recon_weight=weight, beta=b)
        init, update = adam(lr=1e-2, eps=1e-12)      # eps ~ 0: the scale invariance is exact
        state = init(params)
        for _ in range(3):
            params, state = update(params, grad(model.loss)(params, x), state)
        runs.append(params)
    # 3 steps of lr 1e-2 move parameters by up to 3e-2; the two runs agree to 1e-6 (rounding)
    gaps = [onp.max(onp.abs(a - b)) for a, b in zip(tree_leaves(runs[0]), tree_leaves(runs[1]))]
    assert max(gaps) < 1e-6
    # ... while keeping beta (the plain weight 1) trains differently
    assert max(onp.max(onp.abs(a - b)) for a, b in zip(tree_leaves(runs[0]), tree_leaves(runs[2]))) > 1e-3
    with pytest.raises(ValueError, match="recon_weight"):
        build_vqvae(dict(TINY, recon_weight=0.0))


def test_float32_model_gives_float32_loss_and_gradients():
    model, params, x = tiny_problem(3, dtype=onp.float32)
    loss = model.loss(params, x)
    grads = grad(model.loss)(params, x)
    assert onp.asarray(loss).dtype == onp.float32
    assert {onp.asarray(g).dtype for g in tree_leaves(grads)} == {onp.dtype(onp.float32)}


# ---------------------------------------------------------------- gradient checks (float64)

@pytest.mark.parametrize("seed", [0, 1])
def test_decoder_gradient_finite_differences(seed):
    # The decoder path has no stop_gradient: the whole loss is checked directly.
    model, params, x = tiny_problem(seed)
    check_grads(lambda dec: model.loss(dict(params, decoder=dec), x), modes=["rev"], order=1)(
        params["decoder"])


@pytest.mark.parametrize("seed", [0, 1])
def test_codebook_gradient_is_frozen_constant_codebook_loss(seed):
    # Frozen-constant test: with z_e and the reconstruction term held as constants, only
    # the codebook loss |z_e - e|^2 depends on the codebook, without any stop_gradient.
    model, params, x = tiny_problem(seed)
    aux = model.forward(params, x)
    z_e, indices = aux["z_e"], aux["indices"]
    rest = aux["recon_mse"] + 0.25 * aux["commitment_loss"]

    def frozen(codebook):
        return rest + np.mean((z_e - codebook[indices]) ** 2)

    codebook = params["quantizer"]["codebook"]
    check_grads(frozen, modes=["rev"], order=1)(codebook)
    g_model = grad(lambda cb: model.loss(with_codebook(params, cb), x))(codebook)
    onp.testing.assert_allclose(g_model, grad(frozen)(codebook), rtol=1e-12, atol=1e-15)
    # and against a hand loop: d/de_k mean|z - e|^2 = sum_{cells with code k} 2 (e_k - z) / (N d)
    expected = onp.zeros_like(codebook)
    for cell in onp.ndindex(*indices.shape):
        expected[indices[cell]] += 2 * (codebook[indices[cell]] - z_e[cell]) / z_e.size
    onp.testing.assert_allclose(g_model, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("seed", [0, 1])
def test_encoder_gradient_is_straight_through_surrogate(seed):
    # Frozen-constant test of the straight-through estimator: the decoder sees
    # z_e + c with c = (e - z_e) frozen at its current value, plus beta |z_e - e|^2.
    model, params, x = tiny_problem(seed)
    aux = model.forward(params, x)
    e = params["quantizer"]["codebook"][aux["indices"]]
    shift = e - aux["z_e"]                                         # constant
    codebook_term = aux["codebook_loss"]                           # constant w.r.t. the encoder
    _, encoder = Encoder(model.config)

    def surrogate(enc):
        z_e = encoder(enc, x)                                      # (B, 2, 2, 3)
        recon = model.decode(params, z_e + shift)
        return np.mean((recon - x) ** 2) + codebook_term + 0.25 * np.mean((z_e - e) ** 2)

    check_grads(surrogate, modes=["rev"], order=1)(params["encoder"])
    g_model = grad(lambda enc: model.loss(dict(params, encoder=enc), x))(params["encoder"])
    for got, want in zip(tree_leaves(g_model), tree_leaves(grad(surrogate)(params["encoder"]))):
        onp.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("seed", [0, 1])
def test_autoencoder_gradient_finite_differences(seed):
    rng = onp.random.default_rng(seed)
    model = build_autoencoder(TINY_AE)
    params = tree_cast(model.init(rng), onp.float64)
    x = rng.random((2, 8, 8, 1))
    check_grads(lambda p: model.loss(p, x), modes=["rev"], order=1)(params)


# ---------------------------------------------------------------- the gradient lesson

def test_without_straight_through_the_encoder_gets_no_reconstruction_gradient():
    model, params, x = tiny_problem(4)

    def recon_loss(p, straight):
        z_e = model.forward(p, x)["z_e"]
        codebook = p["quantizer"]["codebook"]
        e = codebook[model.encode(p, x)[0]]                        # plain gather: argmin has no gradient
        z = straight_through(z_e, e) if straight else e
        return np.mean((model.decode(p, z) - x) ** 2)

    with pytest.warns(UserWarning, match="independent"):           # autograd notices no path
        g_plain = grad(lambda enc: recon_loss(dict(params, encoder=enc), False))(params["encoder"])
    assert all_zero(g_plain)
    g_st = grad(lambda enc: recon_loss(dict(params, encoder=enc), True))(params["encoder"])
    assert not all_zero(g_st)


def test_straight_through_copies_the_decoder_input_gradient_to_z_e():
    model, params, x = tiny_problem(5)
    z_e = model.forward(params, x)["z_e"]
    e = params["quantizer"]["codebook"][model.encode(params, x)[0]]
    g_decoder_input = grad(lambda z: np.mean((model.decode(params, z) - x) ** 2))(e)
    g_z_e = grad(lambda z: np.mean((model.decode(params, straight_through(z, e)) - x) ** 2))(z_e)
    # equal up to the rounding of z_e + (e - z_e) vs e in the forward pass
    onp.testing.assert_allclose(g_z_e, g_decoder_input, rtol=1e-9, atol=1e-15)
    assert onp.any(g_z_e != 0)


def test_codebook_loss_moves_only_codebook_and_commitment_only_encoder():
    model, params, x = tiny_problem(6)
    g_cb = grad(lambda p: model.forward(p, x)["codebook_loss"])(params)
    g_commit = grad(lambda p: model.forward(p, x)["commitment_loss"])(params)
    assert all_zero(g_cb["encoder"]) and all_zero(g_cb["decoder"])
    assert onp.any(g_cb["quantizer"]["codebook"] != 0)
    assert all_zero(g_commit["quantizer"]) and all_zero(g_commit["decoder"])
    assert not all_zero(g_commit["encoder"])


def test_ema_loss_gives_the_codebook_no_gradient():
    model, params, x = tiny_problem(7, codebook_update="ema")
    g = grad(model.loss)(params, x)
    assert all_zero(g["quantizer"])


# ---------------------------------------------------------------- codebook hooks

def test_ema_hook_with_decay_zero_moves_used_codes_to_their_cluster_means():
    model, params, x = tiny_problem(8, dtype=onp.float32, codebook_update="ema",
                                    ema_decay=0.0, ema_eps=0.0)
    aux = model.forward(params, x)
    state = model.init_state(params)
    new_params, new_state = model.step_hook(params, state, aux, x, onp.random.default_rng(0))
    old, new = params["quantizer"]["codebook"], new_params["quantizer"]["codebook"]
    z = aux["z_e"].reshape(-1, 3)                                  # (B*h*w, d)
    idx = aux["indices"].ravel()
    for k in range(5):
        want = z[idx == k].mean(axis=0) if onp.any(idx == k) else old[k]
        onp.testing.assert_allclose(new[k], want, rtol=1e-5, atol=1e-6)
    assert new.dtype == onp.float32 and new_params["encoder"] is params["encoder"]
    assert set(new_state) == {"ema"}


@pytest.mark.parametrize("update", ["grad", "ema"])
def test_restart_hook_reseeds_unused_codes_from_the_batch(update):
    model, params, x = tiny_problem(9, batch=3, dtype=onp.float32, restart_after=1,
                                    codebook_update=update)
    aux = model.forward(params, x)
    unused = sorted(set(range(5)) - set(aux["indices"].ravel()))
    assert unused, "the problem must leave some code unused"
    state = model.init_state(params)
    new_params, new_state = model.step_hook(params, state, aux, x, onp.random.default_rng(0))
    codebook = new_params["quantizer"]["codebook"]
    rows = aux["z_e"].reshape(-1, 3)
    for k in unused:
        assert any(onp.array_equal(codebook[k], row) for row in rows)
    onp.testing.assert_array_equal(new_state["steps_unused"], 0)
    used = sorted(set(aux["indices"].ravel()))
    if update == "grad":
        onp.testing.assert_array_equal(codebook[used], params["quantizer"]["codebook"][used])
    else:   # a restarted code's EMA statistics restart too: N = 1, m = its new vector
        onp.testing.assert_array_equal(new_state["ema"]["cluster_size"][unused], 1.0)
        onp.testing.assert_array_equal(new_state["ema"]["embed_sum"][unused], codebook[unused])


@pytest.mark.parametrize("method", ["random", "kmeans++"])
def test_codebook_init_from_batch_uses_encoder_outputs(method):
    model, params, x = tiny_problem(10, batch=4, dtype=onp.float32)
    new = init_codebook_from_batch(model, params, x, onp.random.default_rng(0), method)
    rows = model.forward(params, x)["z_e"].reshape(-1, 3)
    codebook = new["quantizer"]["codebook"]
    assert codebook.dtype == onp.float32
    for k in range(5):
        assert any(onp.array_equal(codebook[k], row) for row in rows)
    assert init_codebook_from_batch(model, params, x, onp.random.default_rng(0), "uniform") is params


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("bad, match", [
    (onp.zeros((2, 8, 8), onp.float32), "shape"),
    (onp.zeros((2, 8, 8, 3), onp.float32), "shape"),
    (onp.zeros((2, 8, 8, 1), onp.uint8), "float"),
    (onp.full((2, 8, 8, 1), onp.nan, onp.float32), "NaN"),
])
def test_bad_images_raise_value_error(bad, match):
    model, params, _ = tiny_problem(0, dtype=onp.float32)
    for fn in (model.loss, model.encode):
        with pytest.raises(ValueError, match=match):
            fn(params, bad)


def test_bad_codes_and_indices_raise_value_error():
    model, params, _ = tiny_problem(0, dtype=onp.float32)
    with pytest.raises(ValueError, match="shape"):
        model.decode(params, onp.zeros((2, 3, 3, 3), onp.float32))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        model.decode_indices(params, onp.full((1, 2, 2), 5))
    with pytest.raises(ValueError, match="int"):
        model.decode_indices(params, onp.zeros((1, 2, 2), onp.float32))


def test_bad_configs_raise_value_error():
    with pytest.raises(ValueError, match="unknown config keys"):
        build_vqvae(dict(TINY, num_code=3))
    with pytest.raises(ValueError, match="divisible"):
        make_config(input_shape=(10, 10, 1), num_downsamplings=2)
    with pytest.raises(ValueError, match="codebook_update"):
        build_vqvae(dict(TINY, codebook_update="adam"))


# ---------------------------------------------------------------- PyTorch reference

def test_reference_model_matches_pytorch_forward():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    def res_block():
        body = nn.Sequential(nn.ReLU(), nn.Conv2d(64, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 1))

        class Res(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = body

            def forward(self, x):
                return x + self.body(x)
        return Res()

    encoder = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
                            nn.Conv2d(64, 64, 3, padding=1), res_block(), res_block(), nn.ReLU(),
                            nn.Conv2d(64, 16, 1)).double()
    decoder = nn.Sequential(nn.Conv2d(16, 64, 3, padding=1), res_block(), res_block(), nn.ReLU(),
                            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
                            nn.ConvTranspose2d(32, 1, 4, 2, 1)).double()
    torch_count = sum(p.numel() for p in [*encoder.parameters(), *decoder.parameters()]) + 64 * 16
    assert torch_count == reference_param_count()

    model = build_vqvae()
    params = tree_cast(model.init(onp.random.default_rng(0)), onp.float64)
    # Our leaves in module order: (w HWIO, b) pairs; torch conv weight is OIHW, and a
    # transposed conv's (in, out, kh, kw) is our (kh, kw, out, in) transposed the same way.
    ours = [leaf for tree in (params["encoder"], params["decoder"]) for leaf in _weights_in_order(tree)]
    theirs = [p for net in (encoder, decoder) for p in net.parameters()]
    assert len(ours) == len(theirs)
    with torch.no_grad():
        for mine, p in zip(ours, theirs):
            p.copy_(torch.from_numpy(mine.transpose(3, 2, 0, 1).copy() if mine.ndim == 4 else mine))
    x = onp.random.default_rng(1).random((2, 28, 28, 1))
    aux = model.forward(params, x)
    z_e_torch = encoder(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).detach().numpy()
    onp.testing.assert_allclose(aux["z_e"], z_e_torch.transpose(0, 2, 3, 1), rtol=1e-9, atol=1e-12)
    codes = params["quantizer"]["codebook"][aux["indices"]]
    recon_torch = decoder(torch.from_numpy(codes.transpose(0, 3, 1, 2).copy())).detach().numpy()
    onp.testing.assert_allclose(aux["recon"], recon_torch.transpose(0, 2, 3, 1), rtol=1e-9, atol=1e-12)


def _weights_in_order(tree):
    """Leaves of a serial layer's params in module order: each layer's w then b."""
    if isinstance(tree, dict):
        return ([tree["w"], tree["b"]] if "w" in tree else [])
    return [leaf for child in tree for leaf in _weights_in_order(child)]


def test_float32_gradients_stay_float32_inside_the_backward_pass():
    # Regression: np.mean's VJP divides by an int64 and NumPy 2 promotes float32 to float64.
    from autograd import grad
    from minivq.autoencoder import mse
    from minivq.quantize import quantize
    x = onp.full((2, 3), 0.5, onp.float32)
    assert grad(mse)(x * 2, x).dtype == onp.float32
    codebook = onp.random.default_rng(0).normal(size=(4, 3)).astype(onp.float32)
    assert grad(lambda z: quantize(codebook, z).vq_loss)(x).dtype == onp.float32
    assert grad(lambda c: quantize(c, x).vq_loss)(codebook).dtype == onp.float32
