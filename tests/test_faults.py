"""Faults found by trying bad inputs (issue 12): nothing trained is lost, every failure is named.

Each test reproduces one fault with a tiny least-squares "model" (the loop does not care
what it trains) or a tiny CLI run, and checks the files left on disk against what the
loop must guarantee: finite parameters, a history that matches the checkpoint, no temp files.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time

import autograd.numpy as np
import numpy as onp
import pytest

from minivq.checkpoint import load_checkpoint
from minivq.cli import main
from minivq.files import atomic_write_bytes, remove_temp_files
from minivq.train import TrainingDivergedError, train

DATA = onp.random.default_rng(0).normal(size=(32, 3)).astype(onp.float32)


def loss_fn(params, batch):
    return np.mean((batch - params["w"]) ** 2)


def dropout_loss(rng):
    """A loss that draws random numbers from the loop's rng, as the prior's dropout does."""
    def loss(params, batch):
        keep = rng.random(batch.shape) > 0.5
        return np.mean(keep * (batch - params["w"]) ** 2)
    return loss


def run(out_dir, steps, lr=0.1, seed=0, resume=False, loss=None, **kwargs):
    rng = onp.random.default_rng(seed)
    params = {"w": onp.zeros(3, onp.float32)}
    return train(loss or loss_fn, params, DATA, steps, 4, lr, rng, out_dir=str(out_dir),
                 checkpoint_every=1, resume=resume, config={"model": "mean"}, progress=False,
                 eval_fn=lambda p: {"test_mse": float(onp.mean((DATA - p["w"]) ** 2))},
                 eval_every=2, **kwargs)


def test_divergence_never_overwrites_the_good_checkpoint(tmp_path):
    run(tmp_path, 3)
    good = load_checkpoint(tmp_path / "checkpoint.npz")["params"]["w"]
    with pytest.raises(TrainingDivergedError) as error:
        run(tmp_path, 6, lr=1e300, resume=True, allow_new_settings=True)
    assert "became non-finite" in str(error.value) and "best.npz" in str(error.value)
    ckpt = load_checkpoint(tmp_path / "checkpoint.npz")
    assert ckpt["step"] == 3 and onp.array_equal(ckpt["params"]["w"], good)
    assert onp.all(onp.isfinite(load_checkpoint(tmp_path / "best.npz")["params"]["w"]))


def test_resume_without_a_checkpoint_refuses(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint.npz does not exist"):
        run(tmp_path, 3, resume=True)
    assert not os.path.exists(tmp_path / "history.json")


def test_resume_with_other_settings_refuses_unless_stated(tmp_path):
    run(tmp_path, 2)
    with pytest.raises(ValueError, match="lr 0.1 -> 0.05"):
        run(tmp_path, 4, lr=0.05, resume=True)
    result = run(tmp_path, 4, lr=0.05, resume=True, allow_new_settings=True)
    assert result.history["changes"] == [{"step": 2, "lr": [0.1, 0.05]}]


def test_resume_is_bit_exact_when_the_loss_draws_random_numbers(tmp_path):
    rng_split = onp.random.default_rng(0)
    params = {"w": onp.zeros(3, onp.float32)}
    common = dict(out_dir=str(tmp_path / "split"), checkpoint_every=1, config={"model": "mean"},
                  progress=False)
    train(dropout_loss(rng_split), params, DATA, 3, 4, 0.1, rng_split, **common)
    rng_whole = onp.random.default_rng(0)
    whole = train(dropout_loss(rng_whole), params, DATA, 6, 4, 0.1, rng_whole, progress=False)
    rng_resumed = onp.random.default_rng(99)       # its state must come from the checkpoint
    resumed = train(dropout_loss(rng_resumed), params, DATA, 6, 4, 0.1, rng_resumed,
                    resume=True, **common)
    assert onp.array_equal(resumed.params["w"], whole.params["w"])


def test_history_is_rebuilt_from_the_checkpoint_and_temp_files_removed(tmp_path):
    run(tmp_path, 4)
    history = json.load(open(tmp_path / "history.json"))
    history["train"] = history["train"][:2]                       # a kill before the history write
    (tmp_path / "history.json").write_text(json.dumps(history))
    (tmp_path / ".checkpoint.npz.abc123.tmp").write_bytes(b"half a checkpoint")
    run(tmp_path, 4, resume=True)
    history = json.load(open(tmp_path / "history.json"))
    assert [r["step"] for r in history["train"]] == [1, 2, 3, 4]
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_bytes(path, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.json"]
    (tmp_path / ".a.json.x.tmp").write_bytes(b"")
    assert remove_temp_files(tmp_path, ["a.json"]) == [".a.json.x.tmp"]


KILLED_RUN = """
import sys, numpy as onp, autograd.numpy as np
from minivq.train import train
out, resume, steps = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
data = onp.random.default_rng(0).normal(size=(32, 3)).astype(onp.float32)
train(lambda p, b: np.mean((b - p["w"]) ** 2), {"w": onp.zeros(3, onp.float32)}, data, steps, 4,
      0.1, onp.random.default_rng(0), out_dir=out, checkpoint_every=1, resume=resume,
      config={"model": "mean"}, progress=False)
"""


def test_kill_9_always_leaves_a_loadable_checkpoint_and_a_matching_history(tmp_path):
    out, pick = str(tmp_path / "run"), random.Random(0)
    for _ in range(5):
        resume = os.path.exists(os.path.join(out, "checkpoint.npz"))
        process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, out, str(int(resume)),
                                    "1000000"], stderr=subprocess.DEVNULL)
        time.sleep(0.8 + pick.random() * 0.7)             # import takes ~0.6 s; then ~1 ms a step
        process.send_signal(signal.SIGKILL)
        process.wait()
        if not os.path.exists(os.path.join(out, "checkpoint.npz")):
            continue
        step = load_checkpoint(os.path.join(out, "checkpoint.npz"))["step"]
        # the next start: cleans temp files and rebuilds the history from the checkpoint
        subprocess.run([sys.executable, "-c", KILLED_RUN, out, "1", str(step)], check=True)
        history = json.load(open(os.path.join(out, "history.json")))
        assert [r["step"] for r in history["train"]] == list(range(1, step + 1))
        assert not [name for name in os.listdir(out) if name.endswith(".tmp")]
    assert load_checkpoint(os.path.join(out, "checkpoint.npz"))["step"] > 0


TINY = ["--steps", "2", "--batch-size", "8", "--eval-every", "1", "--hidden", "4", "--res-hidden",
        "2", "--num-res-blocks", "1", "--code-dim", "2", "--num-codes", "4", "--no-progress"]


def cli_error(capsys, *argv):
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_force_with_a_bad_option_keeps_the_old_run(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train-vqvae", "--out", str(out), *TINY])
    before = sorted(os.listdir(out / "vqvae"))
    err = cli_error(capsys, "train-vqvae", "--out", out, "--force", *TINY[:2], "--batch-size",
                    "100000", *TINY[4:])
    assert "batch_size" in err
    assert sorted(os.listdir(out / "vqvae")) == before
    assert load_checkpoint(out / "vqvae" / "checkpoint.npz")["step"] == 2


def test_cli_resume_takes_the_runs_own_settings(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train-vqvae", "--out", str(out), *TINY[:2], "--lr", "0.002", *TINY[2:]])
    main(["train-vqvae", "--out", str(out), "--resume", "--steps", "3", "--no-progress"])
    config = json.load(open(out / "vqvae" / "config.json"))
    assert config["lr"] == 0.002 and config["batch_size"] == 8 and config["steps"] == 3
    assert "lr 0.002 -> 0.1" in cli_error(capsys, "train-vqvae", "--out", out, "--resume",
                                          "--lr", "0.1", "--no-progress")


def test_data_file_replaced_since_training_is_refused(tmp_path, capsys):
    x = onp.random.default_rng(0).random((40, 8, 8)).astype(onp.float32)
    onp.save(tmp_path / "x.npy", x)
    main(["train-vqvae", "--out", str(tmp_path / "run"), "--data", str(tmp_path / "x.npy"), *TINY])
    onp.save(tmp_path / "x.npy", x[::-1].copy())                    # same shape, other images
    assert "have changed since" in cli_error(capsys, "encode", "--run", tmp_path / "run",
                                             "--no-progress")


def test_os_errors_are_one_line_naming_the_file(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    err = cli_error(capsys, "train-vqvae", "--out", tmp_path / "file" / "run", *TINY)
    assert str(tmp_path / "file") in err and "not a folder" in err
    main(["train-vqvae", "--out", str(tmp_path / "r"), *TINY])
    (tmp_path / "r" / "vqvae" / "config.json").write_text("{not json")
    err = cli_error(capsys, "encode", "--run", tmp_path / "r", "--no-progress")
    assert "config.json is not valid JSON" in err and "--force" in err


# ---------------------------------------------------------------- silent wrong results (7-9)

def tiny_prior(num_codes=4, channels=4, **overrides):
    from minivq.prior import build_prior
    return build_prior(dict(num_codes=num_codes, channels=channels, num_blocks=1, first_kernel=3,
                            **overrides))


def test_sampling_a_prior_with_nan_weights_raises():
    from minivq.sampling import sample_from_logits, sample_grids
    prior = tiny_prior()
    params = prior.init(onp.random.default_rng(0))
    params["head"][-1]["w"] = params["head"][-1]["w"] * onp.float32("nan")
    with pytest.raises(ValueError, match="NaN or inf.*prior's weights"):
        sample_grids(prior, params, 2, 3, 3, onp.random.default_rng(0))
    with pytest.raises(ValueError, match="NaN or inf"):
        sample_from_logits(onp.array([[0.0, onp.inf]]), onp.random.default_rng(0))


def test_binary_uint8_masks_are_refused_not_divided_by_255():
    from minivq.data import to_images
    masks = (onp.random.default_rng(0).random((4, 5, 5)) > 0.5).astype(onp.uint8)
    with pytest.raises(ValueError, match="all 0 or 1.*x \\* 255"):
        to_images(masks)
    onp.testing.assert_array_equal(to_images(masks * 255)[..., 0], masks)   # 0/255 is the rule
    onp.testing.assert_array_equal(to_images(masks.astype(onp.float32))[..., 0], masks)


def tiny_vqvae():
    from minivq.vqvae import build_vqvae
    return build_vqvae(dict(input_shape=(8, 8, 1), hidden=4, res_hidden=2, num_res_blocks=1,
                            code_dim=2, num_codes=4))


def test_vqvae_loss_and_train_refuse_0_to_255_floats_and_bad_lr():
    model = tiny_vqvae()
    params = model.init(onp.random.default_rng(0))
    x = onp.random.default_rng(0).random((6, 8, 8, 1)).astype(onp.float32)
    with pytest.raises(ValueError, match=r"pixels in \[0, 1\].*divide 0..255 pixels by 255"):
        model.loss(params, x * 255)
    with pytest.raises(ValueError, match="divide 0..255"):
        model.evaluate(params, x * 255)
    with pytest.raises(ValueError, match="divide 0..255"):
        train(model.loss, params, x * 255, 1, 2, 1e-3, onp.random.default_rng(0), progress=False)
    for lr in (0.0, -1e-3, float("nan")):
        with pytest.raises(ValueError, match="lr must be a finite number > 0"):
            train(model.loss, params, x, 1, 2, lr, onp.random.default_rng(0), progress=False)


def test_a_checkpoint_says_what_it_holds_and_loading_checks_kind_and_config(tmp_path):
    from minivq.checkpoint import CheckpointError
    from minivq.run_dir import load_vqvae
    prior = tiny_prior()
    grids = onp.random.default_rng(0).integers(0, 4, (8, 3, 3))
    train(prior.loss, prior.init(onp.random.default_rng(0)), grids, 1, 2, 1e-3,
          onp.random.default_rng(0), out_dir=str(tmp_path / "vqvae"), config=prior.config,
          progress=False, model="prior")
    with pytest.raises(CheckpointError, match="expected a vqvae checkpoint, got a prior checkpoint"):
        load_vqvae(str(tmp_path))
    path = tmp_path / "vqvae" / "checkpoint.npz"
    assert load_checkpoint(path, model="prior", config=prior.config)["step"] == 1
    other = tiny_prior(channels=8).config
    with pytest.raises(CheckpointError, match="channels: file 4, expected 8"):
        load_checkpoint(path, model="prior", config=other)


# ---------------------------------------------------------------- messages (11, 13, 15)

def test_junk_and_object_array_files_are_named_without_pickle_advice(tmp_path):
    from minivq.data import load_array_file
    for name in ("junk.npy", "junk.npz"):
        (tmp_path / name).write_bytes(b"\x80\x04junk" * 50)
        with pytest.raises(ValueError) as error:
            load_array_file(tmp_path / name)
        text = str(error.value)
        assert name in text and "allow_pickle" not in text and "never loads" in text
    onp.save(tmp_path / "objects.npy", onp.array([1, "a", None], object))
    with pytest.raises(ValueError, match="objects.npy holds an object array.*astype"):
        load_array_file(tmp_path / "objects.npy")
    (tmp_path / "ckpt.npz").write_bytes(b"\x80\x04junk" * 50)
    with pytest.raises(ValueError) as error:
        load_checkpoint(tmp_path / "ckpt.npz")
    assert "ckpt.npz" in str(error.value) and "allow_pickle" not in str(error.value)


@pytest.mark.parametrize("change, match", [
    (dict(steps=2.5), "steps must be an integer"), (dict(batch_size="4"), "batch_size must be"),
    (dict(eval_every=0), "eval_every must be an integer >= 1"), (dict(lr=float("nan")), "lr must be"),
])
def test_train_settings_are_checked_by_name(change, match):
    args = dict(steps=2, batch_size=4, lr=0.1, eval_every=1)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        train(loss_fn, {"w": onp.zeros(3, onp.float32)}, DATA, args["steps"], args["batch_size"],
              args["lr"], onp.random.default_rng(0), eval_every=args["eval_every"], progress=False)


def test_empty_batches_and_float64_images_get_named_errors():
    model = tiny_vqvae()
    params = model.init(onp.random.default_rng(0))
    empty = onp.zeros((0, 8, 8, 1), onp.float32)
    for call in (model.loss, model.evaluate):
        with pytest.raises(ValueError, match="at least one image"):
            call(params, empty)
    x64 = onp.random.default_rng(0).random((6, 8, 8, 1))
    with pytest.raises(ValueError, match="data is float64 but the parameters are float32.*astype"):
        train(model.loss, params, x64, 1, 2, 1e-3, onp.random.default_rng(0), progress=False)


@pytest.mark.parametrize("module", ["conv", "fast_conv"])
def test_second_order_gradient_through_conv_says_first_order(module):
    from autograd import grad
    import importlib
    conv = importlib.import_module(f"minivq.{module}")
    rng = onp.random.default_rng(0)
    x, w = rng.normal(size=(1, 4, 4, 1)), rng.normal(size=(3, 3, 1, 2))
    inner = grad(lambda x: np.sum(conv.conv2d(x, w, 1, 1) ** 2))
    with pytest.raises(NotImplementedError, match="conv2d_vjp.*first-order"):
        grad(lambda x: np.sum(inner(x) ** 2))(x)
    inner_t = grad(lambda w: np.sum(conv.conv_transpose2d(x[..., :1].repeat(2, -1), w, 1, 1) ** 2))
    with pytest.raises(NotImplementedError, match="conv_transpose2d_vjp.*first-order"):
        grad(lambda w: np.sum(inner_t(w) ** 2))(w)


@pytest.mark.parametrize("module", ["conv", "fast_conv"])
def test_mixed_precision_conv_computes_in_float64_as_documented(module):
    """The rule (conv.py's docstring): x and w of different float dtypes give float64, NumPy's
    promotion; train() refuses such a leak into a float32 model (its precision check)."""
    import importlib
    conv = importlib.import_module(f"minivq.{module}")
    rng = onp.random.default_rng(0)
    x, w = rng.normal(size=(1, 4, 4, 1)).astype(onp.float32), rng.normal(size=(3, 3, 1, 2))
    y = conv.conv2d(x, w)
    assert y.dtype == onp.float64
    onp.testing.assert_allclose(y, conv.conv2d(x.astype(onp.float64), w), rtol=1e-12)

    def leaky(params, batch):
        return np.sum(conv.conv2d(batch, params["w"].astype(onp.float64)) ** 2) * 1e-3
    with pytest.raises(TypeError, match="another precision leaked"):
        train(leaky, {"w": w.astype(onp.float32)}, onp.repeat(x, 4, 0), 1, 2, 1e-3,
              onp.random.default_rng(0), progress=False)


# ---------------------------------------------------------------- test gaps (16-19)

def test_prior_dropout_rescales_the_kept_features_by_1_over_1_minus_p():
    # With an identity head (ReLU, 1x1 identity, ReLU, 1x1 identity, zero biases) the
    # logits are ReLU(features * keep / (1 - p)) = keep / (1 - p) * ReLU(features).
    prior = tiny_prior(num_codes=4, channels=4)
    params = prior.init(onp.random.default_rng(0))
    for layer in params["head"]:
        if "w" in layer:
            layer["w"] = onp.eye(4, dtype=onp.float32)[None, None]
            layer["b"] = onp.zeros_like(layer["b"])
    grids = onp.random.default_rng(1).integers(0, 4, (3, 5, 5))
    plain = prior.logits(params, grids)
    p = 0.25
    dropped = prior.logits(params, grids, dropout=p, rng=onp.random.default_rng(7))
    keep = onp.random.default_rng(7).random(plain.shape) >= p      # the mask, rebuilt from the seed
    assert 0 < keep.mean() < 1 and onp.any(plain > 0)
    onp.testing.assert_allclose(dropped, plain * keep / (1 - p), rtol=1e-6)


@pytest.mark.parametrize("g, eps", [(1e-4, 1e-8), (0.5, 1.0)])
def test_adam_first_step_divides_by_sqrt_v_hat_plus_eps(g, eps):
    # m_hat = g, v_hat = g^2: the step is lr * g / (|g| + eps); sqrt(v_hat + eps) would give
    # lr * g / sqrt(g^2 + eps), 0.707 * lr instead of lr for g = 1e-4, eps = 1e-8.
    from minivq.optim import adam
    init, update = adam(lr=0.1, eps=eps)
    params = {"p": onp.array(1.0)}
    new, _ = update(params, {"p": onp.array(g)}, init(params))
    onp.testing.assert_allclose(new["p"], 1.0 - 0.1 * g / (g + eps), rtol=1e-12)


def test_a_run_evaluates_at_its_final_step_when_not_a_multiple_of_eval_every():
    result = train(loss_fn, {"w": onp.zeros(3, onp.float32)}, DATA, 5, 4, 0.1,
                   onp.random.default_rng(0), eval_fn=lambda p: {"test_mse": 0.0}, eval_every=2,
                   progress=False)
    assert [r["step"] for r in result.history["eval"]] == [2, 4, 5]


@pytest.mark.parametrize("change", ["reshape", "view"])
def test_checkpoint_digest_refuses_a_same_bytes_reshape_or_dtype_view(tmp_path, change):
    from minivq.checkpoint import CheckpointError, save_checkpoint
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"w": onp.arange(6, dtype=onp.float32).reshape(2, 3)})
    with onp.load(path) as f:
        arrays = {key: f[key] for key in f.files}
    w = arrays["params/w"]
    arrays["params/w"] = w.reshape(3, 2) if change == "reshape" else w.view(onp.int32)
    assert arrays["params/w"].tobytes() == w.tobytes()
    onp.savez(path, **arrays)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path)


# ---------------------------------------------------------------- gaps: CLI one-liners (12, 14), prior resume (5)

PRIOR_TINY = ["--batch-size", "4", "--eval-every", "2", "--channels", "4", "--num-blocks", "1",
              "--first-kernel", "3", "--no-progress"]


@pytest.fixture(scope="module")
def encoded_run(tmp_path_factory):
    """A run with a tiny VQ-VAE and its code grids (copied by each test that trains a prior)."""
    out = tmp_path_factory.mktemp("encoded") / "run"
    main(["train-vqvae", "--out", str(out), *TINY])
    main(["encode", "--run", str(out), "--no-progress"])
    return out


def copy_run(run, to):
    import shutil
    shutil.copytree(run, to)
    return to


def test_prior_resume_with_dropout_is_bit_exact(encoded_run, tmp_path):
    from minivq.pipeline import train_prior
    from minivq.tree import tree_flatten_with_paths
    settings = dict(batch_size=4, eval_every=2, checkpoint_every=1, channels=4, num_blocks=1,
                    first_kernel=3, dropout=0.3, progress=False)
    whole, split = copy_run(encoded_run, tmp_path / "whole"), copy_run(encoded_run, tmp_path / "split")
    train_prior(str(whole), steps=4, **settings)
    train_prior(str(split), steps=2, **settings)
    train_prior(str(split), steps=4, resume=True, progress=False)     # the run's own settings
    a, b = (load_checkpoint(run / "prior" / "checkpoint.npz") for run in (whole, split))
    for name in ("params", "opt_state"):
        pairs = list(zip(tree_flatten_with_paths(a[name]), tree_flatten_with_paths(b[name])))
        assert pairs and all(pa == pb and onp.array_equal(x, y) for (pa, x), (pb, y) in pairs)
    for key in ("rng", "sampler", "hook_state", "best"):
        assert str(tree_flatten_with_paths(a["extra"][key])) == str(tree_flatten_with_paths(b["extra"][key]))


def test_sample_refuses_a_name_with_a_path_and_overwriting(encoded_run, tmp_path, capsys):
    run = copy_run(encoded_run, tmp_path / "run")
    main(["train-prior", "--run", str(run), "--steps", "2", *PRIOR_TINY])
    main(["sample", "--run", str(run), "--n", "2", "--no-progress"])
    before = sorted(os.listdir(run / "samples"))
    err = cli_error(capsys, "sample", "--run", run, "--n", "2", "--name", "../x", "--no-progress")
    assert "--name" in err and not os.path.exists(run / "x.png")
    err = cli_error(capsys, "sample", "--run", run, "--n", "2", "--no-progress")
    assert "--force" in err and sorted(os.listdir(run / "samples")) == before


def test_corrupt_png_is_one_line_naming_the_file(tmp_path, capsys):
    import matplotlib.image
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(12):
        matplotlib.image.imsave(folder / f"{i}.png", onp.full((8, 8), i / 12.0), cmap="gray")
    (folder / "5.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    err = cli_error(capsys, "train-vqvae", "--out", tmp_path / "run", "--data", folder, *TINY)
    assert "5.png" in err and "cannot read" in err


def test_permission_denied_and_disk_full_are_one_line(tmp_path, capsys, monkeypatch):
    import errno
    import minivq.pipeline
    # Root ignores file permissions here, so the OSError the kernel would raise is simulated.
    denied = tmp_path / "x.npy"

    def refuse(spec, download=False):
        raise PermissionError(errno.EACCES, "Permission denied", str(denied))
    with monkeypatch.context() as patch:
        patch.setattr(minivq.pipeline, "load_dataset", refuse)
        err = cli_error(capsys, "train-vqvae", "--out", tmp_path / "a", "--data", denied, *TINY)
    assert str(denied) in err and "permission denied" in err

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    err = cli_error(capsys, "train-vqvae", "--out", tmp_path / "b", *TINY)
    assert "disk is full" in err
    leftovers = [n for _, _, names in os.walk(tmp_path / "b") for n in names if n.endswith(".tmp")]
    assert leftovers == []


def test_offline_download_is_one_line(tmp_path, capsys, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("MINIVQ_DATA", str(tmp_path / "cache"))
    err = cli_error(capsys, "train-vqvae", "--out", tmp_path / "run", "--data", "mnist",
                    "--download", *TINY)
    assert "offline" in err


def test_a_huge_lr_on_the_vqvae_ends_with_the_divergence_message(tmp_path, capsys):
    # lr 1e300 is inf in float32: inf * 0 makes the EMA codebook NaN; the loop must name the
    # divergence (checked right after the update), not the EMA hook's "codebook ... NaN or inf".
    out = tmp_path / "run"
    main(["train-vqvae", "--out", str(out), *TINY])
    err = cli_error(capsys, "train-vqvae", "--out", out, "--resume", "--steps", "4", "--lr", "1e300",
                    "--allow-new-settings", "--no-progress")
    assert "became non-finite" in err and "best.npz" in err
    assert load_checkpoint(out / "vqvae" / "checkpoint.npz")["step"] == 2
