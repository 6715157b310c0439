"""Optimizers: one step against the closed-form update of a hand example."""
import numpy as onp

from minivq.optim import adam, sgd
from minivq.tree import tree_cast, tree_count, tree_flatten_with_paths, tree_leaves, tree_map


def test_adam_first_step_closed_form():
    # After one step m_hat = g and v_hat = g^2, so p <- p - lr * g / (|g| + eps).
    params = {"a": onp.array([1.0, -2.0]), "b": [onp.array(3.0)]}
    grads = {"a": onp.array([0.5, -4.0]), "b": [onp.array(0.0)]}
    init, update = adam(lr=0.1, eps=1e-8)
    new, state = update(params, grads, init(params))
    onp.testing.assert_allclose(new["a"], [1.0 - 0.1 * 0.5 / (0.5 + 1e-8), -2.0 + 0.1 * 4.0 / (4.0 + 1e-8)])
    onp.testing.assert_array_equal(new["b"][0], 3.0)
    assert int(state["step"]) == 1
    onp.testing.assert_allclose(state["m"]["a"], 0.1 * grads["a"])
    onp.testing.assert_allclose(state["v"]["a"], 0.001 * grads["a"] ** 2)


def test_adam_second_step_hand_computed():
    # p=0, g1=1, g2=-1, lr=1, b1=0.5, b2=0.5, eps=0:
    # step1: m=0.5, v=0.5, m_hat=1, v_hat=1 -> p=-1
    # step2: m=0.5*0.5-0.5=-0.25, v=0.25+0.5=0.75, m_hat=-0.25/0.75=-1/3, v_hat=0.75/0.75=1 -> p=-1+1/3
    init, update = adam(lr=1.0, b1=0.5, b2=0.5, eps=0.0)
    p = {"x": onp.array(0.0)}
    state = init(p)
    p, state = update(p, {"x": onp.array(1.0)}, state)
    onp.testing.assert_allclose(p["x"], -1.0)
    p, state = update(p, {"x": onp.array(-1.0)}, state)
    onp.testing.assert_allclose(p["x"], -1.0 + 1.0 / 3.0)


def test_adam_keeps_float32():
    params = {"w": onp.ones((2, 2), onp.float32)}
    init, update = adam()
    new, state = update(params, {"w": onp.full((2, 2), 0.3, onp.float32)}, init(params))
    assert new["w"].dtype == onp.float32 and state["m"]["w"].dtype == onp.float32


def test_sgd_step():
    init, update = sgd(lr=0.5)
    new, state = update({"w": onp.array([1.0])}, {"w": onp.array([4.0])}, init(None))
    onp.testing.assert_array_equal(new["w"], [-1.0])
    assert int(state["step"]) == 1


def test_tree_helpers():
    tree = {"dec": [{"w": onp.ones((2, 3))}, {}], "enc": {"b": onp.zeros(4, onp.int64)}}
    assert [p for p, _ in tree_flatten_with_paths(tree)] == ["dec/0/w", "enc/b"]
    assert tree_count(tree) == 10
    assert len(tree_leaves(tree)) == 2
    doubled = tree_map(lambda a: a * 2, tree)
    onp.testing.assert_array_equal(doubled["dec"][0]["w"], 2 * onp.ones((2, 3)))
    assert doubled["dec"][1] == {}
    cast = tree_cast(tree, onp.float32)
    assert cast["dec"][0]["w"].dtype == onp.float32 and cast["enc"]["b"].dtype == onp.int64
