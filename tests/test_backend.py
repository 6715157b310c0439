"""The backend switch: set_backend, use_backend and MINIVQ_BACKEND choose the conv module of every layer."""
import os
import subprocess
import sys

import numpy as onp
import pytest
from autograd import grad

import minivq
from minivq import backend, conv, fast_conv
from minivq.layers import Conv2d, ConvTranspose2d


def counting(monkeypatch, module):
    """Count the calls of module.conv2d and module.conv_transpose2d (still computing them)."""
    calls = []
    for name in ("conv2d", "conv_transpose2d"):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *args, _f=original: calls.append(1) or _f(*args))
    return calls


def run_layers(rng):
    """A Conv2d and a ConvTranspose2d layer, forward and gradient, float64."""
    x = rng.standard_normal((2, 6, 6, 3))
    init_conv, apply_conv = Conv2d(4, 3, 2, 1)
    init_up, apply_up = ConvTranspose2d(2, 4, 2, 1)
    (_, conv_params), (_, up_params) = init_conv(rng, (6, 6, 3)), init_up(rng, (3, 3, 4))
    conv_params, up_params = ({k: v.astype(onp.float64) for k, v in p.items()} for p in (conv_params, up_params))
    loss = lambda params: onp.sum(apply_up(params[1], apply_conv(params[0], x)) ** 2)
    return loss((conv_params, up_params)), grad(loss)((conv_params, up_params))


@pytest.mark.parametrize("name,used,unused", [("plain", conv, fast_conv), ("fast", fast_conv, conv)])
def test_use_backend_routes_every_layer(rng, monkeypatch, name, used, unused):
    used_calls, unused_calls = counting(monkeypatch, used), counting(monkeypatch, unused)
    before = backend.get_backend()
    with minivq.use_backend(name):
        assert minivq.get_backend() == name
        run_layers(rng)
    assert backend.get_backend() == before
    # conv2d and conv_transpose2d, once for the loss and once in the gradient's forward pass
    assert len(used_calls) == 4 and unused_calls == []


def test_both_backends_give_the_same_layer_outputs_and_gradients(rng):
    with minivq.use_backend("plain"):
        plain_value, plain_grads = run_layers(onp.random.default_rng(1))
    with minivq.use_backend("fast"):
        fast_value, fast_grads = run_layers(onp.random.default_rng(1))
    onp.testing.assert_allclose(fast_value, plain_value, rtol=1e-12)
    for plain, fast in zip(plain_grads, fast_grads):
        for key in plain:
            onp.testing.assert_allclose(fast[key], plain[key], rtol=1e-10, atol=1e-12)


def test_set_backend_persists_until_changed():
    before = minivq.get_backend()
    try:
        minivq.set_backend("plain")
        assert minivq.get_backend() == "plain" and backend.BACKENDS["plain"] is conv
        minivq.set_backend("fast")
        assert minivq.get_backend() == "fast" and backend.BACKENDS["fast"] is fast_conv
    finally:
        minivq.set_backend(before)


def test_use_backend_restores_after_an_error():
    before = minivq.get_backend()
    with pytest.raises(RuntimeError):
        with minivq.use_backend("plain" if before == "fast" else "fast"):
            raise RuntimeError("inside the block")
    assert minivq.get_backend() == before


@pytest.mark.parametrize("bad", ["slow", "Plain", "", None])
def test_bad_names_raise(bad):
    before = minivq.get_backend()
    with pytest.raises(ValueError, match=r"unknown backend .*expected one of \['fast', 'plain'\]"):
        minivq.set_backend(bad)
    assert minivq.get_backend() == before


# In a fresh process: the backend MINIVQ_BACKEND selects, and whose conv2d primitive autograd
# records (every graph node is a VJPNode built with the primitive it came from) when a layer's
# gradient is taken.
@pytest.mark.parametrize("value,expected", [("plain", "plain"), ("fast", "fast"), (None, "fast")])
def test_environment_variable_selects_the_backend(value, expected):
    env = {k: v for k, v in os.environ.items() if k != "MINIVQ_BACKEND"}
    if value is not None:
        env["MINIVQ_BACKEND"] = value
    probe = ("import sys\nfrom autograd.core import VJPNode\nfrom minivq import conv, fast_conv\n"
             "recorded = []\noriginal = VJPNode.__init__\n"
             "def record(self, value, fun, *rest):\n    recorded.append(fun)\n    original(self, value, fun, *rest)\n"
             "VJPNode.__init__ = record\n"
             "import numpy as onp\nfrom autograd import grad\nimport minivq\nfrom minivq.layers import Conv2d\n"
             "init, apply = Conv2d(2, 3)\n_, params = init(onp.random.default_rng(0), (5, 5, 1))\n"
             "grad(lambda w: apply({'w': w, 'b': params['b']}, onp.ones((1, 5, 5, 1), onp.float32)).sum())(params['w'])\n"
             "used = sorted({'plain' if f is conv.conv2d else 'fast' for f in recorded "
             "if f in (conv.conv2d, fast_conv.conv2d)})\n"
             "print(minivq.get_backend(), ','.join(used))\n")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [expected, expected]


def test_bad_environment_variable_fails_at_import():
    env = dict(os.environ, MINIVQ_BACKEND="turbo")
    out = subprocess.run([sys.executable, "-c", "import minivq"], env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "unknown backend 'turbo'" in out.stderr and "MINIVQ_BACKEND" in out.stderr
