"""Demo 4: sampling each cell of the code grid independently, and why the digits fall apart.

A grid VQ-VAE turns every digit into a 7x7 grid of code indices. The simplest generative
model of such grids draws each cell from the codes seen at that position in the training
set, independently of its neighbours:

    p(x) = prod_{i,j} p_ij(x[i,j])        (p_ij: the frequencies at cell (i, j))

Every cell looks plausible on its own, but neighbouring cells no longer agree: strokes
break, and pieces of different digits meet. The demo measures this as the fraction of
adjacent code pairs (right or below) that never occur at that position in any training
grid, for held-out test grids and for the independent samples, and prints the held-out
bits per code of the uniform, unigram and independent-cells models (the numbers the
PixelCNN prior of demo 5 has to beat).

    python demos/04_independent_cells.py                                # trains a VQ-VAE first (1000 steps)
    python demos/04_independent_cells.py --vqvae-run out/demo03/vqvae   # reuses demo 3's VQ-VAE
    python demos/04_independent_cells.py --quick                        # a smoke run

Writes to --out (default out/demo04/):
    samples.png       test digits through the VQ-VAE | decoded independent-cell samples
    code_grid.png     one independent sample next to its 7x7 code grid
    cell_entropy.png  entropy of each cell's code distribution (white = log2 K bits)
    vqvae/            the VQ-VAE run, unless --vqvae-run is given
"""
import argparse
import math
import os
import sys

import numpy as onp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout

from demos.demo_common import grid_vqvae, spread, unseen_pair_rate   # noqa: E402
from minivq.codes import encode_dataset                          # noqa: E402
from minivq.data import load_mnist_embedded                      # noqa: E402
from minivq.plots import code_grid_map, image_grid, sample_comparison   # noqa: E402
from minivq.baselines import (independent_bits, position_marginals, sample_independent,   # noqa: E402
                              uniform_bits, unigram_bits)


def main(vqvae_run=None, vqvae_steps=1000, batch_size=128, lr=1e-3, hidden=64, n_samples=64, seed=0,
         out="out/demo04", quick=False, progress=True):
    """Sample code grids cell by cell independently, decode them, print the numbers, write figures."""
    data = load_mnist_embedded()
    x_train, x_test = data.x_train, data.x_test                   # (4500, 28, 28, 1), (500, 28, 28, 1)
    if quick:   # a smoke run for the tests: a few steps of a narrow net, small subsets
        vqvae_steps, batch_size, hidden, n_samples = 3, 8, 8, 4
        x_train, x_test = x_train[spread(128, len(x_train))], x_test[spread(32, len(x_test))]
    model, params = grid_vqvae(vqvae_run, vqvae_steps, batch_size, lr, hidden, x_train, x_test, seed,
                               os.path.join(out, "vqvae"), progress)
    num_codes = model.config["num_codes"]

    train_grids = encode_dataset(lambda x: model.encode(params, x), x_train).indices   # (N, 7, 7) int64
    test_grids = encode_dataset(lambda x: model.encode(params, x), x_test).indices
    rng = onp.random.default_rng(seed + 1)
    samples = sample_independent(train_grids, num_codes, len(test_grids), rng)   # as many as test grids

    bits = {"uniform": uniform_bits(num_codes),
            "unigram": unigram_bits(train_grids, test_grids, num_codes),
            "independent cells": independent_bits(train_grids, test_grids, num_codes)}
    print("held-out negative log-likelihood, bits per code (lower is better):")
    for name, value in bits.items():
        print(f"  {name:18s} {value:.3f}")
    p = position_marginals(train_grids, num_codes)                # (7, 7, K)
    log_p = onp.log2(p, out=onp.zeros_like(p), where=p > 0)       # 0 log 0 = 0
    entropy = -onp.sum(p * log_p, axis=-1)                        # (7, 7) bits
    print(f"entropy of a cell's code: {entropy.min():.2f} to {entropy.max():.2f} bits "
          f"(border cells are nearly fixed, central cells carry the digit)")
    real_rate = unseen_pair_rate(test_grids, train_grids, num_codes)
    sample_rate = unseen_pair_rate(samples, train_grids, num_codes)
    print(f"adjacent code pairs never seen at their position in training: "
          f"test digits {100 * real_rate:.1f}%, independent samples {100 * sample_rate:.1f}%")

    os.makedirs(out, exist_ok=True)
    shown = test_grids[spread(n_samples, len(test_grids))]
    real = onp.clip(model.decode_indices(params, shown), 0.0, 1.0)
    fake = onp.clip(model.decode_indices(params, samples[:n_samples]), 0.0, 1.0)
    sample_comparison([("test digits, encoded and decoded", real), ("independent cells", fake)],
                      os.path.join(out, "samples.png"))
    code_grid_map(fake[0], samples[0], num_codes, os.path.join(out, "code_grid.png"))
    image_grid((entropy / math.log2(num_codes))[None, :, :, None], os.path.join(out, "cell_entropy.png"),
               title=f"entropy per cell (white: {math.log2(num_codes):.0f} bits)")
    print(f"figures written to {out}/")
    return {"uniform_bits": bits["uniform"], "unigram_bits": bits["unigram"],
            "independent_bits": bits["independent cells"], "unseen_pairs_test": real_rate,
            "unseen_pairs_independent": sample_rate}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vqvae-run", default=None,
                        help="a grid VQ-VAE run folder (best.npz or checkpoint.npz), e.g. out/demo03/vqvae")
    parser.add_argument("--vqvae-steps", type=int, default=1000, help="steps if the VQ-VAE is trained here")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=64, help="channels of the VQ-VAE trained here")
    parser.add_argument("--n-samples", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/demo04")
    parser.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    parser.add_argument("--no-progress", action="store_true", help="hide the tqdm bar")
    args = parser.parse_args()
    main(args.vqvae_run, args.vqvae_steps, args.batch_size, args.lr, args.hidden, args.n_samples, args.seed,
         args.out, args.quick, not args.no_progress)
