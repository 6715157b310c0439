"""Demo 7: the same recipe on sequences: a 1-D VQ-VAE and a prior on daily power demand.

The data are the 1096 days of UCR ItalyPowerDemand shipped with minivq (24 hourly values
per day; `minivq/assets/README.md`): 1029 to train on, 67 held out. A sequence is an image
one row high, (1, 24, 1), so the VQ-VAE's kernels become (1, k) and its two stride-2 convs
halve only the length: 24 hours -> a 1 x 6 grid of codes, one code per 4 hours. A PixelCNN
with (1, k) row masks then learns which 4-hour shapes follow which,

    p(day) = prod_t p(code[t] | code[<t])

and sampling it cell by cell gives new days. Against it: every cell drawn on its own from
the code frequencies at its position (independent cells, as in demo 4). Two numbers say how
real the samples look: the distance to the nearest training day (real held-out days set the
scale), and the size of the jumps between neighbouring hours (real days are smooth).

    python demos/07_power_demand.py              # about 2-4 minutes on 2 cores
    python demos/07_power_demand.py --quick      # a smoke run

Writes to --out (default out/demo07/):
    sequences.png       real days | reconstructions (over the real, dashed) | independent cells | prior
    curves_vqvae.png    VQ-VAE loss, reconstruction error, perplexity, test MSE
    curves_prior.png    prior loss (nats) and test bits per code
    vqvae/, prior/      the training runs (best.npz, history.json)
"""
import argparse
import os
import sys

import numpy as onp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout

from demos.demo_common import unseen_pair_rate                   # noqa: E402
from minivq.baselines import independent_bits, sample_independent, uniform_bits, unigram_bits  # noqa: E402
from minivq.checkpoint import load_checkpoint                    # noqa: E402
from minivq.codes import encode_dataset                          # noqa: E402
from minivq.data import describe, load_italy_power, unscale    # noqa: E402
from minivq.pipeline import VQVAE_MODEL                          # noqa: E402
from minivq.plots import sequence_panels, training_curves        # noqa: E402
from minivq.prior import build_prior, make_config                # noqa: E402
from minivq.sampling import sample_grids                         # noqa: E402
from minivq.train import train                                   # noqa: E402
from minivq.vqvae import build_vqvae                             # noqa: E402


def to_demand(x, value_range):
    """Model values in [0, 1], (N, 1, 24, 1) -> the archive's z-normalised demand, (N, 24)."""
    return unscale(x, value_range)[:, 0, :, 0]


def nearest_rmse(days, train_days):
    """Mean over days (N, L) of the RMSE to the nearest of train_days (M, L)."""
    gaps = ((days[:, None, :] - train_days[None, :, :]) ** 2).mean(axis=-1)    # (N, M)
    return float(onp.sqrt(gaps.min(axis=1)).mean())


def mean_jump(days):
    """Mean |day[t + 1] - day[t]| over days (N, L) and hours: real demand changes smoothly."""
    return float(onp.abs(onp.diff(days, axis=1)).mean())


def best_params(out_dir):
    return load_checkpoint(os.path.join(out_dir, "best.npz"))["params"]


def main(vqvae_steps=1500, batch_size=64, hidden=64, num_codes=32, code_dim=8, prior_channels=64,
         prior_blocks=4, prior_steps=1500, prior_batch_size=64, lr=1e-3, eval_every=100, n_samples=64,
         n_shown=8, seed=0, out="out/demo07", quick=False, progress=True):
    """Train the 1-D VQ-VAE and its prior, compare samples, draw the figure; returns the key numbers."""
    data = load_italy_power()
    print(f"data: {describe(data)}")
    x_train, x_test = data.x_train, data.x_test                   # (1029, 1, 24, 1), (67, 1, 24, 1)
    if quick:   # a smoke run for the tests: narrow nets, a few steps, few samples
        vqvae_steps, batch_size, hidden, num_codes, code_dim = 4, 16, 8, 8, 4
        prior_channels, prior_blocks, prior_steps, prior_batch_size, eval_every, n_samples = 8, 1, 4, 16, 2, 8

    # 1. The VQ-VAE: the sequence shape (1, 24, 1) turns every kernel into a (1, k) row kernel.
    model = build_vqvae(dict(VQVAE_MODEL, input_shape=x_train.shape[1:], hidden=hidden,
                             res_hidden=hidden // 2, num_res_blocks=2, num_downsamplings=2,
                             code_dim=code_dim, num_codes=num_codes))
    rng = onp.random.default_rng(seed)
    params = model.init(rng)
    vq_run = train(model.loss_and_aux, params, x_train, vqvae_steps, batch_size, lr, rng,
                   step_hook=model.step_hook, hook_state=model.init_state(params),
                   eval_fn=lambda p: model.evaluate(p, x_test), eval_every=eval_every, best_metric="test_mse",
                   out_dir=os.path.join(out, "vqvae"), checkpoint_every=eval_every, config=model.config,
                   progress=progress)
    params = best_params(os.path.join(out, "vqvae"))
    scores = model.evaluate(params, x_test)
    print(f"VQ-VAE: test MSE {scores['test_mse']:.5f} (model scale), perplexity "
          f"{scores['perplexity']:.1f}, {scores['used_codes']:.0f} of {num_codes} codes used")

    # 2. The code grids: 1 x 6 per day.
    train_grids = encode_dataset(lambda x: model.encode(params, x), x_train)
    test_grids = encode_dataset(lambda x: model.encode(params, x), x_test)
    h, w = train_grids.indices.shape[1:]
    print(f"codes: {h} x {w} per day, train {train_grids.indices.shape}, test {test_grids.indices.shape}")

    # 3. The prior: (1, k) kernels, the row case of the causal masks.
    config = make_config(num_codes=num_codes, channels=prior_channels, num_blocks=prior_blocks,
                         first_kernel=(1, 5), kernel=(1, 3))
    prior = build_prior(config)
    prior_params = prior.init(rng)
    prior_run = train(lambda p, grids: prior.loss(p, grids), prior_params, train_grids.indices, prior_steps,
                      prior_batch_size, lr, rng,
                      eval_fn=lambda p: {"test_bits": prior.bits_per_code(p, test_grids.indices)},
                      eval_every=eval_every, best_metric="test_bits", out_dir=os.path.join(out, "prior"),
                      checkpoint_every=eval_every, config=config, progress=progress)
    prior_params = best_params(os.path.join(out, "prior"))

    bits = {"uniform": uniform_bits(num_codes),
            "unigram": unigram_bits(train_grids.indices, test_grids.indices, num_codes),
            "independent cells": independent_bits(train_grids.indices, test_grids.indices, num_codes),
            "PixelCNN": prior.bits_per_code(prior_params, test_grids.indices)}
    print("held-out negative log-likelihood, bits per code (lower is better):")
    for name, value in bits.items():
        print(f"  {name:18s} {value:.3f}")

    # 4. Samples, decoded back to demand curves.
    sample_rng = onp.random.default_rng(seed + 1)
    grids = {"independent cells": sample_independent(train_grids.indices, num_codes, n_samples, sample_rng),
             "PixelCNN prior": sample_grids(prior, prior_params, n_samples, h, w, sample_rng)}
    decoded = dict({"reconstructions": test_grids.indices}, **grids)       # name -> (N, 1, 6) grids
    days = {"real (held out)": to_demand(x_test, data.value_range)}
    for name, g in decoded.items():
        days[name] = to_demand(model.decode_indices(params, g), data.value_range)
    train_days = to_demand(x_train, data.value_range)
    print("how real the days look: RMSE to the nearest training day, mean hourly jump, "
          "unseen neighbouring code pairs")
    numbers = {}
    for name, curves in days.items():
        rmse, jump = nearest_rmse(curves, train_days), mean_jump(curves)
        grid = test_grids.indices if name.startswith(("real", "recon")) else grids[name]
        unseen = unseen_pair_rate(grid, train_grids.indices, num_codes)
        print(f"  {name:18s} {rmse:.3f}   {jump:.3f}   {100 * unseen:5.1f}%")
        key = name.split(" ")[0]
        numbers.update({f"{key}_nearest_rmse": rmse, f"{key}_jump": jump, f"{key}_unseen_pairs": unseen})

    os.makedirs(out, exist_ok=True)
    sequence_panels([("real days (held out)", days["real (held out)"]),
                     ("reconstructions (real dashed)", days["reconstructions"], days["real (held out)"]),
                     ("independent cells", days["independent cells"]),
                     ("PixelCNN prior", days["PixelCNN prior"])],
                    os.path.join(out, "sequences.png"), n=n_shown, xlabel="hour",
                    ylabel="demand (z-normalised)")
    training_curves(vq_run.history["train"] + vq_run.history["eval"], os.path.join(out, "curves_vqvae.png"))
    training_curves(prior_run.history["train"] + prior_run.history["eval"],
                    os.path.join(out, "curves_prior.png"), keys=("loss",))
    print(f"figures written to {out}/")
    return dict(numbers, test_mse=scores["test_mse"], perplexity=scores["perplexity"],
                independent_bits=bits["independent cells"], prior_bits=bits["PixelCNN"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vqvae-steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=64, help="channels of the VQ-VAE trunk")
    parser.add_argument("--num-codes", type=int, default=32, help="codebook size K")
    parser.add_argument("--code-dim", type=int, default=8, help="code vector size d")
    parser.add_argument("--prior-channels", type=int, default=64)
    parser.add_argument("--prior-blocks", type=int, default=4, help="masked layers after the first")
    parser.add_argument("--prior-steps", type=int, default=1500)
    parser.add_argument("--prior-batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--n-samples", type=int, default=64)
    parser.add_argument("--n-shown", type=int, default=8, help="curves drawn per panel")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/demo07")
    parser.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    parser.add_argument("--no-progress", action="store_true", help="hide the tqdm bar")
    args = parser.parse_args()
    main(args.vqvae_steps, args.batch_size, args.hidden, args.num_codes, args.code_dim, args.prior_channels,
         args.prior_blocks, args.prior_steps, args.prior_batch_size, args.lr, args.eval_every,
         args.n_samples, args.n_shown, args.seed, args.out, args.quick, not args.no_progress)
