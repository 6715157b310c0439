"""Demo 1: a plain convolutional autoencoder, trained by a loop written out in full.

The encoder maps a 28x28 digit to a 7x7 grid of continuous 16-d vectors z_e, the decoder
maps that grid back to pixels, and the loss is the per-pixel mean squared error. Nothing is
quantized, so this is the best reconstruction the same 7x7 bottleneck can give: the
VQ-VAEs of demos 2 and 3 squeeze it through a codebook and are measured against it.

The training loop is the whole story of gradient descent in autograd: sample a batch,
`value_and_grad` of the loss, one Adam update. (Later demos call minivq.train.train,
which runs the same loop plus hooks, evaluation and checkpoints.)

    python demos/01_autoencoder.py                # 1000 steps: a few minutes on a laptop CPU
    python demos/01_autoencoder.py --quick        # a smoke run of a few steps

On a shared machine, OPENBLAS_NUM_THREADS=1 in front of the command is often faster.
Writes to --out (default out/demo01/):
    reconstructions.png   16 test digits (top) and their reconstructions (bottom)
    training_curves.png   training loss per step and test MSE at each evaluation
"""
import argparse
import os
import sys

import numpy as onp
from autograd import value_and_grad
from tqdm import tqdm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout

from minivq.autoencoder import build_autoencoder   # noqa: E402
from minivq.data import load_mnist_embedded        # noqa: E402
from minivq.optim import adam                      # noqa: E402
from minivq.plots import reconstructions, training_curves   # noqa: E402
from minivq.tree import tree_count                 # noqa: E402
from demos.demo_common import spread           # noqa: E402


def main(steps=1000, batch_size=128, lr=1e-3, hidden=64, eval_every=250, seed=0, out="out/demo01",
         quick=False, progress=True):
    """Train the autoencoder, print its test MSE, write the figures; returns the key numbers."""
    data = load_mnist_embedded()
    x_train, x_test = data.x_train, data.x_test                  # (4500, 28, 28, 1), (500, 28, 28, 1)
    if quick:   # a smoke run for the tests: a few steps of a narrow net, a small test subset
        steps, batch_size, hidden, eval_every = 3, 8, 8, 3
        x_test = x_test[spread(32, len(x_test))]
    rng = onp.random.default_rng(seed)

    model = build_autoencoder({"hidden": hidden, "res_hidden": hidden // 2})
    params = model.init(rng)
    print(f"autoencoder: {tree_count(params):,} parameters, 28x28x1 -> z_e 7x7x16 -> 28x28x1")
    # What a model that ignores its input scores: always output the mean training image.
    mean_image_mse = float(onp.mean((x_test - x_train.mean(axis=0)) ** 2))
    print(f"test MSE of the mean training image (the score of ignoring the input): {mean_image_mse:.5f}")

    test_mse = model.evaluate(params, x_test)["test_mse"]
    print(f"test MSE before training: {test_mse:.5f}")

    opt_init, opt_update = adam(lr)
    opt_state = opt_init(params)
    loss_and_grads = value_and_grad(model.loss)                 # (params, x) -> (MSE, d MSE / d params)
    history, train_loss = [], float("nan")
    for step in tqdm(range(1, steps + 1), desc="train", disable=not progress):
        batch = x_train[rng.choice(len(x_train), size=batch_size, replace=False)]   # (B, 28, 28, 1)
        loss, grads = loss_and_grads(params, batch)
        params, opt_state = opt_update(params, grads, opt_state)
        train_loss = float(loss)
        history.append({"step": step, "loss": train_loss})
        if step % eval_every == 0 or step == steps:
            test_mse = model.evaluate(params, x_test)["test_mse"]
            history.append({"step": step, "test_mse": test_mse})
            tqdm.write(f"step {step}: train loss {train_loss:.5f}, test MSE {test_mse:.5f}")
    print(f"final test MSE (per pixel, {len(x_test)} test digits): {test_mse:.5f}")

    shown = x_test[spread(16, len(x_test))]                     # two or so of every digit
    recon = model.decode(params, model.encode(params, shown))
    os.makedirs(out, exist_ok=True)
    reconstructions(shown, onp.clip(recon, 0.0, 1.0), os.path.join(out, "reconstructions.png"),
                    title=f"autoencoder, test MSE {test_mse:.4f}")
    training_curves(history, os.path.join(out, "training_curves.png"), keys=("loss",))
    print(f"figures written to {out}/")
    return {"test_mse": test_mse, "train_loss": train_loss, "mean_image_mse": mean_image_mse}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=64, help="channels of the conv trunk")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/demo01")
    parser.add_argument("--quick", action="store_true", help="a few steps only (smoke test)")
    parser.add_argument("--no-progress", action="store_true", help="hide the tqdm bar")
    args = parser.parse_args()
    main(args.steps, args.batch_size, args.lr, args.hidden, args.eval_every, args.seed, args.out, args.quick,
         not args.no_progress)
