"""Print `minivq.metrics.sample_score` for reference sets of 256 images: the score's sanity points.

    OPENBLAS_NUM_THREADS=1 python tools/score_reference_sets.py

Sets: real test digits of the embedded 10k split, training digits (copies: the
memorisation check must flag them), uniform noise, the test digits blurred (Gaussian,
sigma 1 and 2 pixels) and a single test digit repeated (no diversity).
"""
import argparse

import numpy as onp

from minivq.data import load_mnist_embedded
from minivq.metrics import format_score, sample_score


def gaussian_blur(x, sigma):
    """Images (N, H, W, 1) blurred by a separable Gaussian of std sigma pixels (zero padding)."""
    radius = int(3 * sigma)   # +-3 sigma holds 99.7% of the kernel's mass
    taps = onp.exp(-0.5 * (onp.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = onp.pad(x[..., 0], ((0, 0), (radius, radius), (radius, radius)), mode="constant")
    height, width = x.shape[1:3]
    out = sum(t * out[:, i:i + height, :] for i, t in enumerate(taps))   # rows: (N, H, W + 2r)
    out = sum(t * out[:, :, i:i + width] for i, t in enumerate(taps))    # columns: (N, H, W)
    return onp.clip(out, 0, 1)[..., None].astype(onp.float32)


def main(n=256, seed=0):
    data = load_mnist_embedded()
    rng = onp.random.default_rng(seed)
    test = data.x_test[rng.choice(len(data.x_test), n, replace=False)]
    sets = {
        "real test digits": test,
        "training digits (copies)": data.x_train[rng.choice(len(data.x_train), n, replace=False)],
        "uniform noise": rng.random((n, 28, 28, 1), dtype=onp.float32),
        "test digits blurred, sigma 1": gaussian_blur(test, 1.0),
        "test digits blurred, sigma 2": gaussian_blur(test, 2.0),
        "one test digit repeated": onp.repeat(test[:1], n, axis=0),
    }
    for name, images in sets.items():
        print(f"{name:30s} {format_score(sample_score(images))}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=256, help="images per set")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.n, args.seed)
