"""A small digit classifier, the judge of `minivq.metrics`' sample-quality score.

A plain CNN from minivq's own layers, images (B, 28, 28, 1) in [0, 1] -> logits (B, 10):

    conv 3x3, 16 -> relu -> conv 4x4 /2, 32 -> relu       28x28 -> 14x14
    conv 4x4 /2, 64 -> relu -> conv 3x3 /2, 64 -> relu     14x14 -> 7x7 -> 4x4
    flatten 4*4*64 -> dense 10

Trained once on the embedded 10k training split by `tools/train_digit_classifier.py` and
shipped as `assets/digit_classifier.npz` (about 350 KB, float32), whose sha256 is checked
on load. It judges 28x28 MNIST-like digits only: on anything else its confidences mean
little.
"""
import functools
import os

import autograd.numpy as np
import numpy as onp

from .checkpoint import load_tree
from .checks import check_images
from .data import ASSETS, read_asset
from .layers import Conv2d, Dense, Flatten, Relu, serial
from .prior import log_softmax

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)
WEIGHTS = "digit_classifier.npz"
# sha256 of the shipped weights, printed by tools/train_digit_classifier.py and listed in
# assets/README.md; a retrained file must update both.
WEIGHTS_SHA256 = "5203c45bb081ed3cc0a18d8114efc21482cf95add31d2297e8215af9946d4ce0"

init_fn, apply_fn = serial(
    Conv2d(16, 3, padding=1), Relu,             # (28, 28, 16)
    Conv2d(32, 4, stride=2, padding=1), Relu,   # (14, 14, 32)
    Conv2d(64, 4, stride=2, padding=1), Relu,   # (7, 7, 64)
    Conv2d(64, 3, stride=2, padding=1), Relu,   # (4, 4, 64)
    Flatten(), Dense(NUM_CLASSES))              # (1024,) -> (10,)


def init(rng):
    """Fresh float32 parameters (a list, one entry per layer) drawn from the numpy Generator rng."""
    return init_fn(rng, IMAGE_SHAPE)[1]


def logits(params, x):
    """Class scores, x (B, 28, 28, 1) in [0, 1] -> (B, 10)."""
    return apply_fn(params, x)


def log_probabilities(params, x):
    """log softmax of the logits, (B, 28, 28, 1) -> (B, 10)."""
    return log_softmax(logits(params, x))


def loss(params, x, y):
    """Mean cross-entropy in nats, x (B, 28, 28, 1), integer labels y (B,)."""
    one_hot = onp.asarray(y)[:, None] == onp.arange(NUM_CLASSES)   # (B, 10) bool
    return -np.sum(log_probabilities(params, x) * one_hot) / len(one_hot)


def probabilities(params, x, batch_size=500):
    """Class probabilities (N, 10) of images (N, 28, 28, 1) in [0, 1], in batches of batch_size."""
    check_images(x, IMAGE_SHAPE, name="images", value_range=(0, 1))
    x = onp.asarray(x, onp.float32)
    chunks = [onp.exp(log_probabilities(params, x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
    return onp.concatenate(chunks) if chunks else onp.zeros((0, NUM_CLASSES), onp.float32)


@functools.lru_cache(maxsize=1)
def load_classifier():
    """The shipped parameters (read once; do not modify them), checked against WEIGHTS_SHA256."""
    read_asset(WEIGHTS, WEIGHTS_SHA256)   # ValueError naming the file if it is damaged
    return load_tree(os.path.join(ASSETS, WEIGHTS))


def classify(x, batch_size=500):
    """Class probabilities (N, 10) of images (N, 28, 28, 1) in [0, 1] by the shipped classifier."""
    return probabilities(load_classifier(), x, batch_size)
