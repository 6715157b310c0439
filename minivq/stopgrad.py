"""stop_gradient and the straight-through estimator: the quantizer (argmin + gather) has no
useful derivative, so the decoder's input gradient is copied straight to the encoder's output
(van den Oord et al. 2017, "Neural Discrete Representation Learning", Sec. 3.1, Eq. 3).
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
    """Value z_q, gradient passed to z_e unchanged (Eq. 3): d/dz_e = identity, d/dz_q = 0.
    z_e, z_q: the same shape, e.g. (B, h, w, d)."""
    return z_e + stop_gradient(z_q - z_e)
