"""Raw-pixel baseline: the same PixelCNN on binarised digit pixels, against it on VQ-VAE codes.

Issue 13 item 8. The prior of prior.build_prior, with its default sizes (64 channels, a 7x7
mask-A conv, 6 residual 3x3 mask-B blocks), learns two things on the embedded digits
(9001 train / 999 test):

- pixels: the 28x28 digits binarised at 0.5, a grid of 784 cells with K = 2 (num_codes=2);
  its held-out bits per code are bits per pixel dimension;
- codes: the demo's VQ-VAE (EMA codebook + restarts, 7x7 grid, K = 64) and its prior,
  trained by the pipeline; the whole model's bits per dimension of the SAME binarised test
  digits is the bound -log2 p(z) - log2 p(x | z) of likelihood.py, with a Bernoulli decoder
  likelihood (link fitted on train), and of the grey digits with the discretised Gaussian.

It prints held-out bits per dimension, the time of one training step of each prior (forward
+ backward, batch 32, timed alternately after training), total training and sampling wall
time, and writes a figure of samples side by side.

    OPENBLAS_NUM_THREADS=1 python bench/pixel_prior_baseline.py        # ~15 min on one core
    python bench/pixel_prior_baseline.py --quick                       # a smoke run, seconds

Writes to --out (default runs/pixel_baseline/): samples.png, results.json, the pipeline's
run (vqvae/, codes/, prior/, figures/) and pixel_prior/ (best.npz, history.json).
"""
import argparse
import json
import os
import sys
import time

import numpy as onp
from autograd import value_and_grad

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout

from minivq import pipeline                                      # noqa: E402
from minivq.checkpoint import load_checkpoint                    # noqa: E402
from minivq.data import describe, load_mnist_embedded            # noqa: E402
from minivq.likelihood import binarize, vqvae_bits_per_dim       # noqa: E402
from minivq.plots import sample_comparison                       # noqa: E402
from minivq.prior import build_prior, make_config                # noqa: E402
from minivq.run_dir import load_codes, load_vqvae, trained_path  # noqa: E402
from minivq.sampling import sample_grids                         # noqa: E402
from minivq.train import train                                   # noqa: E402

QUICK = dict(vqvae_steps=4, prior_steps=4, pixel_steps=3, eval_every=2, n_samples=4, test_images=50,
             timing_steps=1)
# --quick: tiny networks, the point is to run every step in seconds.
QUICK_VQVAE = dict(hidden=8, res_hidden=4, num_res_blocks=1, code_dim=4, num_codes=16)
QUICK_PRIOR = dict(channels=8, num_blocks=1)
TIMING_BATCH = 32          # the prior's training batch in the pipeline (PRIOR_TRAINING)


def step_seconds(prior, params, grids, steps, rng):
    """Seconds per forward + backward pass of prior.loss on random batches of TIMING_BATCH grids."""
    loss_and_grad = value_and_grad(prior.loss)
    batch = grids[rng.integers(0, len(grids), TIMING_BATCH)]
    loss_and_grad(params, batch)                                     # warm-up (allocations, caches)
    start = time.perf_counter()
    for _ in range(steps):
        loss_and_grad(params, grids[rng.integers(0, len(grids), TIMING_BATCH)])
    return (time.perf_counter() - start) / steps


def main(out="runs/pixel_baseline", vqvae_steps=2000, prior_steps=1000, pixel_steps=500,
         batch_size=32, eval_every=250, n_samples=16, test_images=None, timing_steps=10, seed=0,
         quick=False, progress=True, resume=False):
    """Train both priors, compare them; returns the numbers (also in out/results.json).

    test_images: evaluate the pixel prior on the first n test digits (None: all 999).
    resume: continue an interrupted VQ-VAE in out/vqvae to vqvae_steps (same settings).
    """
    settings = dict(vqvae_steps=vqvae_steps, prior_steps=prior_steps, pixel_steps=pixel_steps,
                    eval_every=eval_every, n_samples=n_samples, test_images=test_images,
                    timing_steps=timing_steps)
    settings.update(QUICK if quick else {})
    vqvae_sizes, prior_sizes = (QUICK_VQVAE, QUICK_PRIOR) if quick else ({}, {})
    os.makedirs(out, exist_ok=True)

    # Codes: the pipeline's VQ-VAE, encoding and prior (the demo's settings).
    start = time.perf_counter()
    again = resume and os.path.isfile(os.path.join(out, "vqvae", "checkpoint.npz"))
    vq = pipeline.train_vqvae(out, steps=settings["vqvae_steps"], eval_every=settings["eval_every"],
                              resume=again, force=not again, seed=seed, progress=progress, **vqvae_sizes)
    pipeline.encode(out, progress=progress)
    code_run = pipeline.train_prior(out, steps=settings["prior_steps"], batch_size=batch_size,
                                    eval_every=settings["eval_every"], force=True, seed=seed,
                                    progress=progress, **prior_sizes)
    code_seconds = time.perf_counter() - start
    vqvae = load_vqvae(out)
    train_grids, test_grids, _ = load_codes(out)

    def decode(indices):
        return pipeline.decode(vqvae.model, vqvae.params, indices)

    data = load_mnist_embedded()
    print(f"data: {describe(data)}; pixels binarised at 0.5")
    binary_bits = vqvae_bits_per_dim(lambda indices: vqvae.model.decode_indices(vqvae.params, indices),
                                     code_run["test_bits"], (data.x_train, train_grids.indices),
                                     (data.x_test, test_grids.indices), likelihood="bernoulli")

    # Pixels: the same PixelCNN, K = 2, on the 28x28 binarised digits.
    x_train = binarize(data.x_train[..., 0])                         # (9001, 28, 28) int64 in {0, 1}
    x_test = binarize(data.x_test[..., 0][:settings["test_images"]])  # (999, 28, 28)
    pixel_prior = build_prior(make_config(num_codes=2, **prior_sizes))
    rng = onp.random.default_rng(seed)
    folder = os.path.join(out, "pixel_prior")
    start = time.perf_counter()
    train(lambda params, batch: pixel_prior.loss(params, batch), pixel_prior.init(rng), x_train,
          settings["pixel_steps"], batch_size, 1e-3, rng, best_metric="test_bits",
          eval_fn=lambda params: {"test_bits": pixel_prior.bits_per_code(params, x_test)},
          eval_every=settings["eval_every"], out_dir=folder, checkpoint_every=settings["eval_every"],
          progress=progress, model="prior", config=pixel_prior.config)
    pixel_seconds = time.perf_counter() - start
    with open(os.path.join(folder, "history.json")) as f:
        pixel_best = min(json.load(f)["eval"], key=lambda record: record["test_bits"])
    pixel_params = load_checkpoint(os.path.join(folder, "best.npz"), model="prior")["params"]

    # One training step of each, timed alternately so both see the same machine.
    code_prior = build_prior(load_checkpoint(trained_path(out, "prior", "prior", ""))["config"])
    code_params = load_checkpoint(trained_path(out, "prior", "prior", ""))["params"]
    code_step = pixel_step = 0.0
    for _ in range(2):
        code_step += step_seconds(code_prior, code_params, train_grids.indices, settings["timing_steps"], rng) / 2
        pixel_step += step_seconds(pixel_prior, pixel_params, x_train, settings["timing_steps"], rng) / 2

    # Samples: 28x28 pixel by pixel, against 7x7 codes then the decoder.
    n, (h, w) = settings["n_samples"], train_grids.indices.shape[1:]
    start = time.perf_counter()
    pixel_samples = sample_grids(pixel_prior, pixel_params, n, 28, 28, rng)      # (n, 28, 28) in {0, 1}
    pixel_sample_seconds = time.perf_counter() - start
    start = time.perf_counter()
    code_samples = decode(sample_grids(code_prior, code_params, n, h, w, rng))  # (n, 28, 28, 1)
    code_sample_seconds = time.perf_counter() - start
    figure = sample_comparison(
        [(f"pixels: {pixel_best['test_bits']:.3f} bits/dim", pixel_samples[..., None].astype(onp.float32)),
         (f"codes + decoder: {binary_bits['total']:.3f}", code_samples),
         ("codes, binarised", binarize(code_samples).astype(onp.float32))],
        os.path.join(out, "samples.png"))

    gaussian = code_run["bits_per_dim"]
    results = {
        "pixel_bits_per_dim": pixel_best["test_bits"], "pixel_best_step": pixel_best["step"],
        "codes_bits_per_code": code_run["test_bits"], "codes_binary_bits_per_dim": binary_bits["total"],
        "codes_binary_prior": binary_bits["prior"], "codes_binary_reconstruction": binary_bits["reconstruction"],
        "codes_grey_bits_per_dim": gaussian["total"], "codes_grey_prior": gaussian["prior"],
        "codes_grey_reconstruction": gaussian["reconstruction"], "gaussian_scale": gaussian["scale"],
        "vqvae_test_mse": vq["test_mse"], "code_step_seconds": code_step, "pixel_step_seconds": pixel_step,
        "code_train_seconds": code_seconds, "vqvae_seconds": vq["seconds"], "prior_seconds": code_run["seconds"],
        "pixel_train_seconds": pixel_seconds, "pixel_sample_seconds": pixel_sample_seconds,
        "code_sample_seconds": code_sample_seconds, "n_samples": n, "settings": settings,
        "figure": str(figure)}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"\npixels (28x28, K=2): {results['pixel_bits_per_dim']:.4f} bits/dim held out (best at step "
          f"{pixel_best['step']} of {settings['pixel_steps']}); step {pixel_step * 1000:.0f} ms; "
          f"training {pixel_seconds:.0f} s; {n} samples {pixel_sample_seconds:.1f} s")
    print(f"codes (7x7, K={vqvae.model.config['num_codes']}): {code_run['test_bits']:.3f} bits/code = "
          f"{binary_bits['total']:.4f} bits/dim binarised (prior {binary_bits['prior']:.4f} + reconstruction "
          f"{binary_bits['reconstruction']:.4f}); grey 8-bit {gaussian['total']:.3f} bits/dim (prior "
          f"{gaussian['prior']:.3f} + reconstruction {gaussian['reconstruction']:.3f}, sigma "
          f"{gaussian['scale']:.4f}); step {code_step * 1000:.1f} ms; training {code_seconds:.0f} s (VQ-VAE "
          f"{vq['seconds']:.0f} s, prior {code_run['seconds']:.0f} s); {n} samples {code_sample_seconds:.2f} s")
    print(f"samples -> {figure}")
    return {key: float(value) for key, value in results.items() if isinstance(value, (int, float))}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/pixel_baseline")
    parser.add_argument("--vqvae-steps", type=int, default=2000)
    parser.add_argument("--prior-steps", type=int, default=1000)
    parser.add_argument("--pixel-steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--n-samples", type=int, default=16)
    parser.add_argument("--test-images", type=int, default=None)
    parser.add_argument("--timing-steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny networks, a few steps (smoke run)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted VQ-VAE in --out")
    args = parser.parse_args()
    main(args.out, args.vqvae_steps, args.prior_steps, args.pixel_steps, args.batch_size, args.eval_every,
         args.n_samples, args.test_images, args.timing_steps, args.seed, args.quick, not args.no_progress,
         args.resume)
