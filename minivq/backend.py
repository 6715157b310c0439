"""One switch for the convolution implementation every layer uses.

    plain  minivq/conv.py       the textbook im2col primitives, read first
    fast   minivq/fast_conv.py  the same signatures, with the speed work (default)

Choose with `minivq.set_backend("plain" | "fast")`, for a block with
`with minivq.use_backend("plain"): ...`, or for a whole process with the environment
variable MINIVQ_BACKEND=plain. Layers call `backend.conv2d` / `backend.conv_transpose2d`,
which look the backend up at call time, so a switch takes effect on models already built.
Encoding (forward only) goes through `backend.inference()` and `backend.nearest_codes`: the
plain layers and quantize.nearest_codes, or the fast backend's minivq/fast_forward.py.
"""
import contextlib
import os

from . import conv as _plain
from . import fast_conv as _fast
from . import fast_forward as _fast_forward

BACKENDS = {"plain": _plain, "fast": _fast}
_current = {"name": None}


def set_backend(name):
    """Make `name` ('plain' or 'fast') the convolution implementation of every layer."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {sorted(BACKENDS)} "
                         f"(also settable with MINIVQ_BACKEND)")
    _current["name"] = name


def get_backend():
    """The name of the backend in use."""
    return _current["name"]


@contextlib.contextmanager
def use_backend(name):
    """Run a block with `name` as the backend, then restore the previous one."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def conv2d(x, w, stride=1, padding=0):
    """conv2d of the current backend; see minivq/conv.py for the math and shapes."""
    return BACKENDS[_current["name"]].conv2d(x, w, stride, padding)


def conv_transpose2d(y, w, stride=1, padding=0, output_padding=0):
    """conv_transpose2d of the current backend; see minivq/conv.py for the math and shapes."""
    return BACKENDS[_current["name"]].conv_transpose2d(y, w, stride, padding, output_padding)


def inference():
    """A context for forward passes without gradients: the fast backend's forward-pass settings
    (fast_forward.inference), nothing on the plain backend."""
    return _fast_forward.inference() if _current["name"] == "fast" else contextlib.nullcontext()


def nearest_codes(codebook, z_e):
    """quantize.nearest_codes (plain) or fast_forward.nearest_codes (fast): (K, d), (..., d) -> int64 (...)."""
    if _current["name"] == "fast":
        return _fast_forward.nearest_codes(codebook, z_e)
    from .quantize import nearest_codes as plain_nearest_codes   # here: quantize imports layers, layers backend
    return plain_nearest_codes(codebook, z_e)


set_backend(os.environ.get("MINIVQ_BACKEND", "fast"))
