"""The whole model's likelihood in bits per dimension: prior over codes + reconstruction.

A VQ-VAE with a prior p(z) over its code grid and a decoder likelihood p(x | z) is the
latent-variable model p(x) = sum_z p(z) p(x | z). For any one grid z, p(x) >= p(z) p(x | z),
so the encoder's grid gives an upper bound on the negative log-likelihood (the ELBO with a
one-hot posterior, whose entropy is 0; paper Sec. 3.1, 4.1):

    -log2 p(x) <= -log2 p(z) - log2 p(x | z)
    bits/dim = (h w * prior bits/code + sum over pixels of -log2 p(x | z)) / (H W C)

The paper reports this on CIFAR10 (Sec. 4.1, 4.67 bits/dim) so that the VQ-VAE can stand
next to pixel-level models. Two stated likelihoods p(x | z), evaluation only (plain NumPy,
no gradient: nothing here is trained by gradient descent):

- 8-bit data, `discretized_gaussian_log2`: each pixel is one of 256 levels k/255; the
  decoder output clipped to [0, 1] is the mean of a Gaussian with ONE scale sigma for all
  pixels, fitted by maximum likelihood on the training set (`fit_gaussian_scale`); level k
  gets the Gaussian's mass over its bin [k - 1/2, k + 1/2] / 255, and the end levels 0 and
  255 the whole tails below 0.5/255 and above 254.5/255 (as PixelCNN++ does). The decoder
  output is the mean as it is, NOT clipped to [0, 1]: a mean below 0 puts most of the mass
  on level 0, where most digit pixels are (clipped, level 0 could never get more than 1/2). A Gaussian
  because the VQ-VAE is trained with MSE, the negative log of exactly such a Gaussian up to
  scale and a constant; one fitted scale because the MSE loss assumes one.
- binarised data, `bernoulli_log2`: pixel x in {0, 1} ~ Bernoulli(p) with
  p = sigmoid(a * mean + b), the two numbers fitted by maximum likelihood (logistic
  regression) on the training set (`fit_bernoulli_link`): an MSE-trained decoder outputs a
  grey level, not a probability, and this is the calibration that costs the fewest bits.

The normal tail uses erfc's Chebyshev fit (Numerical Recipes, Sec. 6.2: fractional error
< 1.2e-7 everywhere), in log space so that no tail underflows, and vectorised (NumPy has
no erf; minivq does not depend on SciPy). A bin's mass is a difference of two tails, so its
relative error is larger, ~1e-6 for a bin a tenth of sigma wide (tests allow 1e-5): far
below the third decimal of any bits/dim reported.
"""
import math

import numpy as onp

LEVELS = 256                  # 8-bit pixels: levels k / 255, k = 0..255
# erfc(u) ~ t exp(-u^2 + poly(t)), t = 1 / (1 + u / 2), u >= 0: Numerical Recipes' erfcc
# coefficients, lowest power first; fractional error < 1.2e-7 for every u >= 0.
ERFC_COEFFS = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
               -1.13520398, 1.48851587, -0.82215223, 0.17087277)
SCALE_RANGE = (1e-4, 1.0)     # sigma searched between (pixels span [0, 1]; a bin is 0.0039 wide)
SCALE_RTOL = 1e-3             # golden-section search stops at a 0.1% bracket (bits change ~1e-6)
# Training images the scale and link are fitted on: 256 digits are 200k pixels, plenty for
# one or two numbers, and keep the fit near a second (every train-prior runs it).
FIT_IMAGES = 256


def log_normal_tail(z):
    """log P(N(0, 1) > z), elementwise, finite for every finite z; -inf at +inf, 0 at -inf."""
    z = onp.asarray(z, onp.float64)
    u = onp.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.5 * u)
    poly = onp.zeros_like(t)
    for c in reversed(ERFC_COEFFS):                                  # Horner
        poly = poly * t + c
    with onp.errstate(divide="ignore", invalid="ignore"):
        upper = onp.log(t) - u * u + poly - math.log(2.0)            # log Q(|z|) = log erfc(u) / 2
        lower = onp.log1p(-onp.exp(upper))                           # log Q(-|z|) = log(1 - Q(|z|))
    return onp.where(z >= 0, upper, lower)


def log_normal_mass(lo, hi):
    """log P(lo < N(0, 1) <= hi) for lo < hi (each may be infinite), elementwise, without cancellation.

    A bin above 0 is Q(lo) - Q(hi), below 0 (by symmetry) Q(-hi) - Q(-lo), each as
    log Q(lo) + log(1 - exp(log Q(hi) - log Q(lo))); a bin around 0 is 1 - Q(hi) - Q(-lo).
    """
    lo, hi = onp.broadcast_arrays(onp.asarray(lo, onp.float64), onp.asarray(hi, onp.float64))
    flip = hi <= 0                                                   # mirror bins below 0 above it
    a, b = onp.where(flip, -hi, lo), onp.where(flip, -lo, hi)        # the bin [a, b]
    log_qa, log_qb = log_normal_tail(a), log_normal_tail(b)
    with onp.errstate(divide="ignore", invalid="ignore", over="ignore"):
        one_side = log_qa + onp.log(-onp.expm1(log_qb - log_qa))
        around = onp.log1p(-(onp.exp(log_qb) + onp.exp(log_normal_tail(-a))))
    return onp.where(a >= 0, one_side, around)


def levels(x):
    """The 8-bit level k = round(255 x) of every pixel, int64, clipped to [0, 255]."""
    return onp.clip(onp.rint(onp.asarray(x, onp.float64) * (LEVELS - 1)), 0, LEVELS - 1).astype(onp.int64)


def discretized_gaussian_log2(x, mean, scale):
    """log2 p(x | mean) per pixel: the N(mean, scale^2) mass of each pixel's 8-bit bin.

    x: pixels in [0, 1], read as levels k = round(255 x); mean: same shape (or broadcast),
    the decoder output, any finite values (not clipped); scale: sigma > 0. Bin of level k:
    [(k - 1/2) / 255, (k + 1/2) / 255], widened to (-inf, ...] for k = 0 and [..., inf)
    for k = 255, so the 256 masses sum to 1.
    """
    if not (onp.ndim(scale) == 0 and scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    k = levels(x)
    mean = onp.asarray(mean, onp.float64)
    half = 0.5 / (LEVELS - 1)
    lo = onp.where(k == 0, -onp.inf, k / (LEVELS - 1) - half)
    hi = onp.where(k == LEVELS - 1, onp.inf, k / (LEVELS - 1) + half)
    return log_normal_mass((lo - mean) / scale, (hi - mean) / scale) / math.log(2.0)


def gaussian_bits_per_dim(x, mean, scale):
    """Mean over all pixel dimensions of -log2 p(x | mean) under the discretised Gaussian."""
    return float(-onp.mean(discretized_gaussian_log2(x, mean, scale)))


def fit_gaussian_scale(x, mean):
    """The maximum-likelihood sigma of the discretised Gaussian for pixels x around means `mean`.

    Golden-section search on log sigma over SCALE_RANGE down to a relative bracket of
    SCALE_RTOL (the bits are smooth and, in practice, unimodal in log sigma; tests compare
    with a brute grid). Pass training pixels: the scale is part of the model.
    """
    def bits(log_scale):
        return gaussian_bits_per_dim(x, mean, math.exp(log_scale))

    lo, hi = math.log(SCALE_RANGE[0]), math.log(SCALE_RANGE[1])
    ratio = (math.sqrt(5.0) - 1.0) / 2.0                             # the golden section, 0.618
    c, d = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fc, fd = bits(c), bits(d)
    while hi - lo > SCALE_RTOL:
        if fc <= fd:
            hi, d, fd = d, c, fc
            c = hi - ratio * (hi - lo)
            fc = bits(c)
        else:
            lo, c, fc = c, d, fd
            d = lo + ratio * (hi - lo)
            fd = bits(d)
    return math.exp((lo + hi) / 2.0)


def binarize(x, threshold=0.5):
    """Pixels in [0, 1] -> int64 {0, 1}: 1 where x >= threshold."""
    return (onp.asarray(x) >= threshold).astype(onp.int64)


def bernoulli_log2(x, mean, link):
    """log2 p(x | mean) per pixel for binary x in {0, 1}: Bernoulli(sigmoid(a * mean + b)).

    link: (a, b) from `fit_bernoulli_link`; (1, 0) would read the logit as the mean itself.
    """
    x = onp.asarray(x)
    if x.dtype.kind not in "iub" or not onp.isin(x, (0, 1)).all():
        raise ValueError("x must hold binary pixels 0 or 1 (see binarize), got other values")
    logit = link[0] * onp.asarray(mean, onp.float64) + link[1]
    # log sigmoid(s) = -log(1 + exp(-s)), log(1 - sigmoid(s)) = -log(1 + exp(s)): no overflow.
    return -onp.logaddexp(0.0, onp.where(x == 1, -logit, logit)) / math.log(2.0)


def fit_bernoulli_link(mean, x, iterations=50):
    """(a, b) maximising sum log Bernoulli(x | sigmoid(a * mean + b)): logistic regression by Newton.

    mean, x: training decoder outputs and binary pixels, any equal shapes. ValueError if the
    pixels are all one value or perfectly separated by the means (no finite optimum).
    """
    features = onp.stack([onp.asarray(mean, onp.float64).ravel(), onp.ones(onp.size(mean))], axis=1)  # (n, 2)
    y = onp.asarray(x, onp.float64).ravel()                                                         # (n,)
    ones, zeros = features[y == 1, 0], features[y == 0, 0]
    if not len(ones) or not len(zeros) or ones.min() > zeros.max() or ones.max() < zeros.min():
        raise ValueError("the Bernoulli link has no finite fit: the binary pixels are all alike or "
                         "perfectly separated by the decoder's means")
    w = onp.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + onp.exp(-(features @ w)))
        gradient = features.T @ (p - y)                                            # (2,)
        hessian = features.T @ (features * (p * (1.0 - p))[:, None])               # (2, 2)
        step = onp.linalg.solve(hessian, gradient)
        w = w - step
        if onp.max(onp.abs(step)) < 1e-10:
            break
    if not onp.all(onp.isfinite(w)):
        raise ValueError(f"the Bernoulli link's Newton iterations diverged (got {w})")
    return float(w[0]), float(w[1])


def bits_per_dim(prior_bits_per_code, grid_shape, image_shape, recon_bits_per_dim):
    """The whole model's bound: {'prior', 'reconstruction', 'total'} in bits per pixel dimension.

    prior_bits_per_code: mean -log2 p(z) per code; grid_shape (h, w); image_shape (H, W, C);
    recon_bits_per_dim: mean -log2 p(x | z) per pixel dimension.
    """
    prior = prior_bits_per_code * math.prod(grid_shape) / math.prod(image_shape)
    return {"prior": prior, "reconstruction": recon_bits_per_dim, "total": prior + recon_bits_per_dim}


def decoded(decode_indices, indices, batch_size=500):
    """decode_indices over (N, h, w) grids in batches (bounds the decoder's memory): (N, H, W, C)."""
    return onp.concatenate([decode_indices(indices[i:i + batch_size]) for i in range(0, len(indices), batch_size)])


def vqvae_bits_per_dim(decode_indices, prior_bits_per_code, train, test, likelihood="gaussian"):
    """The VQ-VAE + prior's bits/dim on the test images, its likelihood fitted on the training images.

    decode_indices(indices (N, h, w)) -> decoder outputs (N, H, W, C), unclipped (the
    Gaussian's means; the Bernoulli link reads them as they are); train, test: (images, indices)
    pairs, the indices the encoder's grids of those images; prior_bits_per_code: the prior's
    held-out bits per code on the test grids. likelihood 'gaussian' (8-bit levels, sigma
    fitted) or 'bernoulli' (pixels binarised at 0.5, link fitted); both on FIT_IMAGES
    training images spread evenly over the set. Returns bits_per_dim's dict plus 'likelihood' and its
    fitted 'scale' or 'link'.
    """
    if likelihood not in ("gaussian", "bernoulli"):
        raise ValueError(f"likelihood must be 'gaussian' or 'bernoulli', got {likelihood!r}")
    (x_train, i_train), (x_test, i_test) = train, test
    if len(x_train) != len(i_train) or len(x_test) != len(i_test):
        raise ValueError(f"images and code grids must pair up: train {len(x_train)} vs {len(i_train)}, "
                         f"test {len(x_test)} vs {len(i_test)}")
    fit = onp.unique(onp.linspace(0, len(x_train) - 1, FIT_IMAGES).round().astype(int))   # spread over train
    x_fit, mean_fit = x_train[fit], decoded(decode_indices, i_train[fit])
    mean_test = decoded(decode_indices, i_test)
    if likelihood == "gaussian":
        scale = fit_gaussian_scale(x_fit, mean_fit)
        recon, fitted = gaussian_bits_per_dim(x_test, mean_test, scale), {"scale": scale}
    else:
        link = fit_bernoulli_link(mean_fit, binarize(x_fit))
        recon = float(-onp.mean(bernoulli_log2(binarize(x_test), mean_test, link)))
        fitted = {"link": link}
    result = bits_per_dim(prior_bits_per_code, onp.shape(i_test)[1:], onp.shape(x_test)[1:], recon)
    return dict(result, likelihood=likelihood, **fitted)


def format_bits(prior_bits_per_code, result):
    """One line: 'PixelCNN 3.52 bits/code = 1.05 bits/dim (prior 0.22 + reconstruction 0.83, ...)'."""
    how = (f"discretised Gaussian, sigma {result['scale']:.4f} fitted on train"
           if result["likelihood"] == "gaussian" else
           "Bernoulli on binarised pixels, link fitted on train")
    return (f"PixelCNN {prior_bits_per_code:.2f} bits/code = {result['total']:.3f} bits/dim "
            f"(prior {result['prior']:.3f} + reconstruction {result['reconstruction']:.3f}, {how})")
