"""Train `minivq.classifier` on the embedded 10k training split and write its weights asset.

Not imported by the package: this documents, and can redo, how `assets/digit_classifier.npz`
was made (about 3 minutes on one core):

    OPENBLAS_NUM_THREADS=1 python tools/train_digit_classifier.py

Adam, float32, batches of 64 training digits each shifted by up to 2 pixels (so that a
sample drawn a little off-centre is still judged by its shape). Prints the test-split
accuracy and the file's sha256, which goes into `minivq/classifier.py` (WEIGHTS_SHA256)
and `minivq/assets/README.md`.
"""
import argparse
import hashlib
import os
import time

import numpy as onp
from autograd import value_and_grad
from tqdm import tqdm

from minivq import classifier
from minivq.checkpoint import save_tree
from minivq.data import load_mnist_embedded
from minivq.optim import adam

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "minivq", "assets", classifier.WEIGHTS)
MAX_SHIFT = 2   # pixels; MNIST digits are centred by mass, generated ones less exactly


def shifted(x, rng, max_shift=MAX_SHIFT):
    """Each image of x (B, H, W, C) moved by its own random (dy, dx) in [-max_shift, max_shift], zero-filled."""
    s = max_shift
    padded = onp.pad(x, ((0, 0), (s, s), (s, s), (0, 0)), mode="constant")   # (B, H + 2s, W + 2s, C)
    height, width = x.shape[1:3]
    out = onp.empty_like(x)
    for i, (dy, dx) in enumerate(rng.integers(0, 2 * s + 1, size=(len(x), 2))):
        out[i] = padded[i, dy:dy + height, dx:dx + width]
    return out


def accuracy(params, x, y):
    """Share of images whose most probable class is the label."""
    return float(onp.mean(onp.argmax(classifier.probabilities(params, x), axis=1) == y))


def main(steps=3000, batch_size=64, lr=1e-3, seed=0, out=OUT):
    data = load_mnist_embedded()
    rng = onp.random.default_rng(seed)
    params = classifier.init(rng)
    opt_init, opt_update = adam(lr)
    opt_state = opt_init(params)
    loss_and_grad = value_and_grad(classifier.loss)
    start = time.perf_counter()
    bar = tqdm(range(steps), desc="classifier", dynamic_ncols=True)
    for _ in bar:
        rows = rng.integers(0, len(data.x_train), batch_size)
        loss, grads = loss_and_grad(params, shifted(data.x_train[rows], rng), data.y_train[rows])
        params, opt_state = opt_update(params, grads, opt_state)
        bar.set_postfix(loss=f"{float(loss):.3f}")
    seconds = time.perf_counter() - start
    save_tree(out, params)
    with open(out, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    print(f"{steps} steps in {seconds:.0f} s; train accuracy {accuracy(params, data.x_train, data.y_train):.4f}, "
          f"test accuracy {accuracy(params, data.x_test, data.y_test):.4f} ({len(data.x_test)} digits)")
    print(f"wrote {os.path.normpath(out)} ({os.path.getsize(out)} bytes), sha256 {sha}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args()
    main(args.steps, args.batch_size, args.lr, args.seed, args.out)
