"""Optimizers as pure functions over parameter trees: each constructor returns (init, update),

    state = init(params);  params, state = update(params, grads, state)

with nothing mutated in place; the state is a tree of arrays (checkpointed, resumed bit-exactly).
lr is a number or a schedule of the update count kept in the state (`minivq.schedules`).
"""
import numpy as onp

from .tree import tree_map, tree_zeros_like


def learning_rate(lr, step):
    """The learning rate of the update after `step` updates: lr(step) for a schedule, else lr."""
    return float(lr(int(step))) if callable(lr) else lr


def sgd(lr=1e-2):
    """Plain gradient descent: p <- p - lr_t * g (lr_t = lr, or lr(t) for a schedule)."""
    def init(params):
        return {"step": onp.zeros((), onp.int64)}

    def update(params, grads, state):
        lr_t = learning_rate(lr, state["step"])
        params = tree_map(lambda p, g: p - lr_t * g, params, grads)
        return params, {"step": state["step"] + 1}

    return init, update


def adam(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma & Ba 2015, Algorithm 1), as in torch.optim.Adam.

        m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g^2
        p <- p - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)

    With a schedule, lr of update t is lr(t - 1) (t counts from 1 in Algorithm 1).
    """
    def init(params):
        return {"step": onp.zeros((), onp.int64),
                "m": tree_zeros_like(params), "v": tree_zeros_like(params)}

    def update(params, grads, state):
        lr_t = learning_rate(lr, state["step"])
        step = state["step"] + 1
        m = tree_map(lambda m, g: b1 * m + (1 - b1) * g, state["m"], grads)
        v = tree_map(lambda v, g: b2 * v + (1 - b2) * (g * g), state["v"], grads)
        m_correction = 1.0 - b1 ** int(step)   # bias corrections of Algorithm 1
        v_correction = 1.0 - b2 ** int(step)

        def step_leaf(p, m_leaf, v_leaf):
            return p - lr_t * (m_leaf / m_correction) / (onp.sqrt(v_leaf / v_correction) + eps)

        params = tree_map(step_leaf, params, m, v)
        return params, {"step": step, "m": m, "v": v}

    return init, update
