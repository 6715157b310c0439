"""Demo 6: a tour of the gradient checks, from the conv primitive to the straight-through estimator.

Every gradient minivq relies on is compared with finite differences, and every gradient
that must NOT flow is shown to be exactly zero:

1. conv2d and conv_transpose2d: the hand-written VJPs against central differences along a
   random direction (float64), then autograd's check_grads.
2. Layers through minivq.testing.check_layer_grads, the one-liner for any new layer.
3. The quantizer (paper Eq. 3): codebook_loss trains only the codebook, commitment_loss
   only the encoder (the other gradient is exactly 0); z_q's straight-through gradient is the
   identity, although its true derivative (a finite difference) is 0.
4. The VQ-VAE's encoder: its gradient norm from the reconstruction loss with the
   straight-through estimator, and without it (decoding codebook[argmin] directly): exactly 0.
5. PixelCNN causality: the logits at one cell have zero gradient with respect to that cell
   and every later one; the plain PixelCNN also misses a blind spot up and to the right,
   the gated one does not.

    python demos/06_gradient_tour.py              # seconds; no training
    python demos/06_gradient_tour.py --quick

Writes to --out (default out/demo06/):
    receptive_fields.png   input cells whose gradient reaches the logits of the centre cell
                           (red): white = nonzero, black = zero; plain | gated PixelCNN
"""
import argparse
import os
import sys

import autograd.numpy as np
import numpy as onp
from autograd import grad
from autograd.test_util import check_grads

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # run from a checkout

from minivq.autoencoder import mse                               # noqa: E402
from minivq import conv2d, conv_transpose2d                      # noqa: E402
from minivq.data import load_mnist_embedded                      # noqa: E402
from minivq.layers import Conv2d, ConvTranspose2d, Dense, Relu, Residual   # noqa: E402
from minivq.pixelcnn import MaskedConv2d, causal_mask             # noqa: E402
from minivq.plots import sample_comparison                       # noqa: E402
from minivq.prior import build_prior, make_config                # noqa: E402
from minivq.quantize import quantize                             # noqa: E402
from minivq.testing import check_layer_grads                     # noqa: E402
from minivq.tree import tree_leaves                              # noqa: E402
from minivq.vqvae import build_vqvae                             # noqa: E402


def directional_gap(f, x, rng, eps=1e-6):
    """(VJP . v, finite difference along v, relative gap) for s(x) = <u, f(x)>, u and v random."""
    u = rng.standard_normal(onp.shape(f(x)))                      # a random output weighting
    v = rng.standard_normal(onp.shape(x))                         # a random input direction

    def s(x_):
        return np.sum(u * f(x_))

    analytic = float(onp.sum(grad(s)(x) * v))
    numeric = float((s(x + eps * v) - s(x - eps * v)) / (2 * eps))
    return analytic, numeric, abs(analytic - numeric) / abs(numeric)


def tree_norm(tree):
    """Euclidean norm of all leaves of a parameter tree."""
    return float(onp.sqrt(sum(onp.sum(onp.asarray(leaf, onp.float64) ** 2) for leaf in tree_leaves(tree))))


def reach_map(prior, params, size, rng):
    """(size, size) bool map of the input cells whose gradient reaches the logits at the centre cell."""
    centre = size // 2
    channels = params["input"]["table"].shape[1]
    e = rng.standard_normal((1, size, size, channels))            # embedded input (1, H, W, C)

    def centre_logits(e_):
        return np.sum(prior.logits_from_embedded(params, e_)[0, centre, centre])

    return onp.any(grad(centre_logits)(e)[0] != 0.0, axis=-1)     # (H, W)


def reach_image(reached):
    """RGB picture of a reach map: white = reached, black = not, red = centre, grey frame."""
    size = len(reached)
    image = onp.repeat(reached[:, :, None].astype(float), 3, axis=2)   # (H, W) -> (H, W, 3)
    image[size // 2, size // 2] = (1.0, 0.0, 0.0)
    return onp.pad(image, ((1, 1), (1, 1), (0, 0)), mode="constant", constant_values=0.5)


def main(batch=16, seed=0, out="out/demo06", quick=False):
    """Run every check, print the numbers, write the receptive-field figure; returns the numbers."""
    if quick:   # a smoke run for the tests: a smaller VQ-VAE batch
        batch = 4
    rng = onp.random.default_rng(seed)
    results = {}

    print("1. conv primitives: hand VJP against a central difference (float64)")
    x = rng.standard_normal((2, 6, 6, 3))                         # (B, H, W, C)
    w = rng.standard_normal((3, 3, 3, 4))                         # (kh, kw, C, F)
    y = rng.standard_normal((2, 3, 3, 4))                         # conv2d(x, w, 2, 1) has this shape
    cases = {"conv2d d/dx": (lambda x_: conv2d(x_, w, 2, 1), x),
             "conv2d d/dw": (lambda w_: conv2d(x, w_, 2, 1), w),
             "conv_transpose2d d/dy": (lambda y_: conv_transpose2d(y_, w, 2, 1, 1), y),
             "conv_transpose2d d/dw": (lambda w_: conv_transpose2d(y, w_, 2, 1, 1), w)}
    for name, (f, arg) in cases.items():
        analytic, numeric, gap = directional_gap(f, arg, rng)
        check_grads(f, modes=["rev"], order=1)(arg)               # raises AssertionError on a mismatch
        print(f"   {name:22s} VJP.v {analytic:+.8f}  finite diff {numeric:+.8f}  "
              f"rel gap {gap:.1e}  check_grads ok")
        results[f"{name.replace(' ', '_').replace('/', '')}_gap"] = gap

    print("2. layers via minivq.testing.check_layer_grads (params and input, float64)")
    layers = [("Conv2d(4, 3, stride=2, padding=1)", Conv2d(4, 3, stride=2, padding=1), (6, 6, 3)),
              ("ConvTranspose2d(2, 4, stride=2, padding=1)", ConvTranspose2d(2, 4, stride=2, padding=1),
               (3, 3, 4)),
              ("MaskedConv2d(4, 3, causal 'B', padding=1)", MaskedConv2d(4, 3, causal_mask(3, "B"), padding=1),
               (5, 5, 4)),
              ("Residual(Relu, Conv2d(3, 3, padding=1))", Residual(Relu, Conv2d(3, 3, padding=1)), (4, 4, 3)),
              ("Dense(5)", Dense(5), (7,))]
    for name, layer, in_shape in layers:
        check_layer_grads(layer, in_shape, seed=seed)
        print(f"   {name:44s} ok")

    print("3. quantizer losses (Eq. 3) and the straight-through estimator")
    codebook = rng.standard_normal((8, 4))                        # (K, d)
    z_e = rng.standard_normal((2, 3, 3, 4))                       # (B, h, w, d)
    check_grads(lambda c: quantize(c, z_e).codebook_loss, modes=["rev"], order=1)(codebook)
    check_grads(lambda z: quantize(codebook, z).commitment_loss, modes=["rev"], order=1)(z_e)
    print("   codebook_loss d/d codebook and commitment_loss d/d z_e: check_grads ok")
    cross = {"d codebook_loss / d z_e": grad(lambda z: quantize(codebook, z).codebook_loss)(z_e),
             "d commitment_loss / d codebook": grad(lambda c: quantize(c, z_e).commitment_loss)(codebook)}
    for name, g in cross.items():
        print(f"   {name:32s} max |.| = {onp.abs(g).max():.1f}   (sg[.] stops it)")
    u = rng.standard_normal(z_e.shape)
    straight = grad(lambda z: np.sum(u * quantize(codebook, z).z_q))(z_e)   # should equal u
    v = rng.standard_normal(z_e.shape)
    eps = 1e-6                                                    # small enough to stay on one code
    true_derivative = float(onp.sum(u * (quantize(codebook, z_e + eps * v).z_q
                                         - quantize(codebook, z_e - eps * v).z_q)) / (2 * eps))
    results["straight_through_error"] = float(onp.abs(straight - u).max())
    results["z_q_finite_difference"] = true_derivative
    print(f"   z_q straight-through VJP vs identity: max error {results['straight_through_error']:.1e}; "
          f"its true derivative along v (finite diff): {true_derivative:.1f}")

    print("4. the VQ-VAE encoder's gradient from the reconstruction loss (reference net, at init)")
    x_test = load_mnist_embedded().x_test
    images = x_test[onp.linspace(0, len(x_test) - 1, batch).round().astype(int)]   # spread over the digits
    model = build_vqvae()
    params = model.init(rng)

    def recon_with_st(p):                                         # decoder input z_q = z_e + sg[e - z_e]
        return model.forward(p, images)["recon_mse"]

    def recon_without_st(p):                                      # decoder input e = codebook[argmin]
        _, codes = model.encode(p, images)
        return mse(model.decode(p, codes), images)

    def commitment_only(p):
        return model.forward(p, images)["commitment_loss"]

    for name, fn in (("with straight-through", recon_with_st), ("without straight-through", recon_without_st),
                     ("commitment loss alone", commitment_only)):
        g = grad(fn)(params)
        results[f"encoder_grad_{name.split()[0]}"] = tree_norm(g["encoder"])
        print(f"   {name:26s} |d/d encoder| = {tree_norm(g['encoder']):.3e}   "
              f"|d/d decoder| = {tree_norm(g['decoder']):.3e}")
    print("   without straight-through the encoder learns nothing from the reconstruction (exactly 0);")
    print("   the commitment term alone only pulls z_e toward its code")

    print("5. PixelCNN causality through input gradients (11x11 grid, centre cell)")
    size, panels = 11, []
    for name, gated in (("plain PixelCNN", False), ("gated PixelCNN", True)):
        prior = build_prior(make_config(num_codes=16, gated=gated))
        reached = reach_map(prior, prior.init(rng), size, rng)                     # (H, W)
        order = onp.arange(size * size).reshape(size, size)       # raster position of every cell
        centre = order[size // 2, size // 2]
        future = int(onp.sum(reached[order >= centre]))
        past = int(onp.sum(reached[order < centre]))
        key = name.split()[0]
        results[f"{key}_future_cells"] = float(future)
        results[f"{key}_past_cells"] = float(past)
        print(f"   {name:15s} cells at or after the centre with nonzero gradient: {future} (must be 0); "
              f"earlier cells reached: {past} of {centre}")
        panels.append((name, reach_image(reached)[None]))         # (1, H + 2, W + 2, 3)
    os.makedirs(out, exist_ok=True)
    sample_comparison(panels, os.path.join(out, "receptive_fields.png"))
    print(f"figure written to {out}/")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16, help="digits for the encoder-gradient check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/demo06")
    parser.add_argument("--quick", action="store_true", help="a smaller batch (smoke test)")
    args = parser.parse_args()
    main(args.batch, args.seed, args.out, args.quick)
