"""Tests for minivq.cli and minivq.pipeline: the pipeline end to end through `main([...])`.

Tiny networks and a few steps on the embedded MNIST, so that the whole file stays quick.
Evidence: the files each command must write, read back and checked against independent
computations (re-encoding images, argmax of the prior's logits, the eval history);
determinism of `sample` from a fresh call; errors as one-line messages with exit codes.
"""
import json
import os
import shutil
import subprocess
import sys

import matplotlib.image
import numpy as onp
import pytest

from minivq import pipeline
from minivq.checkpoint import load_checkpoint
from minivq.cli import build_parser, main
from minivq.codes import load_code_grids
from minivq.data import load_mnist_embedded
from minivq.prior import build_prior
from minivq.run_dir import RUN_FILES
from minivq.vqvae import build_vqvae

K = 8                                                     # codebook size of the tiny VQ-VAE
TINY_VQVAE = ["--steps", "4", "--batch-size", "16", "--eval-every", "2", "--hidden", "8",
              "--res-hidden", "4", "--num-res-blocks", "1", "--code-dim", "4",
              "--num-codes", str(K), "--no-progress"]
TINY_PRIOR = ["--steps", "3", "--batch-size", "16", "--eval-every", "3", "--channels", "8",
              "--num-blocks", "1", "--no-progress"]


def ok(*argv):
    assert main([str(a) for a in argv]) == 0


def fails(capsys, *argv, code=2):
    """Run main(argv), expect SystemExit(code); returns stderr, which must hold no traceback."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == code, err
    assert "Traceback" not in err and err.strip(), err
    return err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run directory after train-vqvae -> encode -> train-prior -> sample -> reconstruct."""
    run_dir = str(tmp_path_factory.mktemp("cli") / "run")
    ok("train-vqvae", "--out", run_dir, *TINY_VQVAE)
    ok("encode", "--run", run_dir, "--no-progress")
    ok("train-prior", "--run", run_dir, *TINY_PRIOR)
    ok("sample", "--run", run_dir, "-n", 6, "--seed", 3, "--no-progress")
    ok("reconstruct", "--run", run_dir, "-n", 5)
    return run_dir


def copy_run(run, tmp_path):
    """A private copy of the shared run, for tests that change it."""
    return shutil.copytree(run, tmp_path / "run")


def assert_png(path):
    image = matplotlib.image.imread(path)                     # (H, W, 4) float in [0, 1]
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50
    assert image.std() > 0.01                                 # something is drawn


# ---------------------------------------------------------------- the pipeline

def test_chain_writes_the_run_directory(run):
    for name in RUN_FILES:
        assert os.path.isfile(os.path.join(run, "vqvae", name))
        assert os.path.isfile(os.path.join(run, "prior", name))
    for name in ("vqvae_curves", "prior_curves", "codebook_usage", "code_grid", "reconstructions"):
        assert_png(os.path.join(run, "figures", f"{name}.png"))
    assert_png(os.path.join(run, "samples", "seed3_T1.png"))
    config = json.load(open(os.path.join(run, "vqvae", "config.json")))
    assert config["data"] == "mnist-embedded" and config["model"]["num_codes"] == K
    assert config["model"]["hidden"] == 8 and config["steps"] == 4


def test_samples_npy_has_the_grid_shape_and_valid_codes(run):
    grids = onp.load(os.path.join(run, "samples", "seed3_T1.npy"))
    assert grids.shape == (6, 7, 7) and grids.dtype == onp.int64       # 28x28 / 4 = 7x7 codes
    assert grids.min() >= 0 and grids.max() < K


def test_codes_are_the_best_vqvae_encoding_of_the_data(run):
    train, test = (load_code_grids(os.path.join(run, "codes", f"{s}.npz")) for s in ("train", "test"))
    data = load_mnist_embedded()
    assert train.indices.shape == (9001, 7, 7) and test.indices.shape == (999, 7, 7)   # the 10k split
    onp.testing.assert_array_equal(test.labels, data.y_test)
    # downstream steps use best.npz: the eval with the lowest test MSE in the history
    history = json.load(open(os.path.join(run, "vqvae", "history.json")))
    best_step = min(history["eval"], key=lambda r: r["test_mse"])["step"]
    source = json.load(open(os.path.join(run, "codes", "source.json")))
    assert source["vqvae"] == os.path.join("vqvae", "best.npz") and source["vqvae_step"] == best_step
    ckpt = load_checkpoint(os.path.join(run, "vqvae", "best.npz"))
    model = build_vqvae(ckpt["config"])
    indices, codes = model.encode(ckpt["params"], data.x_test[:10])
    onp.testing.assert_array_equal(test.indices[:10], indices)
    onp.testing.assert_allclose(test.codes[:10], codes)


def test_sample_is_reproducible_from_a_fresh_call(run, tmp_path):
    run = copy_run(run, tmp_path)
    ok("sample", "--run", run, "-n", 6, "--seed", 3, "--name", "again", "--no-progress")
    ok("sample", "--run", run, "-n", 6, "--seed", 4, "--name", "other", "--no-progress")
    first, again, other = (onp.load(run / "samples" / f"{name}.npy")
                           for name in ("seed3_T1", "again", "other"))
    onp.testing.assert_array_equal(first, again)
    assert not onp.array_equal(first, other)


def test_top_k_1_samples_are_the_argmax_of_the_prior(run, tmp_path):
    """Top-1 sampling is greedy: each cell is the argmax of the logits given the cells before.

    The prior is causal, so one forward pass over the finished grids gives those logits.
    """
    run = copy_run(run, tmp_path)
    ok("sample", "--run", run, "-n", 5, "--top-k", 1, "--name", "greedy", "--no-progress")
    grids = onp.load(run / "samples" / "greedy.npy")
    ckpt = load_checkpoint(run / "prior" / "best.npz")
    logits = build_prior(ckpt["config"]).logits(ckpt["params"], grids)
    onp.testing.assert_array_equal(grids, onp.argmax(logits, axis=-1))


def test_compare_draws_the_baseline_panels(run, tmp_path):
    run = copy_run(run, tmp_path)
    ok("sample", "--run", run, "-n", 4, "--compare", "--no-progress")
    assert_png(run / "figures" / "sample_comparison.png")


def test_resume_continues_and_existing_runs_are_protected(run, tmp_path, capsys):
    run = copy_run(run, tmp_path)
    err = fails(capsys, "train-vqvae", "--out", run, *TINY_VQVAE)
    assert "already holds a trained VQ-VAE" in err and "--resume" in err and "--force" in err
    err = fails(capsys, "train-vqvae", "--out", run, "--resume", "--hidden", "16", "--no-progress")
    assert "model.hidden 8 -> 16" in err
    ok("train-vqvae", "--out", run, "--resume", "--steps", 6, "--batch-size", 16, "--no-progress")
    assert load_checkpoint(run / "vqvae" / "checkpoint.npz")["step"] == 6
    history = json.load(open(run / "vqvae" / "history.json"))
    assert [r["step"] for r in history["train"]] == [1, 2, 3, 4, 5, 6]


def test_a_retrained_vqvae_invalidates_codes_and_prior(run, tmp_path, capsys):
    run = copy_run(run, tmp_path)
    ok("train-vqvae", "--out", run, "--force", "--seed", 1, *TINY_VQVAE)
    err = fails(capsys, "train-prior", "--run", run, "--resume", *TINY_PRIOR)
    assert "another VQ-VAE checkpoint" in err and "minivq encode" in err
    err = fails(capsys, "sample", "--run", run, "--no-progress")
    assert "another VQ-VAE checkpoint" in err
    ok("encode", "--run", run, "--no-progress")
    ok("train-prior", "--run", run, "--force", *TINY_PRIOR)
    ok("sample", "--run", run, "-n", 2, "--no-progress")


def test_conditional_prior_samples_the_requested_classes(run, tmp_path, capsys):
    run = copy_run(run, tmp_path)
    ok("train-prior", "--run", run, "--force", "--conditional", *TINY_PRIOR)
    assert load_checkpoint(run / "prior" / "best.npz")["config"]["num_classes"] == 10
    ok("sample", "--run", run, "-n", 4, "--labels", 3, "--no-progress")
    assert onp.load(run / "samples" / "seed0_T1_labels.npy").shape == (4, 7, 7)
    assert "labels must lie in [0, 10)" in fails(capsys, "sample", "--run", run, "-n", 2,
                                                 "--labels", 12, "--force", "--no-progress")
    assert "one label or n = 4 labels" in fails(capsys, "sample", "--run", run, "-n", 4,
                                                "--labels", 1, 2, "--force", "--no-progress")


def test_array_file_data_is_found_again_from_another_directory(tmp_path, monkeypatch):
    x = onp.random.default_rng(0).random((40, 8, 8)).astype(onp.float32)
    onp.save(tmp_path / "tiny.npy", x)
    monkeypatch.chdir(tmp_path)
    ok("train-vqvae", "--out", "run", "--data", "tiny.npy", "--steps", 2, "--batch-size", 8,
       "--hidden", 4, "--res-hidden", 2, "--num-res-blocks", 1, "--code-dim", 3, "--num-codes", 4,
       "--no-progress")
    config = json.load(open(tmp_path / "run" / "vqvae" / "config.json"))
    assert config["data"] == str(tmp_path / "tiny.npy") and config["model"]["input_shape"] == [8, 8, 1]
    monkeypatch.chdir(tmp_path.parent)
    ok("encode", "--run", tmp_path / "run", "--no-progress")
    grids = load_code_grids(tmp_path / "run" / "codes" / "train.npz")
    assert grids.indices.shape == (36, 2, 2) and grids.labels is None     # 10% held out; 8/4 = 2


def test_demo_quick_writes_every_figure(tmp_path, capsys):
    ok("demo", "--quick", "--out", tmp_path / "demo", "--no-progress")
    out = capsys.readouterr().out
    names = {"vqvae_curves", "flat_vqvae_curves", "prior_curves", "codebook_usage", "code_grid",
             "prior_samples", "sample_comparison", "reconstructions", "flat_reconstructions"}
    assert sorted(os.listdir(tmp_path / "demo" / "figures")) == sorted(f"{n}.png" for n in names)
    for name in names:
        assert str(tmp_path / "demo" / "figures" / f"{name}.png") in out
    assert "test MSE" in out and "PixelCNN" in out and "wall time" in out


def test_progress_bars_are_shown_by_default(run, tmp_path, capsys):
    run = copy_run(run, tmp_path)
    capsys.readouterr()
    ok("encode", "--run", run)
    captured = capsys.readouterr()
    assert "encode train" in captured.err and "9001/9001" in captured.err
    assert "codes: train (9001, 7, 7)" in captured.out                    # the one-line summary


# ---------------------------------------------------------------- errors and help

@pytest.mark.parametrize("argv, message", [
    (["train-vqvae", "--data", "no-such-data", "--steps", "1"], "unknown dataset 'no-such-data'"),
    (["train-vqvae", "--steps", "-3"], "argument --steps: must be an integer >= 1, got -3"),
    (["train-prior", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1"),
    (["sample", "--temperature", "0"], "argument --temperature: must be a number > 0, got 0"),
    (["sample", "--top-k", "x"], "argument --top-k: expected an integer >= 1, got 'x'"),
    (["train-vqvae", "--kind", "round"], "argument --kind: invalid choice: 'round'"),
])
def test_bad_arguments_exit_2_with_a_message(argv, message, tmp_path, capsys):
    err = fails(capsys, *argv, "--out" if argv[:1] == ["train-vqvae"] else "--run", tmp_path / "r")
    assert message in err


@pytest.mark.parametrize("argv, message", [
    ([], "the following arguments are required: COMMAND"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_a_command_is_required(argv, message, capsys):
    assert message in fails(capsys, *argv)


@pytest.mark.parametrize("command, expected", [
    ("encode", "no run directory"),
    ("train-prior", "no run directory"),
    ("sample", "no run directory"),
    ("reconstruct", "no run directory"),
])
def test_missing_run_names_the_command_that_makes_it(command, expected, tmp_path, capsys):
    err = fails(capsys, command, "--run", tmp_path / "nowhere", "--no-progress")
    assert err.startswith("minivq: error: ") and expected in err
    assert f"minivq train-vqvae --out {tmp_path / 'nowhere'}" in err


def test_missing_step_names_the_command_that_makes_it(run, tmp_path, capsys):
    run = copy_run(run, tmp_path)
    shutil.rmtree(run / "prior")
    err = fails(capsys, "sample", "--run", run)
    assert f"no trained prior in {run}" in err and f"minivq train-prior --run {run}" in err
    shutil.rmtree(run / "codes")
    err = fails(capsys, "train-prior", "--run", run)
    assert f"minivq encode --run {run}" in err


def test_debug_reraises_and_interrupt_exits_130(tmp_path, capsys, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no run directory"):
        main(["sample", "--run", str(tmp_path / "nowhere"), "--debug"])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "encode", interrupted)
    err = fails(capsys, "encode", "--run", tmp_path, code=130)
    assert "interrupted" in err and "checkpoint is kept" not in err   # claims no checkpoint


def test_every_option_of_every_command_is_explained(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices              # {name: sub-parser}
    assert set(commands) == {"train-vqvae", "encode", "train-prior", "sample", "reconstruct", "demo"}
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help"
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: minivq {name}" in capsys.readouterr().out


def test_python_m_minivq_help():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "minivq", "--help"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    for command in ("train-vqvae", "encode", "train-prior", "sample", "reconstruct", "demo"):
        assert command in result.stdout


def test_the_demo_says_once_what_data_it_read_and_each_command_says_it(tmp_path, capsys):
    ok("demo", "--quick", "--out", tmp_path / "demo", "--no-progress")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("data: ")]
    assert len(lines) == 1 and "mnist" in lines[0].lower(), lines   # five steps read it, one line
    ok("encode", "--run", tmp_path / "demo", "--no-progress")
    assert capsys.readouterr().out.splitlines().count(lines[0]) == 1    # a command on its own says it
