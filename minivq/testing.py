"""One-line gradient checks for users who add their own layers.

    from minivq.testing import check_layer_grads
    check_layer_grads(Conv2d(8, 3, padding=1), in_shape=(5, 5, 3))

checks d(apply)/d(params) and d(apply)/d(x) against finite differences in float64.
"""
import numpy as onp
from autograd.test_util import check_grads

from .tree import tree_cast, tree_leaves


def check_layer_grads(layer, in_shape, batch=2, seed=0, wrt_input=True, x=None):
    """Finite-difference check of a stax-style layer's gradients, float64, reverse mode.

    layer: (init, apply); in_shape excludes the batch; `x` overrides the random input
    (use it for integer inputs such as Embedding indices, with wrt_input=False).
    Raises AssertionError on a mismatch; returns the float64 (params, x) it checked.
    """
    rng = onp.random.default_rng(seed)
    init, apply = layer
    _, params = init(rng, tuple(in_shape))
    params = tree_cast(params, onp.float64)
    if x is None:
        x = rng.standard_normal((batch,) + tuple(in_shape))
    if tree_leaves(params):          # parameter-free layers (activations, reshapes) have none
        check_grads(lambda p: apply(p, x), modes=["rev"], order=1)(params)
    if wrt_input:
        check_grads(lambda x_: apply(params, x_), modes=["rev"], order=1)(x)
    return params, x
