"""Optimizers as pure functions over parameter trees.

Each constructor returns `(init, update)`:

    state = init(params)
    params, state = update(params, grads, state)

Nothing is mutated in place; the state is a tree of arrays, so it can be written to a
checkpoint with the parameters and reloaded bit-exactly.
"""
import numpy as onp

from .tree import tree_map, tree_zeros_like


def sgd(lr=1e-2):
    """Plain gradient descent: p <- p - lr * g."""
    def init(params):
        return {"step": onp.zeros((), onp.int64)}

    def update(params, grads, state):
        params = tree_map(lambda p, g: p - lr * g, params, grads)
        return params, {"step": state["step"] + 1}

    return init, update


def adam(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma & Ba 2015, Algorithm 1), as in torch.optim.Adam.

        m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g^2
        p <- p - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)
    """
    def init(params):
        return {"step": onp.zeros((), onp.int64),
                "m": tree_zeros_like(params), "v": tree_zeros_like(params)}

    def update(params, grads, state):
        step = state["step"] + 1
        m = tree_map(lambda m, g: b1 * m + (1 - b1) * g, state["m"], grads)
        v = tree_map(lambda v, g: b2 * v + (1 - b2) * (g * g), state["v"], grads)
        m_correction = 1.0 - b1 ** int(step)   # bias corrections of Algorithm 1
        v_correction = 1.0 - b2 ** int(step)

        def step_leaf(p, m_leaf, v_leaf):
            return p - lr * (m_leaf / m_correction) / (onp.sqrt(v_leaf / v_correction) + eps)

        params = tree_map(step_leaf, params, m, v)
        return params, {"step": step, "m": m, "v": v}

    return init, update
