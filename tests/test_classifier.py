"""Tests for minivq/classifier.py: the shipped weights, the loss and its gradients."""
import numpy as np
import pytest
from autograd.test_util import check_grads

from minivq import classifier
from minivq.data import load_mnist_embedded
from minivq.tree import tree_cast


def test_shipped_classifier_accuracy_on_the_test_split():
    data = load_mnist_embedded()
    probs = classifier.classify(data.x_test)
    assert probs.shape == (999, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    accuracy = np.mean(np.argmax(probs, axis=1) == data.y_test)
    assert accuracy >= 0.97, accuracy


def test_loss_is_the_mean_negative_log_softmax(rng):
    params = classifier.init(rng)
    x, y = rng.random((3, 28, 28, 1)).astype(np.float32), np.array([4, 0, 9])
    scores = np.asarray(classifier.logits(params, x), np.float64)
    expected = np.mean([np.log(np.sum(np.exp(s))) - s[label] for s, label in zip(scores, y)])  # naive
    assert classifier.loss(params, x, y) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(classifier.probabilities(params, x, batch_size=2),
                               np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True), rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_loss_gradients(seed):
    rng = np.random.default_rng(seed)
    params = tree_cast(classifier.init(rng), np.float64)
    x, y = rng.random((2, 28, 28, 1)), rng.integers(0, 10, 2)
    check_grads(lambda p: classifier.loss(p, x, y), modes=["rev"], order=1)(params)


def test_damaged_weights_fail_with_the_file_name(monkeypatch):
    monkeypatch.setattr(classifier, "WEIGHTS_SHA256", "f" * 64)
    classifier.load_classifier.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"digit_classifier.npz is corrupt.*expected f{64}"):
            classifier.load_classifier()
    finally:
        classifier.load_classifier.cache_clear()
