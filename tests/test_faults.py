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
