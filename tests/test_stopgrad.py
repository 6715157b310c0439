"""stop_gradient and straight_through: forward values and exact gradients."""
import autograd.numpy as np
import numpy as onp
from autograd import grad

from minivq import stop_gradient, straight_through


def test_stop_gradient_is_identity_forward_and_blocks_gradient():
    x = onp.array([1.0, -2.0, 3.0])
    onp.testing.assert_array_equal(stop_gradient(x), x)
    # d/dx [ sum(sg(x)^2) + sum(3x) ] = 0 + 3: only the unstopped term contributes.
    g = grad(lambda x: np.sum(stop_gradient(x) ** 2) + np.sum(3.0 * x))(x)
    onp.testing.assert_array_equal(g, [3.0, 3.0, 3.0])


def test_straight_through_forwards_y_and_passes_gradient_to_x():
    rng = onp.random.default_rng(1)
    x, y, upstream = rng.normal(size=(3, 2, 4, 4, 5))
    onp.testing.assert_allclose(straight_through(x, y), y, rtol=0, atol=1e-15)
    loss = lambda x, y: np.sum(straight_through(x, y) * upstream)
    onp.testing.assert_array_equal(grad(loss, 0)(x, y), upstream)        # identity to x
    onp.testing.assert_array_equal(grad(loss, 1)(x, y), onp.zeros_like(y))  # nothing to y


def test_stop_gradient_keeps_float32():
    x = onp.ones(3, onp.float32)
    g = grad(lambda x: np.sum(stop_gradient(x) * x))(x)
    assert g.dtype == onp.float32
    onp.testing.assert_array_equal(g, x)
