"""Tests for minivq/metrics.py: the sample-quality score against hand-computed cases."""
import numpy as np
import pytest

from minivq import metrics
from minivq.data import load_mnist_embedded


def one_hot_rows(labels, k=10):
    return np.eye(k)[labels]


def test_confidence_hand_case():
    probs = np.zeros((3, 10))
    probs[0, :2] = [0.9, 0.1]    # top 0.9: counts as confident (>= 0.9)
    probs[1, :2] = [0.2, 0.8]    # top 0.8
    probs[2] = 0.1               # top 0.1 (uniform)
    mean, share = metrics.confidence(probs)
    assert mean == pytest.approx((0.9 + 0.8 + 0.1) / 3) and share == pytest.approx(1 / 3)


def test_class_diversity_hand_cases():
    assert metrics.class_diversity(one_hot_rows([3, 3, 3])) == 0.0                    # one class only
    assert metrics.class_diversity(one_hot_rows([0, 1])) == pytest.approx(1.0)        # two classes, half each
    assert metrics.class_diversity(one_hot_rows(np.arange(10))) == pytest.approx(3.321928094887362)  # log2 10
    # mean of the rows [0.5, 0.25, 0.25, 0...] and [0.5, 0.25, 0.25, 0...]: 0.5*1 + 2*0.25*2 = 1.5 bits
    rows = np.zeros((2, 10))
    rows[:, :3] = [0.5, 0.25, 0.25]
    assert metrics.class_diversity(rows) == pytest.approx(1.5)


def test_nearest_distances_against_a_loop(rng):
    x, reference = rng.random((7, 5)), rng.random((11, 5))
    expected = [min(np.sqrt(np.sum((a - b) ** 2)) for b in reference) for a in x]
    np.testing.assert_allclose(metrics.nearest_distances(x, reference, batch_size=3), expected, rtol=1e-10)


def constant_images(values):
    return np.ones((len(values), 28, 28, 1), np.float32) * np.asarray(values, np.float32)[:, None, None, None]


def test_memorisation_hand_case():
    # Constant images c1, c2 lie |c1 - c2| * sqrt(784) = |c1 - c2| * 28 apart.
    train = constant_images([0.0, 1.0])
    test = constant_images([0.25, 0.5])                      # nearest-train distances 7 and 14: mean 10.5
    samples = constant_images([0.1, 0.9, 0.0])               # 2.8, 2.8, 0 (a copy): mean 1.8667
    result = metrics.memorisation(samples, train, test)
    assert result["nn_distance"] == pytest.approx((2.8 + 2.8 + 0) / 3, rel=1e-5)
    assert result["nn_ratio"] == pytest.approx((5.6 / 3) / 10.5, rel=1e-5)
    assert result["near_copy_share"] == 1.0                 # all nearer than 7, the closest test image


@pytest.fixture(scope="module")
def embedded():
    return load_mnist_embedded()


def test_memorisation_flags_copied_training_images(embedded):
    copies = embedded.x_train[::40][:128]
    score = metrics.sample_score(copies)
    assert score["nn_distance"] < 1e-5 and score["nn_ratio"] < 1e-5 and score["near_copy_share"] == 1.0
    fresh = metrics.sample_score(embedded.x_test[:128])      # real digits the model never saw
    assert 0.8 < fresh["nn_ratio"] < 1.2 and fresh["near_copy_share"] < 0.05


def test_sample_score_with_given_probabilities_and_format(embedded):
    images = embedded.x_test[:4]
    probs = np.zeros((4, 10))
    probs[np.arange(4), [0, 1, 1, 2]] = [0.95, 0.9, 0.6, 0.5]
    probs[np.arange(4), [5, 5, 5, 5]] = [0.05, 0.1, 0.4, 0.5]
    score = metrics.sample_score(images, embedded.x_train[:50], embedded.x_test[4:20], probs=probs)
    assert score["n"] == 4
    assert score["confidence"] == pytest.approx((0.95 + 0.9 + 0.6 + 0.5) / 4)
    assert score["confident_share"] == 0.5
    mean = np.array([0.95, 1.5, 0.5, 0, 0, 1.05, 0, 0, 0, 0]) / 4
    assert score["diversity_bits"] == pytest.approx(-np.sum(mean[mean > 0] * np.log2(mean[mean > 0])))
    line = metrics.format_score(score)
    assert "\n" not in line and "confidence 0.738" in line and ">= 0.9: 50.0%" in line
    assert metrics.short_score(score) == (f"n 4: conf 0.74, >=0.9: 50%, "
                                          f"div {score['diversity_bits']:.2f} bits")   # the figure caption


def test_sample_score_rejects_bad_input(embedded):
    with pytest.raises(ValueError, match=r"\(B, 28, 28, 1\)"):
        metrics.sample_score(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.sample_score(np.full((2, 28, 28, 1), 2.0, np.float32))
    with pytest.raises(ValueError, match="both train_images and test_images"):
        metrics.sample_score(embedded.x_test[:2], train_images=embedded.x_train[:5])
