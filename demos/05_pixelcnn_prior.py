"""Demo 5: a PixelCNN prior over the VQ-VAE's code grids, and the digits it samples.

The prior factorises a 7x7 grid of code indices in raster order,

    p(x) = prod_{i,j} p(x[i,j] | x[<(i,j)])        (van den Oord et al. 2016, Eq. 1)

with masked convolutions, so the code of each cell is chosen knowing the cells above and to
its left: neighbouring codes now agree. Two ways to feed the grid to the network are
trained side by side:
    'codes'      the VQ-VAE's own codebook vectors codebook[x] (fixed, d = 16 per cell)
    'embedding'  a learned embedding of the indices, trained with the prior
Each is trained with minivq.train.train on the training grids, scored on the test grids in
bits per code (the best evaluation is kept), then sampled cell by cell and decoded. The
printed table puts them next to the uniform, unigram and independent-cells models of demo 4,
and the fraction of adjacent code pairs never seen in training shows the gained coherence.

    python demos/05_pixelcnn_prior.py                                # trains a VQ-VAE first (1000 steps)
    python demos/05_pixelcnn_prior.py --vqvae-run out/demo03/vqvae   # reuses demo 3's VQ-VAE
    python demos/05_pixelcnn_prior.py --quick                        # a smoke run

Writes to --out (default out/demo05/):
    samples.png                  independent cells | PixelCNN ('codes') | PixelCNN ('embedding')
    curves_codes.png             training loss (nats) and test bits per code of each prior
    curves_embedding.png
    prior_codes/, prior_embedding/   the prior runs (best.npz holds the best test bits)
    vqvae/                       the VQ-VAE run, unless --vqvae-run is given
"""
import argparse
import os
import sys

import numpy as onp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout

from demos.demo_common import grid_vqvae, spread, unseen_pair_rate   # noqa: E402
from minivq.checkpoint import load_checkpoint                    # noqa: E402
from minivq.codes import encode_dataset                          # noqa: E402
from minivq.data import load_mnist_embedded                      # noqa: E402
from minivq.prior import build_prior, make_config                # noqa: E402
from minivq.plots import sample_comparison, training_curves      # noqa: E402
from minivq.baselines import (independent_bits, sample_independent, uniform_bits,   # noqa: E402
                              unigram_bits)
from minivq.sampling import sample_grids                         # noqa: E402
from minivq.train import train                                   # noqa: E402
from minivq.tree import tree_count                               # noqa: E402

MODES = ("codes", "embedding")


def train_prior(mode, codebook, train_grids, test_grids, channels, num_blocks, steps, batch_size, lr,
                eval_every, seed, out_dir, progress):
    """Train one PixelCNN prior; returns (the prior model, params at the best test bits, history)."""
    num_codes, code_dim = codebook.shape
    config = make_config(num_codes=num_codes, input_mode=mode, channels=channels, num_blocks=num_blocks,
                         code_dim=code_dim if mode == "codes" else None)
    prior = build_prior(config)
    rng = onp.random.default_rng(seed)
    params = prior.init(rng)
    print(f"PixelCNN prior, input '{mode}': {tree_count(params):,} parameters")
    if mode == "codes":   # the network reads the code vectors; the targets are the indices
        def loss_fn(p, grids):
            return prior.loss(p, grids, codebook[grids])                      # codes (B, 7, 7, d)

        def eval_fn(p):
            return {"test_bits": prior.bits_per_code(p, test_grids.indices, test_grids.codes)}
    else:
        def loss_fn(p, grids):
            return prior.loss(p, grids)

        def eval_fn(p):
            return {"test_bits": prior.bits_per_code(p, test_grids.indices)}
    result = train(loss_fn, params, train_grids.indices, steps, batch_size, lr, rng,
                   eval_fn=eval_fn, eval_every=eval_every, best_metric="test_bits",
                   out_dir=out_dir, checkpoint_every=eval_every, config=config, progress=progress)
    best = load_checkpoint(os.path.join(out_dir, "best.npz"))
    return prior, best["params"], result.history


def main(vqvae_run=None, vqvae_steps=1000, vqvae_batch_size=128, hidden=64, prior_channels=64,
         prior_blocks=6, prior_steps=600, prior_batch_size=32, lr=1e-3, eval_every=100, n_samples=64,
         temperature=1.0, seed=0, out="out/demo05", quick=False, progress=True):
    """Train both PixelCNN priors, print bits per code, sample and decode; returns the key numbers."""
    data = load_mnist_embedded()
    x_train, x_test = data.x_train, data.x_test                   # (4500, 28, 28, 1), (500, 28, 28, 1)
    if quick:   # a smoke run for the tests: a few steps of narrow nets, small subsets, few samples
        vqvae_steps, vqvae_batch_size, hidden = 3, 8, 8
        prior_channels, prior_blocks, prior_steps, prior_batch_size, eval_every, n_samples = 8, 1, 3, 8, 3, 4
        x_train, x_test = x_train[spread(128, len(x_train))], x_test[spread(32, len(x_test))]
    model, params = grid_vqvae(vqvae_run, vqvae_steps, vqvae_batch_size, lr, hidden, x_train, x_test, seed,
                               os.path.join(out, "vqvae"), progress)
    codebook = params["quantizer"]["codebook"]                    # (K, d)
    num_codes = len(codebook)
    train_grids = encode_dataset(lambda x: model.encode(params, x), x_train)   # indices (N, 7, 7), codes
    test_grids = encode_dataset(lambda x: model.encode(params, x), x_test)
    h, w = train_grids.indices.shape[1:]

    bits = {"uniform": uniform_bits(num_codes),
            "unigram": unigram_bits(train_grids.indices, test_grids.indices, num_codes),
            "independent cells": independent_bits(train_grids.indices, test_grids.indices, num_codes)}
    rng = onp.random.default_rng(seed + 1)
    grids = {"independent cells": sample_independent(train_grids.indices, num_codes, n_samples, rng)}
    os.makedirs(out, exist_ok=True)
    for mode in MODES:
        prior, prior_params, history = train_prior(mode, codebook, train_grids, test_grids, prior_channels,
                                             prior_blocks, prior_steps, prior_batch_size, lr, eval_every,
                                             seed, os.path.join(out, f"prior_{mode}"), progress)
        best = min(history["eval"], key=lambda r: r["test_bits"])
        bits[f"PixelCNN '{mode}'"] = best["test_bits"]
        print(f"PixelCNN '{mode}': best test {best['test_bits']:.3f} bits per code at step {best['step']}")
        grids[f"PixelCNN '{mode}'"] = sample_grids(prior, prior_params, n_samples, h, w, rng,
                                                   temperature=temperature,
                                                   codebook=codebook if mode == "codes" else None)
        training_curves(history["train"] + history["eval"], os.path.join(out, f"curves_{mode}.png"),
                        keys=("loss",))

    print("held-out negative log-likelihood, bits per code (lower is better):")
    for name, value in bits.items():
        print(f"  {name:22s} {value:.3f}")
    rates = {"test digits": unseen_pair_rate(test_grids.indices, train_grids.indices, num_codes)}
    rates.update({name: unseen_pair_rate(g, train_grids.indices, num_codes) for name, g in grids.items()})
    print("adjacent code pairs never seen at their position in training:")
    for name, rate in rates.items():
        print(f"  {name:22s} {100 * rate:5.1f}%")

    panels = [(name, onp.clip(model.decode_indices(params, g), 0.0, 1.0)) for name, g in grids.items()]
    sample_comparison(panels, os.path.join(out, "samples.png"))
    print(f"figures written to {out}/")
    return {"independent_bits": bits["independent cells"], "unigram_bits": bits["unigram"],
            "codes_bits": bits["PixelCNN 'codes'"], "embedding_bits": bits["PixelCNN 'embedding'"],
            "unseen_pairs_independent": rates["independent cells"],
            "unseen_pairs_codes": rates["PixelCNN 'codes'"],
            "unseen_pairs_embedding": rates["PixelCNN 'embedding'"]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vqvae-run", default=None,
                        help="a grid VQ-VAE run folder (best.npz or checkpoint.npz), e.g. out/demo03/vqvae")
    parser.add_argument("--vqvae-steps", type=int, default=1000, help="steps if the VQ-VAE is trained here")
    parser.add_argument("--vqvae-batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=64, help="channels of the VQ-VAE trained here")
    parser.add_argument("--prior-channels", type=int, default=64)
    parser.add_argument("--prior-blocks", type=int, default=6, help="residual masked-conv blocks")
    parser.add_argument("--prior-steps", type=int, default=600)
    parser.add_argument("--prior-batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--n-samples", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/demo05")
    parser.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    parser.add_argument("--no-progress", action="store_true", help="hide the tqdm bar")
    args = parser.parse_args()
    main(args.vqvae_run, args.vqvae_steps, args.vqvae_batch_size, args.hidden, args.prior_channels,
         args.prior_blocks, args.prior_steps, args.prior_batch_size,
         args.lr, args.eval_every, args.n_samples, args.temperature, args.seed, args.out, args.quick,
         not args.no_progress)
