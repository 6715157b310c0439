"""The prior's regularisers (issue 14): weight averaging in the loop, a scheduled lr, and
code-grid augmentation by shifted images; each against a loop oracle or closed form,
resume bit-exact, and wired through the pipeline."""
import json
import re

import autograd.numpy as np
import numpy as onp
import pytest

from minivq import demo as demo_module, pipeline
from minivq.checkpoint import load_checkpoint
from minivq.demo import demo
from minivq.codes import (CodeGrids, concatenate_grids, load_code_grids, random_shifts, shift_images,
                          shifted_copies)
from minivq.optim import adam
from minivq.schedules import ema_decay_at, warmup_cosine
from minivq.train import averaged_params, train

DATA = onp.random.default_rng(0).normal(size=(32, 3)).astype(onp.float32)


def dropout_loss(rng):
    """A loss that draws from the loop's rng (as the prior's dropout does): resume must replay it."""
    def loss(params, batch):
        keep = rng.random(batch.shape) > 0.5
        return np.mean(keep * (batch - params["w"]) ** 2)
    return loss


def test_ema_params_match_a_loop_over_the_recorded_trajectory():
    trajectory = []

    def record(params, state, aux, batch, rng):          # sees the params after each update
        trajectory.append(params["w"].astype(onp.float64))
        return params, state

    rng = onp.random.default_rng(1)
    result = train(dropout_loss(rng), {"w": onp.zeros(3, onp.float32)}, DATA, 25, 4, 0.1, rng,
                   step_hook=record, ema_decay=0.9, progress=False)
    ema = onp.zeros(3)                                    # the initial params
    for t, w in enumerate(trajectory):
        d = ema_decay_at(0.9, t)
        ema = d * ema + (1 - d) * w
    assert result.ema_params["w"].dtype == onp.float32
    assert onp.allclose(result.ema_params["w"], ema, rtol=1e-5, atol=1e-6)
    assert not onp.allclose(result.ema_params["w"], result.params["w"])   # it is an average


def test_eval_and_checkpoints_see_the_average(tmp_path):
    seen = []
    rng = onp.random.default_rng(0)
    result = train(dropout_loss(rng), {"w": onp.zeros(3, onp.float32)}, DATA, 4, 4, 0.1, rng,
                   eval_fn=lambda p: seen.append(p["w"].copy()) or {"test_mse": 0.0}, eval_every=4,
                   ema_decay=0.5, out_dir=str(tmp_path), progress=False)
    assert onp.array_equal(seen[-1], result.ema_params["w"])
    ckpt = load_checkpoint(tmp_path / "checkpoint.npz")
    assert onp.array_equal(averaged_params(ckpt)["w"], result.ema_params["w"])
    assert onp.array_equal(ckpt["params"]["w"], result.params["w"])


def test_averaged_params_without_an_average_are_the_params(tmp_path):
    rng = onp.random.default_rng(0)
    train(dropout_loss(rng), {"w": onp.zeros(3, onp.float32)}, DATA, 2, 4, 0.1, rng,
          out_dir=str(tmp_path), progress=False)
    ckpt = load_checkpoint(tmp_path / "checkpoint.npz")
    assert averaged_params(ckpt) is ckpt["params"]


def test_resume_with_ema_and_schedule_is_bit_exact(tmp_path):
    schedule = warmup_cosine(0.1, 8, 3)
    common = dict(out_dir=str(tmp_path), checkpoint_every=1, config={"model": "mean"},
                  progress=False, schedule=schedule, ema_decay=0.8)
    params = {"w": onp.zeros(3, onp.float32)}
    rng_split = onp.random.default_rng(0)
    # a schedule rebuilt with the same settings (as a resumed CLI run does) continues the same
    train(dropout_loss(rng_split), params, DATA, 3, 4, 0.1, rng_split,
          **dict(common, schedule=warmup_cosine(0.1, 8, 3)))
    rng_resumed = onp.random.default_rng(7)                # its state must come from the checkpoint
    resumed = train(dropout_loss(rng_resumed), params, DATA, 8, 4, 0.1, rng_resumed, resume=True,
                    allow_new_settings=False, **common)
    rng_whole = onp.random.default_rng(0)
    whole = train(dropout_loss(rng_whole), params, DATA, 8, 4, 0.1, rng_whole, progress=False,
                  schedule=schedule, ema_decay=0.8)
    assert onp.array_equal(resumed.params["w"], whole.params["w"])
    assert onp.array_equal(resumed.ema_params["w"], whole.ema_params["w"])
    assert [r["lr"] for r in resumed.history["train"]] == [schedule(t) for t in range(8)]


def test_train_with_a_schedule_is_adam_with_that_schedule():
    schedule = warmup_cosine(0.05, 6, 2)
    results = []
    for kwargs in (dict(schedule=schedule), dict(optimizer=adam(schedule))):
        rng = onp.random.default_rng(3)
        results.append(train(dropout_loss(rng), {"w": onp.zeros(3, onp.float32)}, DATA, 6, 4, 0.05,
                             rng, progress=False, **kwargs).params["w"])
    assert onp.array_equal(*results)
    with pytest.raises(ValueError, match="not both"):
        train(dropout_loss(onp.random.default_rng(0)), {"w": onp.zeros(3, onp.float32)}, DATA, 1, 4,
              0.1, onp.random.default_rng(0), schedule=schedule, optimizer=adam(0.1), progress=False)
    with pytest.raises(ValueError, match="ema_decay"):
        train(dropout_loss(onp.random.default_rng(0)), {"w": onp.zeros(3, onp.float32)}, DATA, 1, 4,
              0.1, onp.random.default_rng(0), ema_decay=1.0, progress=False)


def shift_oracle(x, shifts):
    """y[n, i, j] = x[n, i - dy, j - dx] where inside the image, else 0, by plain loops."""
    out = onp.zeros_like(x)
    n, height, width, _ = x.shape
    for k in range(n):
        dy, dx = shifts[k]
        for i in range(height):
            for j in range(width):
                if 0 <= i - dy < height and 0 <= j - dx < width:
                    out[k, i, j] = x[k, i - dy, j - dx]
    return out


def test_shift_images_by_hand_and_against_the_loop_oracle(rng):
    x = onp.arange(9, dtype=onp.float32).reshape(1, 3, 3, 1)
    down_right = shift_images(x, onp.array([[1, 1]]))[0, :, :, 0]
    assert onp.array_equal(down_right, [[0, 0, 0], [0, 0, 1], [0, 3, 4]])
    x = rng.random((40, 6, 5, 2)).astype(onp.float32)
    shifts = rng.integers(-3, 4, size=(40, 2))
    assert onp.array_equal(shift_images(x, shifts), shift_oracle(x, shifts))
    with pytest.raises(ValueError, match="smaller than the image"):
        shift_images(x, onp.full((40, 2), 5))


def test_random_shifts_cover_every_nonzero_offset_evenly(rng):
    shifts = random_shifts(24000, 2, rng)
    offsets, counts = onp.unique(shifts, axis=0, return_counts=True)
    assert len(offsets) == 24 and not onp.any(onp.all(offsets == 0, axis=1))
    assert onp.abs(offsets).max() == 2
    assert counts.min() > 850 and counts.max() < 1150     # 1000 expected each; 5 sigma is ~160


def test_shifted_copies_are_copy_major_with_labels(rng):
    x = rng.random((5, 8, 8, 1)).astype(onp.float32)
    images, labels = shifted_copies(x, onp.arange(5), 3, 1, rng)
    assert images.shape == (15, 8, 8, 1) and list(labels) == list(range(5)) * 3
    for k in range(15):      # every copy is its original moved by one nonzero offset in [-1, 1]^2
        matches = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)
                   and onp.array_equal(images[k], shift_oracle(x[k % 5][None], [(dy, dx)])[0])]
        assert matches


def test_concatenate_grids():
    a = CodeGrids(onp.zeros((2, 3, 3), onp.int64), onp.zeros((2, 3, 3, 4), onp.float32),
                  onp.array([0, 1]))
    b = CodeGrids(onp.ones((1, 3, 3), onp.int64), onp.ones((1, 3, 3, 4), onp.float32), onp.array([2]))
    joined = concatenate_grids(a, b)
    assert joined.indices.shape == (3, 3, 3) and list(joined.labels) == [0, 1, 2]
    assert onp.array_equal(joined.indices[2], onp.ones((3, 3)))
    with pytest.raises(ValueError, match="labels"):
        concatenate_grids(a, b._replace(labels=None))


TINY_VQVAE = dict(steps=4, batch_size=16, eval_every=2, hidden=8, res_hidden=4, num_res_blocks=1,
                  code_dim=4, num_codes=8, progress=False)
TINY_PRIOR = dict(steps=4, batch_size=16, eval_every=2, channels=8, num_blocks=1, progress=False)


def test_pipeline_augment_ema_and_cosine_prior(tmp_path):
    run = str(tmp_path / "run")
    pipeline.train_vqvae(run, **TINY_VQVAE)
    pipeline.encode(run, progress=False)
    with pytest.raises(FileNotFoundError, match="--augment"):
        pipeline.train_prior(run, augment=True, **TINY_PRIOR)
    pipeline.encode(run, progress=False, augment=2, max_shift=1)
    shifted = load_code_grids(str(tmp_path / "run" / "codes" / "train_shifted.npz"))
    train_grids, _, source = pipeline.load_codes(run)
    assert len(shifted.indices) == 2 * len(train_grids.indices) and source["augment"] == 2
    assert onp.array_equal(shifted.labels[:len(train_grids.labels)], train_grids.labels)
    summary = pipeline.train_prior(run, augment=True, ema_decay=0.9, schedule="cosine", warmup=1,
                                   gated=True, dropout=0.1, conditional=True, **TINY_PRIOR)
    assert summary["gated"] and summary["conditional"]
    ckpt = load_checkpoint(tmp_path / "run" / "prior" / "checkpoint.npz")
    assert set(ckpt["extra"]["ema_params"]) == set(ckpt["params"])
    history = json.loads(str(ckpt["extra"]["history"]))
    assert history["settings"]["ema_decay"] == 0.9
    assert history["settings"]["schedule"]["kind"] == "warmup_cosine"
    lr = pipeline.PRIOR_TRAINING["lr"]                                 # the default peak
    assert [r["lr"] for r in history["train"]] == [warmup_cosine(lr, 4, 1)(t) for t in range(4)]
    path = pipeline.sample(run, n=10, progress=False)
    assert onp.load(path[:-4] + ".npy").shape[0] == 10
    pipeline.encode(run, progress=False)                 # without augment the shifted codes go
    assert not (tmp_path / "run" / "codes" / "train_shifted.npz").exists()
    with pytest.raises(ValueError, match="ema_decay"):
        pipeline.train_prior(run, ema_decay=1.5, force=True, **TINY_PRIOR)


SCORED_SETS = ["real test digits", "VQ-VAE reconstructions", "flat VQ-VAE: random codebook row",
               "independent cells", "PixelCNN prior"]


def test_demo_quick_conditional_scores_every_set(tmp_path, monkeypatch):
    captions, draw = [], demo_module.sample_comparison

    def draw_and_record(panels, path, scores=None):
        captions.append([(title, len(images), score) for (title, images), score in zip(panels, scores)])
        return draw(panels, path, scores=scores)
    monkeypatch.setattr(demo_module, "sample_comparison", draw_and_record)
    lines = []
    summary = demo(str(tmp_path / "demo"), quick=True, conditional=True, progress=False, log=lines.append)
    config = json.load(open(tmp_path / "demo" / "prior" / "config.json"))
    assert config["model"]["gated"] and config["model"]["num_classes"] == 10
    assert summary["score"] == summary["scores"]["PixelCNN prior"]
    assert summary["score_line"].startswith("score (8 images)")
    assert list(summary["scores"]) == SCORED_SETS
    pattern = (r"score \((\d+) images\): confidence ([\d.]+), >= 0.9: ([\d.]+)%, "
               r"diversity ([\d.]+)/3.32 bits")
    for title in SCORED_SETS:                                # one printed line per set, numbers in range
        printed = [line for line in lines if line.strip().startswith(f"{title}: score (")]
        assert len(printed) == 1, title
        n, conf, share, bits = re.search(pattern, printed[0]).groups()
        assert int(n) == 8 and 0.1 <= float(conf) <= 1 and 0 <= float(share) <= 100   # conf >= 1/10
        assert 0 <= float(bits) <= onp.log2(10) + 1e-9
        score = summary["scores"][title]
        assert float(conf) == pytest.approx(score["confidence"], abs=5e-4)
    assert summary["scores"]["real test digits"]["confidence"] > 0.9      # real digits read as digits
    [figure] = captions                                      # the figure: every set with its caption
    assert [title for title, _, _ in figure] == SCORED_SETS
    for title, n, caption in figure:
        score = summary["scores"][title]
        assert n == 8 and caption.startswith(f"n 8: conf {score['confidence']:.2f}, >=0.9: ")


def test_score_line_names_the_missing_classifier_for_other_images(tmp_path):
    score, line = pipeline.score_line(str(tmp_path), onp.zeros((3, 32, 32, 3)))
    assert score is None and "28x28x1" in line and "32x32x3" in line


def test_default_prior_keeps_a_weight_average_and_older_runs_resume_without_one(tmp_path):
    run = str(tmp_path / "run")
    pipeline.train_vqvae(run, **TINY_VQVAE)
    pipeline.encode(run, progress=False)
    pipeline.train_prior(run, **TINY_PRIOR)
    ckpt = load_checkpoint(tmp_path / "run" / "prior" / "checkpoint.npz")
    assert json.loads(str(ckpt["extra"]["history"]))["settings"]["ema_decay"] == 0.995
    pipeline.train_prior(run, ema_decay=0.0, force=True, **TINY_PRIOR)
    config_path = tmp_path / "run" / "prior" / "config.json"
    config = json.load(open(config_path))
    for key in pipeline.REGULARISERS_OFF:                  # a run of a minivq without these settings
        del config[key]
    config_path.write_text(json.dumps(config))
    pipeline.train_prior(run, resume=True, **dict(TINY_PRIOR, steps=6))
    ckpt = load_checkpoint(tmp_path / "run" / "prior" / "checkpoint.npz")
    assert ckpt["step"] == 6 and "ema_params" not in ckpt["extra"]


def test_demo_on_colour_images_says_there_is_no_score(tmp_path):
    images = onp.random.default_rng(0).random((40, 16, 16, 3)).astype(onp.float32)
    onp.save(tmp_path / "colour.npy", images)
    lines = []
    summary = demo(str(tmp_path / "demo"), quick=True, data=str(tmp_path / "colour.npy"),
                   progress=False, log=lines.append)
    assert summary["score"] is None and "16x16x3" in summary["score_line"]
    assert list(summary["scores"].values()) == [None] * 5
    assert sum("score: none" in line and "16x16x3" in line for line in lines) == 1   # said once
    assert not (tmp_path / "demo" / "samples" / "score_T1.npy").exists()
