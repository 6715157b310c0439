"""One prior variant on a trained VQ-VAE run: train it, held-out bits, the score of 256 T=1 samples.

    python -m minivq train-vqvae --out runs/ablation && python -m minivq encode --run runs/ablation \
        && python -m minivq encode --run runs/ablation --augment 4
    OPENBLAS_NUM_THREADS=1 python bench/prior_ablation.py VARIANT SEED [STEPS] [--root runs/ablation]

Each variant trains in ROOT_v<variant>_s<seed>_n<steps>, linked to ROOT's vqvae/ and codes/, and
appends one JSON line to ROOT/results.jsonl. The table it gave is in docs/prior_ablation.md.
"""
import argparse
import json
import os
import time

import numpy as onp

from minivq.data import load_mnist_embedded
from minivq.metrics import format_score, sample_score
from minivq.pipeline import decode, sample, train_prior
from minivq.run_dir import load_vqvae

# Every variant pins its training settings, so a later change of the defaults does not change
# what a name measures. BEFORE: the demo's prior before issue 14 (batch 32, lr 1e-3, nothing else).
BEFORE = dict(batch_size=32, lr=1e-3, dropout=0.0, ema_decay=0.0, schedule="constant", warmup=0,
              augment=False)
AVERAGED = dict(BEFORE, ema_decay=0.995)
FASTER = dict(AVERAGED, batch_size=64, lr=2e-3)       # the default of train-prior since this table
VARIANTS = {
    "baseline": BEFORE,
    "ema": AVERAGED,
    "cosine": dict(BEFORE, schedule="cosine", warmup=50),
    "augment": dict(BEFORE, augment=True),
    "gated_dropout": dict(BEFORE, gated=True, dropout=0.1),
    "combo_nogate": dict(BEFORE, dropout=0.1, ema_decay=0.995, schedule="cosine", warmup=50, augment=True),
    "b64_lr2": FASTER,
    "b64_lr2_augment": dict(FASTER, augment=True),    # the demo's prior
    "b64_lr2_augment_codes": dict(FASTER, augment=True, input_mode="codes"),
    "b64_lr2_augment_dropout": dict(FASTER, augment=True, dropout=0.1),
    "gated_dropout_augment": dict(AVERAGED, gated=True, dropout=0.1, augment=True),
    "wide_dropout_augment": dict(AVERAGED, channels=128, dropout=0.2, augment=True),
    "conditional_augment": dict(AVERAGED, gated=True, conditional=True, dropout=0.1, augment=True),
}


def main(variant, seed, steps=1000, root="runs/ablation"):
    run = f"{root}_v{variant}_s{seed}_n{steps}"
    os.makedirs(run, exist_ok=True)
    for part in ("vqvae", "codes"):
        if not os.path.exists(os.path.join(run, part)):
            os.symlink(os.path.abspath(os.path.join(root, part)), os.path.join(run, part))
    t0 = time.perf_counter()
    summary = train_prior(run, steps=steps, seed=seed, force=True, progress=False, **VARIANTS[variant])
    train_seconds = time.perf_counter() - t0
    path = sample(run, n=256, temperature=1.0, seed=seed, force=True, progress=False)
    vqvae = load_vqvae(run)
    images = decode(vqvae.model, vqvae.params, onp.load(path[:-len(".png")] + ".npy"))
    data = load_mnist_embedded()
    score = sample_score(onp.clip(images, 0, 1), train_images=data.x_train, test_images=data.x_test)
    print(variant, seed, steps, f"bits/code {summary.get('test_bits')}", format_score(score))
    record = dict(variant=variant, seed=seed, steps=steps, test_bits=summary.get("test_bits"),
                  best_step=summary.get("step"), train_seconds=train_seconds, **score)
    with open(os.path.join(root, "results.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("seed", type=int)
    parser.add_argument("steps", type=int, nargs="?", default=1000)
    parser.add_argument("--root", default="runs/ablation", help="the trained VQ-VAE run (vqvae/, codes/)")
    args = parser.parse_args()
    main(args.variant, args.seed, args.steps, args.root)
