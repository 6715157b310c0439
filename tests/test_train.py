"""Tests for minivq.train: convergence, divergence handling, bit-exact resume, files, hooks."""
import json
import os

import autograd.numpy as np
import numpy as onp
import pytest

from minivq.checkpoint import load_checkpoint
from minivq.optim import sgd
from minivq.train import TrainingDivergedError, next_batch, train, value_grad_and_aux
from minivq.tree import tree_flatten_with_paths, tree_leaves
from minivq.vqvae import build_vqvae

TINY = dict(input_shape=(8, 8, 1), hidden=4, res_hidden=2, num_res_blocks=1,
            num_downsamplings=2, code_dim=3, num_codes=6)


def mean_loss(params, batch):
    """Loss with a known minimiser: mu* = the mean of the data."""
    return np.mean((batch - params["mu"]) ** 2)


def tiny_images(seed=0, n=24):
    return onp.random.default_rng(seed).random((n, 8, 8, 1)).astype(onp.float32)


def assert_trees_equal(a, b):
    pairs_a, pairs_b = tree_flatten_with_paths(a), tree_flatten_with_paths(b)
    assert [p for p, _ in pairs_a] == [p for p, _ in pairs_b]
    for (path, x), (_, y) in zip(pairs_a, pairs_b):
        assert onp.asarray(x).dtype == onp.asarray(y).dtype, path
        onp.testing.assert_array_equal(x, y, err_msg=path)


# ---------------------------------------------------------------- the step itself

def test_value_grad_and_aux_one_pass_matches_hand_gradient():
    calls = []

    def loss_fn(p, batch):
        calls.append(1)
        loss = np.sum(p["w"] ** 2 * batch)
        return loss, {"twice": 2.0 * loss, "vector": p["w"]}

    p = {"w": onp.array([1.0, -2.0])}
    loss, grads, aux = value_grad_and_aux(loss_fn, p, onp.array([3.0, 0.5]))
    assert float(loss) == 3.0 + 2.0 and len(calls) == 1                   # 1*3 + 4*0.5, one forward pass
    onp.testing.assert_array_equal(grads["w"], [6.0, -2.0])        # 2 w batch
    assert aux["twice"] == 10.0 and type(aux["vector"]) is onp.ndarray   # unboxed


@pytest.mark.parametrize("n", [9, 10])
def test_next_batch_covers_every_row_once_per_epoch(n):
    data = onp.arange(n)
    rng = onp.random.default_rng(0)
    sampler = {"order": onp.zeros(0, onp.int64), "position": onp.array(0)}
    seen = []
    for _ in range(3):                         # 3 batches of 3: one epoch (n = 10 leaves a row over)
        batch, sampler = next_batch(data, sampler, 3, rng)
        seen += list(batch)
    assert len(set(seen)) == 9
    batch, sampler = next_batch(data, sampler, 3, rng)             # the 4th batch starts a new epoch
    assert int(sampler["position"]) == 3


# ---------------------------------------------------------------- convergence

def test_adam_finds_the_data_mean():
    data = onp.random.default_rng(0).normal(3.0, 1.0, size=(64, 2)).astype(onp.float32)
    params = {"mu": onp.zeros(2, onp.float32)}
    result = train(mean_loss, params, data, steps=400, batch_size=64, lr=0.05,
                   rng=onp.random.default_rng(1), progress=False)
    onp.testing.assert_allclose(result.params["mu"], data.mean(axis=0), atol=1e-2)
    assert result.params["mu"].dtype == onp.float32
    assert len(result.history["train"]) == 400


def test_sgd_through_train_matches_the_closed_form():
    # L(mu) = mean_{n,i} (x_ni - mu_i)^2 on the full batch has dL/dmu = -(xbar - mu), so
    # sgd(lr) gives mu_t = xbar (1 - (1 - lr)^t) from mu_0 = 0.
    data = onp.random.default_rng(0).normal(3.0, 1.0, size=(16, 2))
    lr, steps = 0.1, 3
    result = train(mean_loss, {"mu": onp.zeros(2)}, data, steps=steps, batch_size=16, lr=lr,
                   rng=onp.random.default_rng(1), optimizer=sgd(lr), progress=False)
    expected = data.mean(axis=0) * (1.0 - (1.0 - lr) ** steps)
    onp.testing.assert_allclose(result.params["mu"], expected, rtol=1e-12)
    assert set(result.opt_state) == {"step"} and int(result.opt_state["step"]) == steps


def test_vqvae_loss_decreases_and_params_stay_float32():
    model = build_vqvae(TINY)
    rng = onp.random.default_rng(0)
    params = model.init(rng)
    result = train(model.loss_and_aux, params, tiny_images(), steps=40, batch_size=8, lr=1e-2,
                   rng=rng, progress=False)
    losses = [r["loss"] for r in result.history["train"]]
    # uniform noise pixels: the best constant guess leaves var U(0,1) = 1/12 = 0.083
    assert onp.mean(losses[-5:]) < 0.4 * onp.mean(losses[:3])
    assert {"recon_mse", "perplexity", "used_codes", "codebook_loss"} <= set(result.history["train"][0])
    assert {leaf.dtype for leaf in tree_leaves(result.params)} == {onp.dtype(onp.float32)}


def test_float64_leak_into_a_float32_loss_is_refused():
    def leaky(params, batch):
        return np.sum(params["mu"] * onp.ones(2))                  # float64 ones upcast the loss

    with pytest.raises(TypeError, match="float64"):
        train(leaky, {"mu": onp.zeros(2, onp.float32)},
              onp.zeros((4, 2), onp.float32), 2, 2, 1e-3, onp.random.default_rng(0), progress=False)


# ---------------------------------------------------------------- divergence

def test_nan_loss_raises_and_keeps_the_last_good_checkpoint(tmp_path):
    calls = []

    def exploding(params, batch):
        calls.append(1)
        loss = mean_loss(params, batch)
        return loss * onp.nan if len(calls) == 5 else loss        # step 5 diverges

    data = onp.ones((8, 2), onp.float32)
    params = {"mu": onp.zeros(2, onp.float32)}
    with pytest.raises(TrainingDivergedError, match=r"step 5.*checkpoint.*step 4"):
        train(exploding, params, data, 10, 4, 0.1, onp.random.default_rng(0),
              out_dir=str(tmp_path), checkpoint_every=2, progress=False)
    ckpt = load_checkpoint(tmp_path / "checkpoint.npz")
    assert ckpt["step"] == 4 and onp.all(onp.isfinite(ckpt["params"]["mu"]))
    with open(tmp_path / "history.json") as f:
        assert [r["step"] for r in json.load(f)["train"]] == [1, 2, 3, 4]


@pytest.mark.filterwarnings("ignore:divide by zero", "ignore:invalid value")
def test_nan_gradient_with_finite_loss_raises():
    params = {"mu": onp.zeros(2, onp.float32)}                     # d sqrt(x) / dx at 0 is inf
    with pytest.raises(TrainingDivergedError, match="gradient of mu"):
        train(lambda p, b: np.sum(np.sqrt(p["mu"] ** 2)), params, onp.zeros((2, 1), onp.float32),
              3, 1, 0.1, onp.random.default_rng(0), progress=False)


# ---------------------------------------------------------------- checkpoints and resume

def run_vqvae(out_dir, steps, rng_seed=0, resume=False):
    """Tiny EMA + dead-code-restart VQ-VAE run: exercises hook state and the rng."""
    model = build_vqvae(dict(TINY, codebook_update="ema", restart_after=2))
    params = model.init(onp.random.default_rng(0))
    x = tiny_images()
    return train(model.loss_and_aux, params, x[:20], steps, batch_size=6, lr=3e-3,
                 rng=onp.random.default_rng(rng_seed), step_hook=model.step_hook,
                 hook_state=model.init_state(params),
                 eval_fn=lambda p: model.evaluate(p, x[20:]), eval_every=3,
                 out_dir=str(out_dir), checkpoint_every=3, resume=resume, config=model.config,
                 progress=False)


def test_resume_is_bit_exact(tmp_path):
    whole = run_vqvae(tmp_path / "whole", 8)
    run_vqvae(tmp_path / "split", 4)
    # a different seed: the resumed run must take the rng state from the checkpoint
    resumed = run_vqvae(tmp_path / "split", 8, rng_seed=123, resume=True)
    assert_trees_equal(resumed.params, whole.params)
    assert_trees_equal(resumed.opt_state, whole.opt_state)
    assert_trees_equal(resumed.hook_state, whole.hook_state)
    assert [r["loss"] for r in resumed.history["train"]] == [r["loss"] for r in whole.history["train"]]
    assert load_checkpoint(tmp_path / "split" / "checkpoint.npz")["step"] == 8


def test_files_history_and_best_checkpoint(tmp_path):
    scores = iter([3.0, 1.0, 2.0])
    data = onp.ones((8, 2), onp.float32)
    params = {"mu": onp.zeros(2, onp.float32)}
    train(mean_loss, params, data, 6, 4, 0.1, onp.random.default_rng(0),
          eval_fn=lambda p: {"test_mse": next(scores)}, eval_every=2, out_dir=str(tmp_path),
          checkpoint_every=4, config={"name": "mean"}, progress=False)
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "checkpoint.npz", "history.json"]
    with open(tmp_path / "history.json") as f:
        history = json.load(f)
    assert [r["step"] for r in history["train"]] == [1, 2, 3, 4, 5, 6]
    assert [(r["step"], r["test_mse"]) for r in history["eval"]] == [(2, 3.0), (4, 1.0), (6, 2.0)]
    assert history["settings"]["batch_size"] == 4
    best = load_checkpoint(tmp_path / "best.npz")
    assert best["step"] == 4 and best["config"] == {"name": "mean"}
    last = load_checkpoint(tmp_path / "checkpoint.npz")
    assert last["step"] == 6 and float(last["extra"]["best"]) == 1.0
    assert set(last["opt_state"]) == {"step", "m", "v"} and int(last["opt_state"]["step"]) == 6


def test_resume_refuses_a_different_config(tmp_path):
    data = onp.ones((4, 2), onp.float32)
    params = {"mu": onp.zeros(2, onp.float32)}
    train(mean_loss, params, data, 2, 2, 0.1, onp.random.default_rng(0), out_dir=str(tmp_path),
          config={"lr": 0.1}, progress=False)
    with pytest.raises(ValueError, match="config"):
        train(mean_loss, params, data, 4, 2, 0.1, onp.random.default_rng(0), out_dir=str(tmp_path),
              config={"lr": 0.2}, resume=True, progress=False)


# ---------------------------------------------------------------- hooks

def test_step_hook_runs_every_step_after_the_update():
    seen = []

    def hook(params, state, aux, batch, rng):
        seen.append(float(params["mu"][0]))                        # params after Adam's update
        return params, {"count": state["count"] + 1}

    data = onp.ones((4, 2), onp.float32)
    result = train(mean_loss, {"mu": onp.zeros(2, onp.float32)}, data, 3, 2, 0.1,
                   onp.random.default_rng(0), step_hook=hook, hook_state={"count": onp.array(0)},
                   progress=False)
    assert int(result.hook_state["count"]) == 3
    assert seen[0] == pytest.approx(0.1)                           # Adam's first step is lr * sign(g)


def test_ema_and_restart_hooks_change_the_codebook_without_gradients():
    model = build_vqvae(dict(TINY, codebook_update="ema", restart_after=1))
    params = model.init(onp.random.default_rng(0))
    result = train(model.loss_and_aux, params, tiny_images(), 3, 6, 1e-3, onp.random.default_rng(0),
                   step_hook=model.step_hook, hook_state=model.init_state(params), progress=False)
    # the EMA loss gives the codebook zero gradient, so Adam leaves it alone: any change is the hooks'
    assert not onp.any(result.opt_state["m"]["quantizer"]["codebook"])
    assert not onp.array_equal(result.params["quantizer"]["codebook"], params["quantizer"]["codebook"])
    assert set(result.hook_state) == {"ema", "steps_unused"}
    assert result.params["quantizer"]["codebook"].dtype == onp.float32
