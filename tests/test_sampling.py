"""Sampling: draws by hand, the cropped sampler against a full-recompute oracle, a trained toy
prior reproducing its patterns, and bad inputs."""
import math

import numpy as onp
import pytest
from autograd import value_and_grad

from minivq.optim import adam
from minivq.prior import build_prior
from minivq.sampling import sample_from_logits, sample_grids
from minivq.tree import tree_cast

TINY = dict(num_codes=5, channels=6, num_blocks=2, first_kernel=3, kernel=3)


class FixedUniforms:
    """Stands in for a Generator: `random(n)` returns the given numbers in order."""

    def __init__(self, values):
        self.values = list(values)

    def random(self, n):
        out, self.values = onp.array(self.values[:n]), self.values[n:]
        return out


def slow_sample(model, params, n, h, w, rng, temperature=1.0, top_k=None, labels=None, codebook=None,
                greedy=False):
    """Oracle: the full h x w forward pass at every cell, same draws in the same order."""
    grid = onp.zeros((n, h, w), onp.int64)
    for i in range(h):
        for j in range(w):
            inputs = grid if codebook is None else codebook[grid]
            logits = model.logits(params, inputs, labels)[:, i, j]
            grid[:, i, j] = sample_from_logits(logits, rng, temperature, top_k, greedy)
    return grid


# ---------------------------------------------------------------- one draw

def test_inverse_cdf_draws_by_hand():
    # p = [0.2, 0.3, 0.5]: cdf [0.2, 0.5, 1.0]; u = 0.1 -> 0, 0.2 -> 1, 0.45 -> 1, 0.5 -> 2, 0.99 -> 2
    logits = onp.log(onp.tile([0.2, 0.3, 0.5], (5, 1)))
    draws = sample_from_logits(logits, FixedUniforms([0.1, 0.2, 0.45, 0.5, 0.99]))
    onp.testing.assert_array_equal(draws, [0, 1, 1, 2, 2])
    # temperature 0.5 squares p: [0.04, 0.09, 0.25] / 0.38, cdf [0.105, 0.342, 1]
    draws = sample_from_logits(logits[:3], FixedUniforms([0.1, 0.11, 0.35]), temperature=0.5)
    onp.testing.assert_array_equal(draws, [0, 1, 2])
    # top_k=2 drops the 0.2: p = [0, 0.375, 0.625]; u = 0.0 -> 1, 0.37 -> 1, 0.38 -> 2
    draws = sample_from_logits(logits[:3], FixedUniforms([0.0, 0.37, 0.38]), top_k=2)
    onp.testing.assert_array_equal(draws, [1, 1, 2])


def test_draw_frequencies_follow_softmax(rng):
    logits = onp.array([1.0, 0.0, -1.0, 2.0])
    p = onp.exp(logits) / onp.exp(logits).sum()
    draws = sample_from_logits(onp.tile(logits, (40000, 1)), rng)
    freq = onp.bincount(draws, minlength=4) / 40000
    onp.testing.assert_allclose(freq, p, atol=4 * onp.sqrt(p * (1 - p) / 40000).max())


def test_greedy_and_small_temperature_take_the_argmax(rng):
    logits = rng.normal(size=(50, 7))
    onp.testing.assert_array_equal(sample_from_logits(logits, rng, greedy=True), logits.argmax(1))
    onp.testing.assert_array_equal(sample_from_logits(logits, rng, temperature=1e-6), logits.argmax(1))
    onp.testing.assert_array_equal(sample_from_logits(logits, rng, top_k=1), logits.argmax(1))


@pytest.mark.parametrize("kwargs", [dict(temperature=0.0), dict(temperature=-1.0),
                                    dict(temperature=float("nan")), dict(top_k=0), dict(top_k=1.5)])
def test_bad_sampling_options_raise(rng, kwargs):
    with pytest.raises(ValueError):
        sample_from_logits(onp.zeros((2, 3)), rng, **kwargs)


# ---------------------------------------------------------------- whole grids

@pytest.mark.parametrize("overrides, labels, use_codebook", [
    (dict(), None, False),
    (dict(input_mode="codes", code_dim=3), None, True),
    (dict(gated=True, num_classes=3), onp.array([0, 2, 1, 1]), False),
])
def test_cropped_sampler_equals_full_recompute(rng, overrides, labels, use_codebook):
    model = build_prior(dict(TINY, **overrides))
    params = model.init(rng)
    codebook = rng.normal(size=(5, 3)).astype(onp.float32) if use_codebook else None
    for kwargs in (dict(), dict(temperature=0.7, top_k=3), dict(greedy=True)):
        fast = sample_grids(model, params, 4, 4, 5, onp.random.default_rng(7), labels=labels,
                            codebook=codebook, **kwargs)
        slow = slow_sample(model, params, 4, 4, 5, onp.random.default_rng(7), labels=labels, codebook=codebook,
                           **kwargs)
        onp.testing.assert_array_equal(fast, slow)
        assert fast.dtype == onp.int64 and fast.shape == (4, 4, 5)


def test_sampling_is_reproducible(rng):
    model = build_prior(TINY)
    params = model.init(rng)
    first = sample_grids(model, params, 6, 3, 3, onp.random.default_rng(1))
    onp.testing.assert_array_equal(first, sample_grids(model, params, 6, 3, 3, onp.random.default_rng(1)))
    assert not onp.array_equal(first, sample_grids(model, params, 6, 3, 3, onp.random.default_rng(2)))


PATTERNS = onp.array([[[(p + i + 2 * j) % 4 for j in range(4)] for i in range(4)] for p in range(3)])


def train_toy(model, labels=None, steps=150, seed=0):
    """A few Adam steps on the 3 fixed 4x4 patterns (4 copies each); every cell tells them apart."""
    rng = onp.random.default_rng(seed)
    params = tree_cast(model.init(rng), onp.float64)
    data = onp.repeat(PATTERNS, 4, axis=0)                                  # (12, 4, 4)
    batch_labels = None if labels is None else onp.repeat(labels, 4)
    opt_init, opt_update = adam(lr=1e-2)
    state = opt_init(params)
    loss_and_grad = value_and_grad(lambda p: model.loss(p, data, labels=batch_labels))
    for _ in range(steps):
        loss, grads = loss_and_grad(params)
        params, state = opt_update(params, grads, state)
    return params, float(loss)


def test_trained_toy_prior_reproduces_its_patterns():
    model = build_prior(dict(num_codes=4, channels=16, num_blocks=2, first_kernel=3, kernel=3))
    params, loss = train_toy(model)
    # the first cell carries log 3 nats (3 equally likely patterns), the other 15 nothing
    assert loss == pytest.approx(math.log(3) / 16, abs=0.02)
    samples = sample_grids(model, params, 30, 4, 4, onp.random.default_rng(0), temperature=0.5)
    matches = (samples[:, None] == PATTERNS[None]).all(axis=(2, 3))          # (30, 3)
    assert matches.any(axis=1).all() and matches.any(axis=0).all()           # all valid, all 3 seen
    greedy = sample_grids(model, params, 2, 4, 4, onp.random.default_rng(0), greedy=True)
    onp.testing.assert_array_equal(greedy, slow_sample(model, params, 2, 4, 4, None, greedy=True))
    assert (greedy[0] == PATTERNS).all(axis=(1, 2)).any()
    cold = sample_grids(model, params, 2, 4, 4, onp.random.default_rng(3), temperature=1e-6)
    onp.testing.assert_array_equal(cold, greedy)                             # T -> 0 is the argmax path
    # completion: fixing the first row of pattern 2 gives pattern 2
    completed = sample_grids(model, params, 1, 4, 4, onp.random.default_rng(0), temperature=0.5,
                             top_rows=PATTERNS[2:3, :1])
    onp.testing.assert_array_equal(completed[0], PATTERNS[2])


def test_trained_conditional_toy_prior_follows_labels():
    model = build_prior(dict(num_codes=4, channels=8, num_blocks=1, first_kernel=3, kernel=3, gated=True,
                             num_classes=3))
    params, loss = train_toy(model, labels=onp.arange(3))
    assert loss < 0.02                      # the label now gives away the first cell too
    labels = onp.array([0, 1, 2, 2, 1, 0])
    samples = sample_grids(model, params, 6, 4, 4, onp.random.default_rng(0), labels=labels)
    onp.testing.assert_array_equal(samples, PATTERNS[labels])


def test_bad_grid_requests_raise(rng):
    model = build_prior(TINY)
    params = model.init(rng)

    def sample(**overrides):
        kwargs = dict(prior=model, params=params, n=2, h=3, w=3, rng=onp.random.default_rng(0))
        return sample_grids(**dict(kwargs, **overrides))

    cases = [(dict(temperature=0.0), "temperature"), (dict(h=0), "h must"), (dict(n=1.5), "n must"),
             (dict(labels=onp.array([0, 1])), "unconditional"),
             (dict(codebook=onp.zeros((5, 3))), "codebook"),
             (dict(rng=0), "Generator"),
             (dict(top_rows=onp.full((2, 1, 3), 5)), r"\[0, 5\)"),
             (dict(top_rows=onp.zeros((2, 3, 3), int)), "r < 3"),
             (dict(top_rows=onp.zeros((2, 1, 4), int)), r"\(2, r, 3\)")]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            sample(**kwargs)
    codes_model = build_prior(dict(TINY, input_mode="codes", code_dim=3))
    codes_params = codes_model.init(rng)
    with pytest.raises(ValueError, match=r"\(5, 3\)"):
        sample_grids(codes_model, codes_params, 2, 3, 3, rng)
    with pytest.raises(ValueError, match=r"\(5, 3\)"):
        sample_grids(codes_model, codes_params, 2, 3, 3, rng, codebook=onp.zeros((4, 3)))
    gated = build_prior(dict(TINY, gated=True, num_classes=3))
    with pytest.raises(ValueError, match="pass labels"):
        sample_grids(gated, gated.init(rng), 2, 3, 3, rng)
