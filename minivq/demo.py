"""`demo(out_dir)`: the whole minivq pipeline on the embedded MNIST (or your data), in one call.

    python -m minivq demo [--quick]      # or: from minivq.demo import demo; demo("runs/demo")
    python -m minivq demo --data my_images/ [--preset course32]

Writes a run directory (see `run_dir.py`) with every figure in out_dir/figures.
"""
import os
import time

import numpy as onp

from .classifier import IMAGE_SHAPE
from .metrics import short_score
from .pipeline import (VQVAE_MODEL, baseline_sets, data_lines_once, decode, encode, real_sets,
                       reconstruct, sample, score_lines, train_prior, train_vqvae)
from .plots import image_grid, sample_comparison
from .run_dir import load_vqvae

DEMO_QUICK = dict(vqvae_steps=6, flat_steps=4, prior_steps=6, batch_size=16, prior_batch_size=16,
                  eval_every=3, prior_eval_every=3, n_samples=8, score_samples=8)
# Small networks for --quick: the point is to exercise every step in seconds.
QUICK_VQVAE = dict(hidden=8, res_hidden=4, num_res_blocks=1, code_dim=4, num_codes=16)
QUICK_PRIOR = dict(channels=8, num_blocks=1)
# The demo's grid VQ-VAE: EMA codebook + dead-code restarts, the setting that met both
# acceptance targets (test MSE <= 0.0035, perplexity >= 40; bench/acceptance_vqvae.py).
DEMO_VQVAE = VQVAE_MODEL
# The flat VQ-VAE is only a baseline: a slimmer trunk, k-means++ codes so none start dead.
FLAT_VQVAE = dict(kind="flat", hidden=32, res_hidden=16, num_res_blocks=1, codebook_init="kmeans++")
# The demo's prior training (docs/prior_ablation.md measures each choice on the 10k digits):
# the weight average and 4 shifted copies of every training image (36,004 more code grids,
# so 1,500 steps of batch 64 do not over-fit); the gated prior is 4x slower per step.
DEMO_PRIOR = dict(gated=False, dropout=0.0, ema_decay=0.995, schedule="constant", warmup=0, augment=True)
# Shifted copies encoded for the prior when DEMO_PRIOR['augment']: 4 per image, by 1-2 pixels.
DEMO_AUGMENT = dict(augment=4, max_shift=2)
SCORE_SAMPLES = 256   # grids drawn at T = 1 for the sample score (the size its conventions assume)


@data_lines_once()                 # the five steps read one data set: say it once
def demo(out_dir="runs/demo", vqvae_steps=2000, flat_steps=300, prior_steps=1500, batch_size=128,
         prior_batch_size=64, eval_every=250, prior_eval_every=100, n_samples=64, seed=0,
         quick=False, resume=False, progress=True, log=print, data="mnist-embedded", download=False,
         preset=None, conditional=False, score_samples=SCORE_SAMPLES):
    """The whole pipeline on `data` (a `load_dataset` spec; default the embedded MNIST):
    VQ-VAE, flat baseline, codes, prior, samples. preset: a `pipeline.PRESETS` name for the
    grid VQ-VAE's sizes (e.g. 'course32' for 32x32 images); download: fetch a named data set.
    conditional: a class-conditional gated prior (samples drawn class by class);
    score_samples: images per set for the sample score (28x28x1 images only): real test
    digits, their reconstructions, flat codebook rows, independent cells and prior grids
    drawn at T = 1, each scored and drawn in figures/sample_comparison.png.

    Trains the grid VQ-VAE (28x28 -> 7x7 codes, K = 64, EMA codebook with dead-code
    restarts) and a small flat VQ-VAE, encodes
    the digits, trains the PixelCNN prior (best held-out checkpoint kept), draws n_samples
    grids, and writes every figure to out_dir/figures. Without resume each step starts
    over (replacing an earlier demo in out_dir); resume=True continues an interrupted
    one. quick=True: tiny networks and a few steps (seconds; for tests). `log` receives
    the progress headlines and one score line per set. Returns the summary dict (metrics,
    the prior's score and score_line, every set's in scores and score_lines, seconds,
    figure paths).
    """
    start = time.perf_counter()
    steps = dict(vqvae_steps=vqvae_steps, flat_steps=flat_steps, prior_steps=prior_steps,
                 batch_size=batch_size, prior_batch_size=prior_batch_size, eval_every=eval_every,
                 prior_eval_every=prior_eval_every, n_samples=n_samples, score_samples=score_samples)
    steps.update(DEMO_QUICK if quick else {})
    sizes, prior_sizes = (QUICK_VQVAE, QUICK_PRIOR) if quick else ({}, {})

    def common(folder):
        """Resume a step that has a checkpoint (with resume=True), start the others over."""
        again = resume and os.path.isfile(os.path.join(out_dir, folder, "checkpoint.npz"))
        return dict(resume=again, force=not again, seed=seed, progress=progress)

    log(f"[1/5] VQ-VAE, {steps['vqvae_steps']} steps -> {out_dir}/vqvae")
    vq = train_vqvae(out_dir, data=data, download=download, steps=steps["vqvae_steps"],
                     batch_size=steps["batch_size"], eval_every=steps["eval_every"], preset=preset,
                     **dict(DEMO_VQVAE, **sizes), **common("vqvae"))
    log(f"[2/5] flat VQ-VAE (baseline), {steps['flat_steps']} steps -> {out_dir}/flat_vqvae")
    flat = train_vqvae(out_dir, data=data, download=download, steps=steps["flat_steps"],
                       batch_size=steps["batch_size"], eval_every=max(steps["flat_steps"] // 2, 1),
                       **dict(FLAT_VQVAE, **sizes, kind="flat"), **common("flat_vqvae"))
    log(f"[3/5] encoding the data -> {out_dir}/codes")
    codes = encode(out_dir, progress=progress, **(DEMO_AUGMENT if DEMO_PRIOR["augment"] else {}))
    log(f"[4/5] PixelCNN prior, {steps['prior_steps']} steps -> {out_dir}/prior")
    prior_options = dict(DEMO_PRIOR, gated=DEMO_PRIOR["gated"] or conditional, conditional=conditional)
    prior = train_prior(out_dir, steps=steps["prior_steps"], batch_size=steps["prior_batch_size"],
                        eval_every=steps["prior_eval_every"], **prior_options, **prior_sizes,
                        **common("prior"))
    log(f"[5/5] sampling {steps['n_samples']} grids and drawing the figures")
    sample_start = time.perf_counter()
    sample_path = sample(out_dir, n=steps["n_samples"], seed=seed, force=True, progress=progress)
    sample_seconds = time.perf_counter() - sample_start
    vqvae = load_vqvae(out_dir)
    prior_images = decode(vqvae.model, vqvae.params, onp.load(sample_path[:-len(".png")] + ".npy"))

    # Every set is scored on the same n images: real test digits and their reconstructions
    # (the yardstick), the two baselines, and score_samples more prior grids drawn at T = 1.
    digits = tuple(vqvae.model.config["input_shape"]) == IMAGE_SHAPE   # the score's classifier reads digits
    n = steps["score_samples"] if digits else steps["n_samples"]
    if digits:
        log(f"      scoring {n} more grids drawn at T = 1, and {n} images of every other set")
        score_path = sample(out_dir, n=n, seed=seed + 1, name="score_T1", force=True, progress=progress)
        score_images = decode(vqvae.model, vqvae.params, onp.load(score_path[:-len(".png")] + ".npy"))
    else:
        score_images = prior_images
    sets = real_sets(out_dir, n) + baseline_sets(out_dir, n, seed) + [("PixelCNN prior", score_images)]
    scored = score_lines(out_dir, [images for _, images in sets])      # [(score or None, line)]
    titles = [title for title, _ in sets]
    if digits:
        for title, (_, line) in zip(titles, scored):
            log(f"      {title}: {line}")
    else:
        log(f"      {scored[0][1]}")                                  # the same 'score: none' for all
    score, score_text = scored[-1]

    # The comparison figure shows n_samples of each set with its score under the title (the
    # prior's panel: the samples drawn above; its score: the score_samples extra grids).
    def spread(images):
        """n_samples of images, evenly spaced, not the first: the real test digits come sorted by class."""
        count = min(steps["n_samples"], len(images))
        return images[onp.linspace(0, len(images) - 1, count).round().astype(int)]
    panels = [(title, spread(images)) for title, images in sets[:-1]]
    panels.append(("PixelCNN prior", prior_images))
    captions = [None if set_score is None else short_score(set_score) for set_score, _ in scored]
    figures = os.path.join(out_dir, "figures")
    paths = vq["figures"] + flat["figures"] + codes["figures"] + prior["figures"] + [
        str(image_grid(prior_images, os.path.join(figures, "prior_samples.png"),
                       title="PixelCNN prior samples")),
        str(sample_comparison(panels, os.path.join(figures, "sample_comparison.png"), scores=captions)),
        reconstruct(out_dir),
        reconstruct(out_dir, kind="flat")]
    return {"test_mse": vq.get("test_mse"), "perplexity": vq.get("perplexity"),
            "used_codes": vq.get("used_codes"), "num_codes": vq["num_codes"],
            "uniform_bits": prior["uniform_bits"], "unigram_bits": prior["unigram_bits"],
            "independent_bits": prior["independent_bits"], "prior_bits": prior.get("test_bits"),
            "bits_per_dim": prior.get("bits_per_dim"),
            "prior_step": prior.get("step"), "n_samples": steps["n_samples"],
            "sample_seconds": sample_seconds, "score": score, "score_line": score_text,
            "scores": {title: set_score for title, (set_score, _) in zip(titles, scored)},
            "score_lines": {title: line for title, (_, line) in zip(titles, scored)},
            "seconds": time.perf_counter() - start,
            "figures": sorted(paths), "samples": sample_path}
