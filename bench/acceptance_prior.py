"""Acceptance run for the prior: PixelCNNs over the reference VQ-VAE's 7x7 code grids.

1. The reference VQ-VAE (28x28 -> 7x7 grid of K=64 codes): loaded from --vqvae (a
   checkpoint written by minivq.train, e.g. runs/acceptance/plain/best.npz), or trained
   here for --vqvae-steps into <out>/vqvae (resumable).
2. The embedded MNIST train/test digits (4500/500) encoded once into code grids, with
   their labels: <out>/codes_train.npz, <out>/codes_test.npz.
3. Held-out NLL in bits per code: uniform (log2 64 = 6.00), unigram (PyTorch 5.10),
   independent cells, then the priors, each trained with minivq.train on the train grids,
   evaluated on the test grids every --eval-every steps, best kept as <out>/<prior>/best.npz:
       pixelcnn     reference PixelCNN (PyTorch: best 2.90 at step 500, then overfits)
       gated        gated PixelCNN, no blind spot
       conditional  gated PixelCNN with a per-class bias (conditional NLL: not comparable)
   Target: best held-out NLL of an unconditional prior <= 2.7 bits per code.
4. <out>/samples.png: 64 samples of the best unconditional prior | 64 independent-cell
   samples | 16 random codebook rows of a flat VQ-VAE (--flat-vqvae, or trained here for
   --flat-steps; 0 skips it), all decoded; <out>/conditional_samples.png: 8 per class.
   Prints the time to sample 64 grids (PyTorch: 0.35 s).

    OPENBLAS_NUM_THREADS=1 python bench/acceptance_prior.py --vqvae runs/acceptance/plain/best.npz

(one BLAS thread is several times faster than the default when the two cores are shared)
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as onp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minivq.checkpoint import load_checkpoint                                    # noqa: E402
from minivq.codes import encode_dataset, save_code_grids        # noqa: E402
from minivq.data import load_dataset                                              # noqa: E402
from minivq.prior import build_prior, make_config                # noqa: E402
from minivq.plots import image_grid, sample_comparison                            # noqa: E402
from minivq.baselines import (independent_bits, random_codebook_rows, sample_independent,   # noqa: E402
                              uniform_bits, unigram_bits)
from minivq.sampling import sample_grids                         # noqa: E402
from minivq.train import train                                                    # noqa: E402
from minivq.vqvae import build_vqvae                                              # noqa: E402

PRIORS = {   # architecture, and the dropout used unless --dropout is given
    "pixelcnn": ({}, 0.0),                                   # as the PyTorch reference
    "gated": ({"gated": True}, 0.1),
    "conditional": ({"gated": True, "num_classes": 10}, 0.1),
}
PYTORCH = {"uniform": 6.00, "unigram": 5.10, "pixelcnn": 2.90}
TARGET_BITS = 2.7


def vqvae_from(path, kind, steps, data, out_dir, seed, progress):
    """(model, params): loaded from a minivq.train checkpoint, or trained here (resumable)."""
    if path:
        ckpt = load_checkpoint(path)
        model = build_vqvae(ckpt["config"])
        if model.config["kind"] != kind:
            raise ValueError(f"{path} holds a {model.config['kind']!r} VQ-VAE, expected {kind!r}")
        print(f"loaded the {kind} VQ-VAE from {path} (step {ckpt['step']})")
        return model, ckpt["params"]
    model = build_vqvae({"kind": kind})
    rng = onp.random.default_rng(seed)
    result = train(model.loss_and_aux, model.init(rng), data.x_train, steps, 128, 1e-3, rng,
                   eval_fn=lambda p: model.evaluate(p, data.x_test), eval_every=1000,
                   out_dir=out_dir, checkpoint_every=500, resume=True, config=model.config,
                   progress=progress)
    return model, result.params


def train_prior(name, train_grids, test_grids, steps, batch_size, lr, dropout, eval_every, out_dir,
                seed, progress):
    """Train one prior; returns (the prior model, best params, eval history)."""
    architecture, default_dropout = PRIORS[name]
    prior = build_prior(make_config(num_codes=64, **architecture))
    config = prior.config
    dropout = default_dropout if dropout is None else dropout
    conditional = config["num_classes"] is not None
    train_labels = train_grids.labels if conditional else None
    test_labels = test_grids.labels if conditional else None
    rng, dropout_rng = onp.random.default_rng(seed), onp.random.default_rng(seed + 1)
    # resuming a prior trained on other grids (another VQ-VAE) must fail, not continue
    fingerprint = hashlib.sha256(train_grids.indices.tobytes()).hexdigest()[:16]

    def loss_fn(params, ids):                 # the loop's "data" are example ids into the grids
        loss = prior.loss(params, train_grids.indices[ids],
                          labels=None if train_labels is None else train_labels[ids],
                          dropout=dropout, rng=dropout_rng)
        return loss, {"bits": loss / math.log(2.0)}

    def eval_fn(params):
        return {"test_bits": prior.bits_per_code(params, test_grids.indices, labels=test_labels),
                "train_bits": prior.bits_per_code(params, train_grids.indices[:500],
                                                  labels=None if train_labels is None else train_labels[:500])}

    start = time.perf_counter()
    result = train(loss_fn, prior.init(rng), onp.arange(len(train_grids.indices)), steps,
                   batch_size, lr, rng, eval_fn=eval_fn, eval_every=eval_every, best_metric="test_bits",
                   out_dir=out_dir, checkpoint_every=eval_every, resume=True,
                   config=dict(config, dropout=dropout, batch_size=batch_size, codes_sha256=fingerprint),
                   progress=progress)
    print(f"{name}: {steps} steps, dropout {dropout}, in {time.perf_counter() - start:.0f} s (this invocation)")
    best = load_checkpoint(os.path.join(out_dir, "best.npz"))["params"]
    return prior, best, result.history["eval"]


def time_sampling(prior, params, labels=None):
    """(grids (64, 7, 7), seconds) for 64 samples, and the seconds of 49 full forward passes."""
    rng = onp.random.default_rng(0)
    start = time.perf_counter()
    grids = sample_grids(prior, params, 64, 7, 7, rng, labels=labels)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(7 * 7):   # what the sampler would cost without cropping to rows <= i
        prior.logits(params, grids, labels)
    return grids, seconds, time.perf_counter() - start


def decode(model, params, indices):
    return onp.clip(model.decode_indices(params, indices), 0.0, 1.0)     # (N, 28, 28, 1)


def main(vqvae=None, vqvae_steps=3000, flat_vqvae=None, flat_steps=1000, priors=("pixelcnn", "gated", "conditional"),
         steps=1500, batch_size=32, lr=1e-3, dropout=None, eval_every=100, seed=0, out="runs/acceptance_prior",
         progress=True):
    os.makedirs(out, exist_ok=True)
    data = load_dataset("mnist-embedded")
    model, params = vqvae_from(vqvae, "grid", vqvae_steps, data, os.path.join(out, "vqvae"), seed, progress)

    # 2. code grids, encoded once
    def encode(x):
        return model.encode(params, x)

    train_grids = encode_dataset(encode, data.x_train, labels=data.y_train)
    test_grids = encode_dataset(encode, data.x_test, labels=data.y_test)
    save_code_grids(os.path.join(out, "codes_train.npz"), train_grids)
    save_code_grids(os.path.join(out, "codes_test.npz"), test_grids)
    print(f"code grids: train {train_grids.indices.shape}, test {test_grids.indices.shape}")

    # 3. the NLL table
    K = 64
    table = {"uniform": uniform_bits(K), "unigram": unigram_bits(train_grids.indices, test_grids.indices, K),
             "independent cells": independent_bits(train_grids.indices, test_grids.indices, K)}
    trained = {}
    for name in priors:
        prior, best, evals = train_prior(name, train_grids, test_grids, steps, batch_size, lr, dropout,
                                         eval_every, os.path.join(out, name), seed, progress)
        best_eval = min(evals, key=lambda record: record["test_bits"])
        trained[name] = (prior, best, best_eval)
        table[name] = best_eval["test_bits"]
        curve = ", ".join(f"{r['step']}: {r['test_bits']:.3f}/{r['train_bits']:.3f}" for r in evals)
        print(f"{name} held-out/train bits by step: {curve}")

    print("\nheld-out NLL, bits per code (PyTorch reference in brackets)")
    for name, bits in table.items():
        step = f" (best at step {trained[name][2]['step']})" if name in trained else ""
        ref = f" [{PYTORCH[name]:.2f}]" if name in PYTORCH else ""
        print(f"  {name:18s} {bits:6.3f}{ref}{step}")
    unconditional = [name for name in trained if trained[name][0].config["num_classes"] is None]
    summary = {"bits": table}
    if unconditional:
        best_name = min(unconditional, key=lambda name: table[name])
        verdict = "ok" if table[best_name] <= TARGET_BITS else "MISSED"
        print(f"target: best unconditional prior <= {TARGET_BITS}: {best_name} {table[best_name]:.3f} [{verdict}]")

        # 4. samples
        for name in unconditional:
            prior, best, _ = trained[name]
            grids, seconds, full = time_sampling(prior, best)
            print(f"time to sample 64 grids with {name}: {seconds:.2f} s "
                  f"(49 full forward passes, i.e. no cropping: {full:.2f} s; PyTorch 0.35 s)")
            summary[f"sample_seconds_{name}"] = seconds
            if name == best_name:
                prior_grids = grids
        rng = onp.random.default_rng(seed)
        panels = [(f"{best_name} prior", decode(model, params, prior_grids)),
                  ("independent cells", decode(model, params, sample_independent(train_grids.indices, K, 64, rng)))]
        if flat_vqvae or flat_steps:
            flat_model, flat_params = vqvae_from(flat_vqvae, "flat", flat_steps, data,
                                                 os.path.join(out, "flat_vqvae"), seed, progress)
            _, rows = random_codebook_rows(flat_params["quantizer"]["codebook"], 16, rng)
            panels.append(("flat VQ-VAE: random codebook rows",
                           onp.clip(flat_model.decode(flat_params, rows[:, None, None, :]), 0.0, 1.0)))
        else:
            print("no flat VQ-VAE (--flat-steps 0 and no --flat-vqvae): its panel is left out")
        print(f"wrote {sample_comparison(panels, os.path.join(out, 'samples.png'))}")
    if "conditional" in trained:
        prior, best, _ = trained["conditional"]
        labels = onp.repeat(onp.arange(10), 8)                      # 8 samples per class, one row each
        grids = sample_grids(prior, best, len(labels), 7, 7, onp.random.default_rng(seed), labels=labels)
        path = image_grid(decode(model, params, grids), os.path.join(out, "conditional_samples.png"),
                          ncols=8, title="gated PixelCNN, one class per row (0-9)")
        print(f"wrote {path}")
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vqvae", default=None, help="checkpoint of a trained 'grid' VQ-VAE")
    parser.add_argument("--vqvae-steps", type=int, default=3000)
    parser.add_argument("--flat-vqvae", default=None, help="checkpoint of a trained 'flat' VQ-VAE")
    parser.add_argument("--flat-steps", type=int, default=1000)
    parser.add_argument("--priors", nargs="+", default=list(PRIORS), choices=list(PRIORS))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--dropout", type=float, default=None, help="for every prior (default: per prior)")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/acceptance_prior")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    main(args.vqvae, args.vqvae_steps, args.flat_vqvae, args.flat_steps, tuple(args.priors), args.steps,
         args.batch_size, args.lr, args.dropout, args.eval_every, args.seed, args.out, not args.no_progress)
