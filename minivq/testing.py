"""One-line gradient checks for users who add their own layers.

    from minivq.testing import check_layer_grads
    check_layer_grads(Conv2d(8, 3, padding=1), in_shape=(5, 5, 3))

checks d(apply)/d(params) and d(apply)/d(x) against finite differences in float64.
For autoregressive models, `input_dependence` maps which input cells each output cell
reads (through the gradient) and `strictly_earlier` is the map a raster-order model must
stay inside.
"""
import autograd.numpy as np
import numpy as onp
from autograd import grad
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


def input_dependence(logits_fn, x, seed=0):
    """dep[i, j, r, c] = True iff d logits[:, i, j, :] / d x[:, r, c, :] has a nonzero entry.

    x: (B, h, w, C) float; one reverse pass per output cell, with a random projection of
    the K logits so that no cancellation between them can hide a dependence.
    """
    _, height, width, _ = x.shape
    projection = onp.random.default_rng(seed).normal(size=logits_fn(x).shape[-1])
    dep = onp.zeros((height, width, height, width), bool)
    for i in range(height):
        for j in range(width):
            g = grad(lambda x_: np.sum(logits_fn(x_)[:, i, j, :] * projection))(x)   # (B, h, w, C)
            dep[i, j] = onp.any(g != 0, axis=(0, 3))
    return dep


def strictly_earlier(height, width):
    """earlier[i, j, r, c] = (r, c) comes before (i, j) in raster order."""
    order = onp.arange(height * width).reshape(height, width)
    return order[None, None, :, :] < order[:, :, None, None]
