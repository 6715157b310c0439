"""Demo 2: the flat VQ-VAE, one code per image, and why its samples are blurry.

The conv encoder's 7x7x16 output is flattened and mapped (Dense) to one d-vector, which is
quantized to the nearest of K codebook rows and decoded back to 28x28. However good the
decoder, the model can output only K different images, one per codebook row: every test
digit is reconstructed as one of them, and "sampling" (decoding a random codebook row) can
only return one of them too. Trained with squared error, the image decoded from code k is
close to the MEAN of the training digits assigned to k, and a mean of different digits is
blurry. The demo prints that distance next to the distance of a digit to its own
reconstruction.

    python demos/02_flat_vqvae.py                 # 1000 steps: a few minutes on a laptop CPU
    python demos/02_flat_vqvae.py --quick         # a smoke run of a few steps

Writes to --out (default out/demo02/):
    reconstructions.png   16 test digits and their reconstructions
    codebook_images.png   the image decoded from every used code | the mean of its training digits
    random_rows.png       16 "samples": decoded random codebook rows
    codebook_usage.png    how often each code is used on the test set
    training_curves.png   loss, reconstruction MSE, perplexity; test MSE
    vqvae/                the training run (checkpoint.npz, best.npz, history.json)
"""
import argparse
import math
import os
import sys

import numpy as onp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout

from minivq.data import load_mnist_embedded                      # noqa: E402
from minivq.plots import (codebook_usage, history_records, image_grid, reconstructions,   # noqa: E402
                          sample_comparison, training_curves)
from minivq.baselines import random_codebook_rows                # noqa: E402
from minivq.train import train                                   # noqa: E402
from minivq.tree import tree_count                               # noqa: E402
from minivq.vqvae import build_vqvae                             # noqa: E402
from demos.demo_common import spread           # noqa: E402


def main(steps=1000, batch_size=128, lr=1e-3, num_codes=64, code_dim=16, hidden=64, eval_every=250,
         seed=0, out="out/demo02", quick=False, progress=True):
    """Train a flat VQ-VAE, print its numbers, write the figures; returns the key numbers."""
    data = load_mnist_embedded()
    x_train, x_test = data.x_train, data.x_test                   # (4500, 28, 28, 1), (500, 28, 28, 1)
    if quick:   # a smoke run for the tests: a few steps of a narrow net, small subsets
        steps, batch_size, hidden, eval_every = 3, 8, 8, 3
        x_train, x_test = x_train[spread(128, len(x_train))], x_test[spread(32, len(x_test))]
    rng = onp.random.default_rng(seed)

    model = build_vqvae({"kind": "flat", "num_codes": num_codes, "code_dim": code_dim,
                         "hidden": hidden, "res_hidden": hidden // 2})
    params = model.init(rng)
    print(f"flat VQ-VAE: {tree_count(params):,} parameters, one code of K={num_codes} per image "
          f"({math.log2(num_codes):.0f} bits per image)")
    result = train(model.loss_and_aux, params, x_train, steps, batch_size, lr, rng,
                   step_hook=model.step_hook, hook_state=model.init_state(params),
                   eval_fn=lambda p: model.evaluate(p, x_test), eval_every=eval_every,
                   out_dir=os.path.join(out, "vqvae"), checkpoint_every=eval_every,
                   config=model.config, progress=progress)
    params = result.params
    metrics = model.evaluate(params, x_test)
    print(f"test MSE {metrics['test_mse']:.5f}, perplexity {metrics['perplexity']:.1f} of {num_codes}, "
          f"used codes {metrics['used_codes']}")

    # The K images this model can ever output: decode every codebook row.
    codebook = params["quantizer"]["codebook"]                    # (K, d)
    decoded = model.decode(params, codebook[:, None, None, :])    # (K, 1, 1, d) -> (K, 28, 28, 1)
    decoded = onp.clip(decoded, 0.0, 1.0)
    # Each decoded row against the mean of the training digits assigned to that code.
    train_codes = onp.concatenate([model.encode(params, x_train[i:i + 500])[0].ravel()
                                   for i in range(0, len(x_train), 500)])   # (N,) one code per digit
    used = onp.unique(train_codes)
    means = onp.stack([x_train[train_codes == k].mean(axis=0) for k in used])   # (U, 28, 28, 1)
    to_mean = float(onp.mean((decoded[used] - means) ** 2))
    to_members = float(onp.mean((decoded[train_codes] - x_train) ** 2))
    print(f"the model can output {num_codes} images at most; {len(used)} codes are used on the train set")
    print(f"MSE decoded code vs the mean of its training digits: {to_mean:.5f}")
    print(f"MSE decoded code vs each of its training digits:     {to_members:.5f}  "
          f"(the decoded image sits near the cluster mean: a blur of many digits)")

    os.makedirs(out, exist_ok=True)
    shown = x_test[spread(16, len(x_test))]                       # two or so of every digit
    recon = model.decode_indices(params, model.encode(params, shown)[0])
    reconstructions(shown, onp.clip(recon, 0.0, 1.0), os.path.join(out, "reconstructions.png"),
                    title=f"flat VQ-VAE, test MSE {metrics['test_mse']:.4f}")
    sample_comparison([("decoded codebook rows (used codes)", decoded[used]),
                       ("mean of the training digits of each code", means)],
                      os.path.join(out, "codebook_images.png"))
    _, rows = random_codebook_rows(codebook, 16, rng)             # (16, d)
    samples = onp.clip(model.decode(params, rows[:, None, None, :]), 0.0, 1.0)
    image_grid(samples, os.path.join(out, "random_rows.png"), title="decoded random codebook rows")
    test_codes = model.encode(params, x_test)[0]                  # (N_test, 1, 1)
    codebook_usage(test_codes, num_codes, os.path.join(out, "codebook_usage.png"))
    training_curves(history_records(result.history), os.path.join(out, "training_curves.png"))
    print(f"figures written to {out}/")
    return {"test_mse": metrics["test_mse"], "perplexity": metrics["perplexity"],
            "used_codes": float(metrics["used_codes"]), "mse_to_cluster_mean": to_mean,
            "mse_to_members": to_members}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--num-codes", type=int, default=64)
    parser.add_argument("--code-dim", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=64, help="channels of the conv trunk")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/demo02")
    parser.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    parser.add_argument("--no-progress", action="store_true", help="hide the tqdm bar")
    args = parser.parse_args()
    main(args.steps, args.batch_size, args.lr, args.num_codes, args.code_dim, args.hidden, args.eval_every,
         args.seed, args.out, args.quick, not args.no_progress)
