"""Demo 3: the grid VQ-VAE (7x7 codes per image) reconstructs close to the autoencoder.

The paper's VQ-VAE does not flatten: each of the 7x7 encoder outputs z_e is quantized to its
nearest codebook row on its own, so an image becomes 49 indices (49 log2 K = 294 bits for
K = 64, against the flat model's 6). Combinations of codes, not single codes, describe a
digit: the test MSE falls by about an order of magnitude from the flat model's (demo 2)
and comes within a small factor of the unquantized autoencoder of demo 1, trained here
alongside with the same steps and batches for a fair comparison.

    python demos/03_grid_vqvae.py                 # 1000 + 1000 steps: several minutes on a laptop CPU
    python demos/03_grid_vqvae.py --ae-steps 0    # the VQ-VAE only
    python demos/03_grid_vqvae.py --quick         # a smoke run of a few steps

Writes to --out (default out/demo03/):
    reconstructions.png   16 test digits and their VQ-VAE reconstructions
    comparison.png        test digits | autoencoder | grid VQ-VAE (without --ae-steps 0)
    code_grid.png         one test digit next to its 7x7 grid of code indices
    codebook_usage.png    how often each code is used on the test set
    training_curves.png   loss, reconstruction MSE, perplexity; test MSE and perplexity
    vqvae/, autoencoder/  the training runs; demos 4 and 5 accept --vqvae-run out/demo03/vqvae
"""
import argparse
import math
import os
import sys

import numpy as onp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout

from minivq.autoencoder import build_autoencoder                 # noqa: E402
from minivq.data import load_mnist_embedded                      # noqa: E402
from minivq.plots import (code_grid_map, codebook_usage, history_records, reconstructions,   # noqa: E402
                          sample_comparison, training_curves)
from minivq.train import train                                   # noqa: E402
from minivq.tree import tree_count                               # noqa: E402
from minivq.vqvae import build_vqvae, code_grid_shape            # noqa: E402
from demos.demo_common import spread           # noqa: E402


def main(steps=1000, ae_steps=1000, batch_size=128, lr=1e-3, num_codes=64, code_dim=16, hidden=64,
         eval_every=250, seed=0, out="out/demo03", quick=False, progress=True):
    """Train the grid VQ-VAE (and the autoencoder), print both test MSEs, write the figures."""
    data = load_mnist_embedded()
    x_train, x_test = data.x_train, data.x_test                   # (4500, 28, 28, 1), (500, 28, 28, 1)
    if quick:   # a smoke run for the tests: a few steps of narrow nets, a small test subset
        steps, ae_steps, batch_size, hidden, eval_every = 3, 3, 8, 8, 3
        x_test = x_test[spread(32, len(x_test))]
    arch = {"code_dim": code_dim, "hidden": hidden, "res_hidden": hidden // 2}   # shared by both models

    model = build_vqvae(dict(arch, kind="grid", num_codes=num_codes))
    rng = onp.random.default_rng(seed)
    params = model.init(rng)
    h, w = code_grid_shape(model.config)                          # (7, 7) for 28x28 digits
    print(f"grid VQ-VAE: {tree_count(params):,} parameters, a {h}x{w} grid of codes from K={num_codes} "
          f"per image ({h * w * math.log2(num_codes):.0f} bits per image)")
    result = train(model.loss_and_aux, params, x_train, steps, batch_size, lr, rng,
                   step_hook=model.step_hook, hook_state=model.init_state(params),
                   eval_fn=lambda p: model.evaluate(p, x_test), eval_every=eval_every,
                   out_dir=os.path.join(out, "vqvae"), checkpoint_every=eval_every,
                   config=model.config, progress=progress)
    params = result.params
    metrics = model.evaluate(params, x_test)

    ae_mse, ae_params, ae = float("nan"), None, build_autoencoder(arch)
    if ae_steps:
        ae_rng = onp.random.default_rng(seed)   # same seed: same batches as the VQ-VAE
        ae_result = train(ae.loss_and_aux, ae.init(ae_rng), x_train, ae_steps, batch_size, lr, ae_rng,
                          eval_fn=lambda p: ae.evaluate(p, x_test), eval_every=eval_every,
                          out_dir=os.path.join(out, "autoencoder"), checkpoint_every=eval_every,
                          config=ae.config, progress=progress)
        ae_params = ae_result.params
        ae_mse = ae.evaluate(ae_params, x_test)["test_mse"]

    print(f"grid VQ-VAE: test MSE {metrics['test_mse']:.5f}, perplexity {metrics['perplexity']:.1f} "
          f"of {num_codes}, used codes {metrics['used_codes']}")
    if ae_steps:
        print(f"autoencoder: test MSE {ae_mse:.5f} (same encoder and decoder, no quantization); "
              f"VQ-VAE / autoencoder = {metrics['test_mse'] / ae_mse:.2f}")

    os.makedirs(out, exist_ok=True)
    shown = x_test[spread(16, len(x_test))]                       # two or so of every digit
    indices, codes = model.encode(params, shown)                  # (16, 7, 7), (16, 7, 7, d)
    recon = onp.clip(model.decode(params, codes), 0.0, 1.0)
    reconstructions(shown, recon, os.path.join(out, "reconstructions.png"),
                    title=f"grid VQ-VAE, test MSE {metrics['test_mse']:.4f}")
    if ae_params is not None:
        ae_recon = onp.clip(ae.decode(ae_params, ae.encode(ae_params, shown)), 0.0, 1.0)
        sample_comparison([("test digits", shown),
                           (f"autoencoder, MSE {ae_mse:.4f}", ae_recon),
                           (f"grid VQ-VAE, MSE {metrics['test_mse']:.4f}", recon)],
                          os.path.join(out, "comparison.png"))
    code_grid_map(shown[6], indices[6], num_codes, os.path.join(out, "code_grid.png"))
    test_codes = onp.concatenate([model.encode(params, x_test[i:i + 500])[0]
                                  for i in range(0, len(x_test), 500)])   # (N_test, 7, 7)
    codebook_usage(test_codes, num_codes, os.path.join(out, "codebook_usage.png"))
    training_curves(history_records(result.history), os.path.join(out, "training_curves.png"))
    print(f"figures written to {out}/; reuse the VQ-VAE with --vqvae-run {os.path.join(out, 'vqvae')}")
    return {"test_mse": metrics["test_mse"], "perplexity": metrics["perplexity"],
            "used_codes": float(metrics["used_codes"]), "ae_test_mse": ae_mse}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="VQ-VAE training steps")
    parser.add_argument("--ae-steps", type=int, default=1000, help="autoencoder steps; 0 skips it")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--num-codes", type=int, default=64)
    parser.add_argument("--code-dim", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=64, help="channels of the conv trunks")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/demo03")
    parser.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    parser.add_argument("--no-progress", action="store_true", help="hide the tqdm bar")
    args = parser.parse_args()
    main(args.steps, args.ae_steps, args.batch_size, args.lr, args.num_codes, args.code_dim,
         args.hidden, args.eval_every, args.seed, args.out, args.quick, not args.no_progress)
