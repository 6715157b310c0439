"""The CLI's model defaults, --paper, --recon-weight and --preset course32, end to end.

course32 is the course's worked example: 32x32 inputs, overall stride 8, d = 64, K = 256,
so a 4x4 grid of codes. The end-to-end test runs it on a folder of RGB PNGs in class
sub-folders, keeping the preset's sizes (stride, d, K) and shrinking only the trunk width
and the step counts so that it takes seconds.
"""
import json

import matplotlib.image
import numpy as onp
import pytest

from minivq.cli import main

# A thin trunk: the preset fixes the grid, d and K; the trunk width is free.
THIN = ["--hidden", "8", "--res-hidden", "4", "--num-res-blocks", "1"]
FAST = ["--steps", "2", "--batch-size", "4", "--eval-every", "2", "--no-progress"]


@pytest.fixture
def rgb_folder(tmp_path):
    """root/<class>/*.png: 2 classes x 10 RGB images of 32x32, red and blue ramps with noise."""
    rng = onp.random.default_rng(0)
    root = tmp_path / "pictures"
    for channel, name in ((0, "red"), (2, "blue")):
        (root / name).mkdir(parents=True)
        for i in range(10):
            image = 0.2 * rng.random((32, 32, 3))
            image[..., channel] += 0.8 * onp.linspace(0, 1, 32)[None, :]          # a colour ramp
            matplotlib.image.imsave(root / name / f"{i}.png", onp.clip(image, 0, 1))
    return root


def run_ok(*argv):
    assert main([str(a) for a in argv]) == 0


def vqvae_config(run):
    with open(run / "vqvae" / "config.json", encoding="utf-8") as f:
        return json.load(f)["model"]


def test_course32_preset_end_to_end_on_a_folder_with_classes(rgb_folder, tmp_path, capsys):
    run = tmp_path / "run"
    run_ok("train-vqvae", "--out", run, "--data", rgb_folder, "--preset", "course32", *THIN, *FAST)
    assert "18 train + 2 test images, 32x32, 3 channels (colour), labels: 2 classes (blue, red)" \
        in capsys.readouterr().out
    model = vqvae_config(run)
    assert (model["num_downsamplings"], model["code_dim"], model["num_codes"]) == (3, 64, 256)
    assert model["input_shape"] == [32, 32, 3]
    run_ok("encode", "--run", run, "--no-progress")
    with onp.load(run / "codes" / "train.npz") as codes:
        assert codes["indices"].shape == (18, 4, 4)                   # 32 / 8 = a 4x4 grid
        assert codes["codes"].shape == (18, 4, 4, 64)
        assert onp.bincount(codes["labels"]).sum() == 18 and set(codes["labels"]) == {0, 1}
    run_ok("train-prior", "--run", run, "--conditional", "--channels", "8", "--num-blocks", "1", *FAST)
    run_ok("sample", "--run", run, "-n", "4", "--labels", "0", "1", "0", "1", "--name", "s", "--no-progress")
    grids = onp.load(run / "samples" / "s.npy")
    assert grids.shape == (4, 4, 4) and grids.min() >= 0 and grids.max() < 256
    assert matplotlib.image.imread(run / "samples" / "s.png").ndim == 3


def test_preset_refuses_images_of_another_size(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train-vqvae", "--out", str(tmp_path / "run"), "--preset", "course32", *FAST])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "preset course32 expects 32x32 images, got 28x28" in err and "resize" in err


@pytest.fixture
def tiny_images(tmp_path):
    """40 random 8x8 grayscale images as a .npy file."""
    path = tmp_path / "tiny.npy"
    onp.save(path, onp.random.default_rng(1).random((40, 8, 8)).astype(onp.float32))
    return path


TINY_MODEL = ["--num-downsamplings", "1", "--code-dim", "3", "--num-codes", "8", *THIN]


@pytest.mark.parametrize("flags, expected", [
    ([], ("ema", 100, 1.0)),                                            # the demo's settings
    (["--paper"], ("grad", 0, 1.0)),                                    # the paper's Eq. 3
    (["--paper", "--restart-after", "7"], ("grad", 7, 1.0)),            # explicit flags win
    (["--codebook-update", "grad", "--restart-after", "0"], ("grad", 0, 1.0)),
    (["--recon-weight", "2.5"], ("ema", 100, 2.5)),
])
def test_train_vqvae_defaults_and_the_paper_flag(tiny_images, tmp_path, flags, expected):
    run = tmp_path / "run"
    run_ok("train-vqvae", "--out", run, "--data", tiny_images, *TINY_MODEL, *FAST, *flags)
    model = vqvae_config(run)
    assert (model["codebook_update"], model["restart_after"], model["recon_weight"]) == expected


def test_demo_runs_on_a_folder_of_rgb_pngs(rgb_folder, tmp_path, capsys):
    run = tmp_path / "demo"
    run_ok("demo", "--quick", "--data", rgb_folder, "--preset", "course32", "--out", run, "--no-progress")
    out = capsys.readouterr().out
    assert "pictures: 18 train + 2 test images, 32x32, 3 channels" in out
    samples = matplotlib.image.imread(run / "figures" / "prior_samples.png")
    assert samples.ndim == 3 and samples.shape[-1] in (3, 4)
    assert onp.load(run / "codes" / "train.npz")["indices"].shape == (18, 4, 4)
