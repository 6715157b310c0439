"""A sample-quality score for generated MNIST digits, judged by the shipped digit classifier.

An Inception-score-like measure for MNIST (Salimans et al. 2016 judge samples by an
ImageNet classifier; here a small digit CNN, `minivq.classifier`). For images
(N, 28, 28, 1) in [0, 1], `sample_score` returns:

    confidence       mean over images of the top class probability: does each image look
                     like some digit? (real test digits: about 0.98)
    confident_share  share of images whose top class probability is >= 0.9
    diversity_bits   entropy (bits) of the mean class distribution: are all ten digits
                     drawn? log2(10) = 3.32 at most, 0 if every image is the same digit
    nn_distance      mean Euclidean pixel distance of each image to its nearest training image
    nn_ratio         nn_distance / the same mean for the real test digits. About 1 for
                     new digits as close to the training set as fresh data; near 0 when
                     training images are copied; above 1 for images unlike any digit
    near_copy_share  share of images nearer to a training image than any real test digit is

Limits: the classifier saw only real MNIST, so a confident verdict says "looks like a
digit to this CNN", not "looks right to a person". Images unlike any digit can get
confident labels: uniform noise scores confidence 0.98, all of it called one class (so
diversity 0.15 bits, nn_ratio 3.2); read the three together. The score ignores stroke
detail the CNN does not use (digits blurred with sigma 1 pixel keep confidence 0.98). Diversity
counts classes, not variety within a class. The memorisation check is in pixel space:
a copy shifted by one pixel is far from its original. Compare scores of sets of equal
size (256 is the convention here) judged by the same classifier.

    print(format_score(sample_score(images)))
"""
import functools

import numpy as onp

from .checks import check_images
from .classifier import IMAGE_SHAPE, NUM_CLASSES, classify
from .data import load_mnist_embedded

CONFIDENT = 0.9   # the top class probability above which an image counts as a clear digit


def confidence(probs):
    """(mean top-class probability, share of rows with top probability >= CONFIDENT); probs (N, K)."""
    top = onp.max(probs, axis=1)
    return float(onp.mean(top)), float(onp.mean(top >= CONFIDENT))


def class_diversity(probs):
    """Entropy in bits of the mean class distribution of probs (N, K): 0 .. log2(K)."""
    mean = onp.mean(probs, axis=0)
    mean = mean[mean > 0]   # 0 log 0 = 0
    return float(-onp.sum(mean * onp.log2(mean)))


def nearest_distances(x, reference, batch_size=500):
    """Euclidean distance of each row of x (N, D) to its nearest row of reference (M, D) -> (N,)."""
    x, reference = onp.asarray(x, onp.float64), onp.asarray(reference, onp.float64)
    ref_sq = onp.sum(reference ** 2, axis=1)   # (M,)
    out = []
    for start in range(0, len(x), batch_size):
        chunk = x[start:start + batch_size]
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, (n, M); clipped at 0 against rounding below it
        sq = onp.sum(chunk ** 2, axis=1)[:, None] + ref_sq[None, :] - 2 * chunk @ reference.T
        out.append(onp.sqrt(onp.maximum(sq.min(axis=1), 0)))
    return onp.concatenate(out) if out else onp.zeros(0)


def memorisation(images, train_images, test_images):
    """nn_distance, nn_ratio and near_copy_share of images against train_images (see the module docstring).

    All three arrays (N, 28, 28, 1); test_images are real held-out images, the yardstick.
    """
    train = onp.reshape(train_images, (len(train_images), -1))   # (M, 784)
    return _memorisation(_flat(images), train, nearest_distances(_flat(test_images), train))


@functools.lru_cache(maxsize=1)
def _embedded_reference():
    """(train images (9001, 784), test-to-train nearest distances (999,)) of the embedded 10k split."""
    data = load_mnist_embedded()
    train = _flat(data.x_train)
    return train, nearest_distances(_flat(data.x_test), train)


def _flat(images):
    return onp.reshape(images, (len(images), -1))   # (N, 28, 28, 1) -> (N, 784)


def _memorisation(samples, train, test_distances):
    distances = nearest_distances(samples, train)
    return {"nn_distance": float(onp.mean(distances)),
            "nn_ratio": float(onp.mean(distances) / onp.mean(test_distances)),
            "near_copy_share": float(onp.mean(distances < onp.min(test_distances)))}


def sample_score(images, train_images=None, test_images=None, probs=None):
    """The score of images (N, 28, 28, 1) in [0, 1] as a dict of floats (keys in the module docstring).

    train_images, test_images: the generator's training data and real held-out images for
    the memorisation check (default: the embedded 10k split). probs (N, 10): class
    probabilities if already computed (default: the shipped classifier's).
    """
    check_images(images, IMAGE_SHAPE, name="images", value_range=(0, 1))
    if len(images) == 0:
        raise ValueError("images must hold at least one image, got 0")
    if (train_images is None) != (test_images is None):
        raise ValueError("give both train_images and test_images for the memorisation check, or neither")
    probs = classify(images) if probs is None else onp.asarray(probs)
    if probs.shape != (len(images), NUM_CLASSES):
        raise ValueError(f"probs must have shape ({len(images)}, {NUM_CLASSES}), got {probs.shape}")
    mean_confidence, share = confidence(probs)
    score = {"n": len(images), "confidence": mean_confidence, "confident_share": share,
             "diversity_bits": class_diversity(probs)}
    if train_images is None and test_images is None:
        train, test_distances = _embedded_reference()
        return dict(score, **_memorisation(_flat(images), train, test_distances))
    return dict(score, **memorisation(images, train_images, test_images))


def format_score(score):
    """One line: 'score (256 images): confidence 0.981, >= 0.9: 95.3%, diversity 3.32/3.32 bits, ...'."""
    return (f"score ({score['n']} images): confidence {score['confidence']:.3f}, "
            f">= {CONFIDENT}: {100 * score['confident_share']:.1f}%, "
            f"diversity {score['diversity_bits']:.2f}/{onp.log2(NUM_CLASSES):.2f} bits, "
            f"nearest-train distance {score['nn_ratio']:.2f}x real test digits', "
            f"near copies {100 * score['near_copy_share']:.1f}%")


def short_score(score):
    """A figure caption: 'n 256: conf 0.98, >=0.9: 95%, div 3.32 bits' (format_score is the full line)."""
    return (f"n {score['n']}: conf {score['confidence']:.2f}, >={CONFIDENT}: "
            f"{100 * score['confident_share']:.0f}%, div {score['diversity_bits']:.2f} bits")
