"""stop_gradient and the straight-through estimator.

The VQ-VAE's quantizer (argmin + gather) has no useful derivative, so the paper
(van den Oord et al. 2017, "Neural Discrete Representation Learning", Sec. 3.1 and
Eq. 3) copies the decoder's input gradient straight to the encoder's output. Both
pieces are written out here so a reader can see exactly where gradients stop.
"""
from autograd.extend import primitive, defvjp


@primitive
def stop_gradient(x):
    """Identity in the forward pass; blocks every gradient in the backward pass (sg[.])."""
    return x


def stop_gradient_vjp_x(ans, x):
    return lambda g: g * 0.0   # d sg(x) / dx := 0: the paper's sg operator


defvjp(stop_gradient, stop_gradient_vjp_x)


def straight_through(z_e, z_q):
    """Forward value z_q, backward gradient passed to z_e unchanged (paper Eq. 3).

    z_e, z_q: arrays of the same shape, e.g. (B, h, w, d). The output equals z_q,
    and d output / d z_e is the identity, d output / d z_q is zero.
    """
    return z_e + stop_gradient(z_q - z_e)
