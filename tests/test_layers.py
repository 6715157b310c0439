"""Layers: shapes, forward against independent truth, gradient checks."""
import autograd.numpy as np
import numpy as onp
import pytest
from autograd import grad
from autograd.test_util import check_grads

from minivq.conv import conv2d
from minivq.layers import (Conv2d, ConvTranspose2d, Dense, Embedding, Flatten, Relu, Reshape,
                           Residual, Sigmoid, Tanh, gather_rows, relu, serial)
from minivq.testing import check_layer_grads
from minivq.tree import tree_count


@pytest.mark.parametrize("layer, in_shape", [
    (Conv2d(4, 3, padding=1), (5, 6, 3)),
    (Conv2d(3, 4, stride=2, padding=1), (7, 5, 2)),
    (Conv2d(2, 1), (3, 3, 4)),
    (ConvTranspose2d(3, 4, stride=2, padding=1), (3, 4, 2)),
    (ConvTranspose2d(2, 3, stride=1, padding=1), (4, 3, 3)),
    (Dense(3), (5,)),
    (serial(Conv2d(4, 3, 2, 1), Tanh, Flatten(), Dense(3)), (6, 6, 2)),
    (Residual(Tanh, Conv2d(3, 3, padding=1)), (4, 4, 3)),
    (serial(Reshape((2, 3, 1)), Sigmoid), (6,)),
])
def test_layer_gradients_float64(layer, in_shape):
    check_layer_grads(layer, in_shape)


def test_relu_gradient_away_from_kink():
    rng = onp.random.default_rng(0)
    x = rng.normal(size=(3, 4))
    x = onp.where(onp.abs(x) < 0.1, 0.5, x)    # keep finite differences off the kink
    check_layer_grads(Relu, (4,), x=x)
    g = grad(lambda x: np.sum(relu(x) * 2.0))(x)
    onp.testing.assert_array_equal(g, 2.0 * (x > 0))


def test_embedding_lookup_and_gradient():
    idx = onp.array([[0, 2], [2, 1]])
    _, params = Embedding(3, 2)[0](onp.random.default_rng(0), (2,))
    params = {"table": onp.arange(6.0).reshape(3, 2)}
    out = Embedding(3, 2)[1](params, idx)
    onp.testing.assert_array_equal(out, [[[0, 1], [4, 5]], [[4, 5], [2, 3]]])
    # d sum(out) / d table counts how often each row is used: row 0 once, 1 once, 2 twice.
    g = grad(lambda p: np.sum(Embedding(3, 2)[1](p, idx)))(params)
    onp.testing.assert_array_equal(g["table"], [[1, 1], [1, 1], [2, 2]])
    check_layer_grads(Embedding(5, 3), (2, 2), x=onp.array([[[0, 1], [4, 2]]]), wrt_input=False)


def test_embedding_rejects_bad_indices():
    apply = Embedding(3, 2)[1]
    params = {"table": onp.zeros((3, 2))}
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        apply(params, onp.array([0, 3]))
    with pytest.raises(ValueError, match="integers"):
        apply(params, onp.array([0.0, 1.0]))


def test_dense_against_hand_values():
    params = {"w": onp.array([[1.0, 2.0], [3.0, 4.0]]), "b": onp.array([0.5, -1.0])}
    out = Dense(2)[1](params, onp.array([[1.0, 1.0]]))
    onp.testing.assert_array_equal(out, [[4.5, 5.0]])


def test_conv_layer_matches_primitive_plus_bias():
    rng = onp.random.default_rng(3)
    init, apply = Conv2d(5, 3, stride=2, padding=1)
    out_shape, params = init(rng, (9, 8, 2))
    x = rng.normal(size=(2, 9, 8, 2)).astype(onp.float32)
    y = apply(params, x)
    assert y.shape == (2,) + out_shape == (2, 5, 4, 5)
    assert y.dtype == onp.float32
    onp.testing.assert_allclose(y, conv2d(x, params["w"], 2, 1) + params["b"], rtol=1e-6)


def test_init_matches_pytorch_default_bounds():
    # PyTorch's default conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = k*k*C_in.
    _, params = Conv2d(64, 3)[0](onp.random.default_rng(0), (7, 7, 64))
    bound = 1 / onp.sqrt(3 * 3 * 64)
    assert onp.abs(params["w"]).max() <= bound
    assert onp.abs(params["w"]).max() > 0.95 * bound      # really uses the whole range
    assert params["w"].dtype == onp.float32
    # ConvTranspose2d: PyTorch takes fan_in from weight dim 1 = out_channels.
    _, params = ConvTranspose2d(32, 4, 2, 1)[0](onp.random.default_rng(0), (7, 7, 64))
    assert params["w"].shape == (4, 4, 32, 64)
    assert onp.abs(params["w"]).max() <= 1 / onp.sqrt(4 * 4 * 32)


def test_conv_transpose_layer_output_shape():
    out_shape, params = ConvTranspose2d(1, 4, stride=2, padding=1)[0](onp.random.default_rng(0), (14, 14, 32))
    assert out_shape == (28, 28, 1)
    y = ConvTranspose2d(1, 4, stride=2, padding=1)[1](params, onp.zeros((3, 14, 14, 32), onp.float32))
    assert y.shape == (3, 28, 28, 1)


def test_serial_and_residual_structure():
    init, apply = serial(Conv2d(4, 3, padding=1), Relu, Residual(Relu, Conv2d(4, 1)))
    out_shape, params = init(onp.random.default_rng(0), (5, 5, 2))
    assert out_shape == (5, 5, 4)
    assert [sorted(p) if isinstance(p, dict) else len(p) for p in params] == [["b", "w"], [], 2]
    assert tree_count(params) == (3 * 3 * 2 * 4 + 4) + (4 * 4 + 4)
    with pytest.raises(ValueError, match="must keep the shape"):
        Residual(Conv2d(3, 1))[0](onp.random.default_rng(0), (5, 5, 2))


def test_reshape_rejects_wrong_size():
    with pytest.raises(ValueError, match="cannot reshape"):
        Reshape((3, 3))[0](None, (8,))


@pytest.mark.parametrize("indices", [
    onp.array([[0, 2, 2], [4, 0, 2]]),          # repeats, unused rows 1 and 3
    onp.arange(5)[::-1].reshape(5, 1, 1),
    onp.zeros((0, 3), onp.int64),               # nothing gathered: zero gradient
])
def test_gather_rows_vjp_matches_autograd_indexing(indices):
    # The segment-sum VJP against autograd's own derivative of table[indices] (np.add.at).
    rng = onp.random.default_rng(0)
    table = rng.normal(size=(5, 3))
    weights = rng.normal(size=indices.shape + (3,))
    ours = grad(lambda t: np.sum(gather_rows(t, indices) * weights))(table)
    reference = grad(lambda t: np.sum(t[indices] * weights))(table)
    onp.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)
    onp.testing.assert_array_equal(gather_rows(table, indices), table[indices])
    if indices.size:
        check_grads(lambda t: gather_rows(t, indices), modes=["rev"], order=1)(table)
    assert grad(lambda t: np.sum(gather_rows(t, indices) ** 2))(table.astype(onp.float32)).dtype == onp.float32
