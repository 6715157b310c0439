"""The whole model's likelihood: normal tails, discretised Gaussian, Bernoulli link, bits per dim.

Truth: math.erf / math.erfc, hand-computed values, a brute numerical integration of the
density over each bin, grid searches for the fitted scale, finite differences for the link,
and the exact marginal likelihood of a tiny latent model by summing over every z.
The module is evaluation only (never differentiated), so there is no gradient check.
"""
import math

import numpy as onp
import pytest

from minivq.likelihood import (bernoulli_log2, binarize, bits_per_dim, discretized_gaussian_log2,
                               fit_bernoulli_link, fit_gaussian_scale, format_bits, gaussian_bits_per_dim,
                               log_normal_mass, log_normal_tail, vqvae_bits_per_dim)

BIN = 1.0 / 255           # width of one 8-bit level


def normal_cdf(z):
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def brute_bin_mass(lo, hi, mean, scale, points=20001):
    """The N(mean, scale^2) density integrated over [lo, hi] by Simpson's rule (infinite ends cut at 40 sigma)."""
    lo, hi = max(lo, mean - 40 * scale), min(hi, mean + 40 * scale)
    if hi <= lo:
        return 0.0
    t = onp.linspace(lo, hi, points)
    density = onp.exp(-0.5 * ((t - mean) / scale) ** 2) / (scale * math.sqrt(2 * math.pi))
    weights = onp.ones(points)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    return float(onp.sum(weights * density) * (t[1] - t[0]) / 3.0)


def test_log_normal_tail_against_erfc_and_the_asymptotic_series():
    z = onp.array([-30.0, -6.0, -2.5, -1.0, -0.3, 0.0, 0.3, 1.0, 2.5, 6.0, 20.0, 37.0])
    expected = [math.log(0.5 * math.erfc(v / math.sqrt(2.0))) for v in z]
    onp.testing.assert_allclose(log_normal_tail(z), expected, rtol=2e-7, atol=1e-15)
    # Beyond erfc's float range: log Q(z) = -z^2/2 - log(z sqrt(2 pi)) + log(1 - 1/z^2 + 3/z^4 - ...).
    far = onp.array([60.0, 200.0])
    series = -far ** 2 / 2 - onp.log(far * math.sqrt(2 * math.pi)) + onp.log1p(-1 / far ** 2 + 3 / far ** 4)
    onp.testing.assert_allclose(log_normal_tail(far), series, rtol=1e-9)
    assert log_normal_tail(onp.inf) == -onp.inf and log_normal_tail(-onp.inf) == 0.0


@pytest.mark.parametrize("lo, hi", [(-onp.inf, -3.0), (-2.0, -1.9), (-0.1, 0.2), (-onp.inf, 0.5),
                                    (1.0, 1.05), (4.0, onp.inf), (-onp.inf, onp.inf)])
def test_log_normal_mass_is_the_difference_of_cdfs(lo, hi):
    expected = (1.0 if hi == onp.inf else normal_cdf(hi)) - (0.0 if lo == -onp.inf else normal_cdf(lo))
    assert math.isclose(math.exp(float(log_normal_mass(lo, hi))), expected, rel_tol=1e-6)


def test_two_pixel_image_by_hand():
    """Means on the levels, sigma = half a bin: the end level 0 keeps Phi(1) = 0.841345 (the
    whole lower tail), an inner level erf(1/sqrt 2) = 0.682689 (-1 to +1 sigma)."""
    x = onp.array([0.0, 51 * BIN])
    log2p = discretized_gaussian_log2(x, x, 0.5 * BIN)
    onp.testing.assert_allclose(log2p, [-0.24923102029, -0.55069854860], rtol=1e-6)
    assert math.isclose(gaussian_bits_per_dim(x, x, 0.5 * BIN), (0.24923102029 + 0.55069854860) / 2,
                        rel_tol=1e-6)


def test_closed_form_with_erf_off_the_levels():
    x, mean, scale = onp.array([[0.0, 128 * BIN], [1.0, 3 * BIN]]), onp.array([[0.01, 0.5], [0.97, 0.0]]), 0.05
    expected = onp.array([
        [normal_cdf((0.5 * BIN - 0.01) / scale),
         normal_cdf((128.5 * BIN - 0.5) / scale) - normal_cdf((127.5 * BIN - 0.5) / scale)],
        [1 - normal_cdf((254.5 * BIN - 0.97) / scale),
         normal_cdf(3.5 * BIN / scale) - normal_cdf(2.5 * BIN / scale)]])
    onp.testing.assert_allclose(discretized_gaussian_log2(x, mean, scale), onp.log2(expected), rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_brute_integration_over_each_bin(seed):
    rng = onp.random.default_rng(seed)
    k = onp.concatenate([[0, 255], rng.integers(0, 256, 10)])
    mean, scale = rng.uniform(0, 1, k.shape), 10 ** rng.uniform(-2.5, -0.5)
    lo = onp.where(k == 0, -onp.inf, (k - 0.5) * BIN)
    hi = onp.where(k == 255, onp.inf, (k + 0.5) * BIN)
    brute = [brute_bin_mass(a, b, m, scale) for a, b, m in zip(lo, hi, mean)]
    got = onp.exp2(discretized_gaussian_log2(k * BIN, mean, scale))
    onp.testing.assert_allclose(got, brute, rtol=1e-5, atol=1e-300)


@pytest.mark.parametrize("mean, scale", [(0.0, 1e-4), (0.5, 0.003), (0.999, 0.05), (0.3, 1.0), (1.7, 0.1)])
def test_the_256_levels_sum_to_one(mean, scale):
    levels = onp.arange(256) * BIN
    assert math.isclose(onp.exp2(discretized_gaussian_log2(levels, mean, scale)).sum(), 1.0, rel_tol=1e-6)


def test_far_tails_stay_finite():
    log2p = discretized_gaussian_log2(onp.array([0.0, 1.0, 0.5]), onp.array([1.0, 0.0, 0.0]), 1e-3)
    assert onp.all(onp.isfinite(log2p)) and onp.all(log2p < -1e5)
    # x = 0 under mean 1: the whole lower tail, log2 Q((1 - 0.5/255) / sigma)
    z = (1.0 - 0.5 * BIN) / 1e-3
    series = (-z ** 2 / 2 - math.log(z * math.sqrt(2 * math.pi))) / math.log(2.0)
    assert math.isclose(log2p[0], series, rel_tol=1e-9)


def test_fit_gaussian_scale_is_the_maximum_likelihood_one(rng):
    mean = onp.clip(rng.uniform(-0.1, 1.1, 5000), 0, 1)
    x = onp.clip(onp.rint((mean + rng.normal(0, 0.04, mean.shape)) * 255) / 255, 0, 1)
    scale = fit_gaussian_scale(x, mean)
    grid = onp.exp(onp.linspace(math.log(0.02), math.log(0.08), 601))        # 0.23% apart
    brute = grid[onp.argmin([gaussian_bits_per_dim(x, mean, s) for s in grid])]
    assert abs(scale / brute - 1) < 3e-3
    best = gaussian_bits_per_dim(x, mean, scale)
    assert best <= min(gaussian_bits_per_dim(x, mean, scale * 1.02), gaussian_bits_per_dim(x, mean, scale / 1.02))


def test_fitted_scale_matches_the_continuous_mle_far_from_the_ends(rng):
    """sigma >> one bin and no pixel near 0 or 1: the discretised MLE is the root mean square residual."""
    mean = rng.uniform(0.3, 0.7, 20000)
    x = onp.rint((mean + rng.normal(0, 0.05, mean.shape)) * 255) / 255
    rms = math.sqrt(onp.mean((x - mean) ** 2) - BIN ** 2 / 12)                # minus rounding's variance
    assert abs(fit_gaussian_scale(x, mean) / rms - 1) < 5e-3


def test_bernoulli_by_hand():
    x = onp.array([1, 0, 1, 0])
    got = bernoulli_log2(x, onp.array([0.0, 0.0, 1.0, 1.0]), (2.0, -1.0))    # logits -1, -1, 1, 1
    onp.testing.assert_allclose(got, [-1.89463612397, -0.45194108308, -0.45194108308, -1.89463612397],
                                rtol=1e-9)
    assert onp.all(binarize(onp.array([0.0, 0.49, 0.5, 1.0])) == [0, 0, 1, 1])


def test_fit_bernoulli_link_recovers_the_link_and_zeroes_the_gradient(rng):
    mean = rng.uniform(0, 1, 40000)
    x = (rng.random(mean.shape) < 1 / (1 + onp.exp(-(6.0 * mean - 3.5)))).astype(onp.int64)
    a, b = fit_bernoulli_link(mean, x)
    assert abs(a - 6.0) < 0.3 and abs(b + 3.5) < 0.2

    def nll(a, b):
        return -onp.sum(bernoulli_log2(x, mean, (a, b)))

    eps = 1e-5                                                                # central differences
    assert abs(nll(a + eps, b) - nll(a - eps, b)) / (2 * eps) < 1e-2
    assert abs(nll(a, b + eps) - nll(a, b - eps)) / (2 * eps) < 1e-2


def test_bits_per_dim_adds_the_prior_per_pixel():
    result = bits_per_dim(3.0, (7, 7), (28, 28, 1), 0.25)
    assert result == {"prior": 3.0 * 49 / 784, "reconstruction": 0.25, "total": 0.1875 + 0.25}
    assert "3.00 bits/code = 0.438 bits/dim (prior 0.188 + reconstruction 0.250" in format_bits(
        3.0, dict(result, likelihood="gaussian", scale=0.05))


def test_vqvae_bits_per_dim_bounds_the_exact_marginal(rng):
    """A tiny latent model: one code z in {0, 1} (1x1 grid, uniform prior: 1 bit/code), two-pixel
    images, decoder means DECODED[z]. The encoder's z gives -log2 p(z) - log2 p(x|z), computed
    here with erf; summing p(z) p(x|z) over both z gives the exact -log2 p(x), which is lower
    (the two codes' means are close, so the other code adds visible mass)."""
    decoded = onp.array([[0.30, 0.50], [0.33, 0.46]])                        # (K=2, 2 pixels), close

    def decode(indices):                                                       # (N, 1, 1) -> (N, 1, 2, 1)
        return decoded[indices[:, 0, 0]][:, None, :, None]

    z_train = rng.integers(0, 2, 400)
    x_train = onp.clip(onp.rint((decoded[z_train] + rng.normal(0, 0.05, (400, 2))) * 255), 0, 255) / 255
    x_test, z_test = onp.array([[77, 128], [84, 117]]) / 255, onp.array([0, 1])
    result = vqvae_bits_per_dim(decode, 1.0, (x_train[:, None, :, None], z_train[:, None, None]),
                                (x_test[:, None, :, None], z_test[:, None, None]))
    scale = result["scale"]
    assert 0.04 < scale < 0.06

    def pixel_p(level, mean):
        return normal_cdf(((level + 0.5) * BIN - mean) / scale) - normal_cdf(((level - 0.5) * BIN - mean) / scale)

    def image_p(x, z):
        return math.prod(pixel_p(round(v * 255), m) for v, m in zip(x, decoded[z]))

    bound = onp.mean([(1.0 - math.log2(image_p(x, z))) / 2 for x, z in zip(x_test, z_test)])
    exact = onp.mean([-math.log2(0.5 * image_p(x, 0) + 0.5 * image_p(x, 1)) / 2 for x in x_test])
    assert math.isclose(result["total"], bound, rel_tol=1e-6)
    assert result["prior"] == 0.5 and result["total"] > exact + 0.05          # the other z adds mass


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="scale must be a positive"):
        discretized_gaussian_log2(onp.zeros(2), onp.zeros(2), 0.0)
    with pytest.raises(ValueError, match="binary pixels"):
        bernoulli_log2(onp.array([0.5, 1.0]), onp.zeros(2), (1.0, 0.0))
    with pytest.raises(ValueError, match="no finite fit"):
        fit_bernoulli_link(onp.array([0.1, 0.2, 0.8, 0.9]), onp.array([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="likelihood must be"):
        vqvae_bits_per_dim(lambda i: i, 1.0, (onp.zeros(1), onp.zeros(1)), (onp.zeros(1), onp.zeros(1)),
                           likelihood="logistic")
    with pytest.raises(ValueError, match="must pair up"):
        vqvae_bits_per_dim(lambda i: i, 1.0, (onp.zeros((2, 1, 1, 1)), onp.zeros((1, 1, 1), int)),
                           (onp.zeros((1, 1, 1, 1)), onp.zeros((1, 1, 1), int)))
