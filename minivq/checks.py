"""Input checks shared by every entry point: one ValueError that says what was expected.

A shape pattern is a tuple of sizes where a name (a str) matches any size and a leading
`...` any number of leading axes: ("B", 7, 7) is a batch of 7x7 grids, (..., 16) any
array of 16-vectors. Checks read plain values, so they also work on autograd boxes.
"""
import contextlib
import math
import numbers

import numpy as onp
from autograd.tracer import Box, getval

from .tree import tree_flatten_with_paths


def shape_text(pattern):
    """The pattern as text: ("B", 7, 7) -> '(B, 7, 7)', (..., 16) -> '(..., 16)'."""
    words = ["..." if n is Ellipsis else str(n) for n in pattern]
    return "(" + ", ".join(words) + ("," if len(words) == 1 else "") + ")"


def shape_matches(shape, pattern):
    """True iff `shape` fits the pattern (see the module docstring)."""
    shape, pattern = tuple(shape), tuple(pattern)
    if pattern and pattern[0] is Ellipsis:
        pattern = pattern[1:]
        if len(shape) < len(pattern):
            return False
        shape = shape[len(shape) - len(pattern):]
    return len(shape) == len(pattern) and all(isinstance(p, str) or p == n for n, p in zip(shape, pattern))


def check_indices(indices, num_codes, shape=None, name="indices", nonempty=False):
    """indices as an integer array in [0, num_codes) fitting `shape` (a pattern), or ValueError.

    num_codes=None checks only that they are non-negative (K not known here).
    """
    value = onp.asarray(getval(indices))
    bound = "non-negative integers" if num_codes is None else f"integers in [0, {num_codes})"
    expected = bound + ("" if shape is None else f" of shape {shape_text(shape)}")
    if value.dtype.kind not in "iu":
        raise ValueError(f"{name} must be {expected}, got dtype {value.dtype}")
    if shape is not None and not shape_matches(value.shape, shape):
        raise ValueError(f"{name} must be {expected}, got shape {value.shape}")
    if nonempty and value.size == 0:
        raise ValueError(f"{name} must hold at least one index, got shape {value.shape}")
    if value.size and (value.min() < 0 or (num_codes is not None and value.max() >= num_codes)):
        where = "be non-negative" if num_codes is None else f"lie in [0, {num_codes})"
        raise ValueError(f"{name} must {where}, got range [{value.min()}, {value.max()}]")
    return value


def check_labels(config, labels, batch):
    """labels (batch,) as ints in range for a prior config with num_classes, None without."""
    if config["num_classes"] is None:
        if labels is not None:
            raise ValueError("labels were given but the prior is unconditional "
                             "(train a gated prior with num_classes to condition on labels)")
        return None
    if labels is None:
        raise ValueError(f"this prior is conditioned on {config['num_classes']} classes: pass labels (B,)")
    return check_indices(labels, config["num_classes"], (batch,), name="labels")


def check_sampling_options(temperature, top_k):
    """ValueError unless temperature is finite > 0 and top_k None or an integer >= 1."""
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number > 0 (use greedy=True for the "
                         f"argmax path), got {temperature!r}")
    if top_k is not None and not (int(top_k) == top_k and top_k >= 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")


def check_sampling_grids(config, n, h, w, rng, top_rows, labels, codebook):
    """(top_rows (n, r, w), labels) checked for sampling.sample_grids from a prior of `config`."""
    for name, value in (("n", n), ("h", h), ("w", w)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(rng, onp.random.Generator):
        raise ValueError(f"rng must be a numpy Generator (onp.random.default_rng(seed)), "
                         f"got {type(rng).__name__}")
    if top_rows is None:
        top_rows = onp.zeros((n, 0, w), onp.int64)
    top_rows = check_indices(top_rows, config["num_codes"], (n, "r", w), name="top_rows")
    if top_rows.shape[1] >= h:
        raise ValueError(f"top_rows must leave rows to sample: r < {h}, got shape {top_rows.shape}")
    labels = check_labels(config, labels, n)
    if config["input_mode"] == "codes":
        shape = (config["num_codes"], config["code_dim"])
        if codebook is None or onp.shape(codebook) != shape:
            raise ValueError(f"a 'codes' prior needs the VQ-VAE codebook of shape {shape}, "
                             f"got {None if codebook is None else onp.shape(codebook)}")
    elif codebook is not None:
        raise ValueError("codebook is only used by a 'codes' prior; this one embeds indices")
    return top_rows, labels


def check_finite(x, name="x", advice=""):
    """ValueError if x holds NaN or inf; `advice` (e.g. where the NaN may come from) ends the message."""
    value = onp.asarray(getval(x))
    if not onp.all(onp.isfinite(value)):
        raise ValueError(f"{name} of shape {value.shape} contains NaN or inf" + (f": {advice}" if advice else ""))


def check_vectors(z, shape, name="z"):
    """z unchanged if it is a finite float array fitting `shape`, e.g. (..., d) or ("B", h, w, d)."""
    value = getval(z)
    dtype = getattr(value, "dtype", None)
    if dtype is None or dtype.kind != "f":
        raise ValueError(f"{name} must be a float array of shape {shape_text(shape)}, got "
                         f"{dtype if dtype is not None else type(value).__name__}")
    if not shape_matches(value.shape, shape):
        raise ValueError(f"{name} must have shape {shape_text(shape)}, got {value.shape}")
    check_finite(value, name)
    return z


def check_images(x, shape=None, name="x", value_range=None):
    """x unchanged if it is a finite float batch (B, H, W, C), channels last, fitting `shape`.

    shape: (H, W, C) pattern of one image, any size by default. value_range: (low, high) bounds on
    every pixel, or None for no bound.
    """
    pattern = ("B",) + (tuple(shape) if shape is not None else ("H", "W", "C"))
    value = getval(x)
    dtype = getattr(value, "dtype", None)
    if dtype is None or dtype.kind != "f":
        raise ValueError(f"{name} must be a float array of shape {shape_text(pattern)} with pixels "
                         f"in [0, 1], got {dtype if dtype is not None else type(value).__name__} "
                         f"(divide uint8 images by 255)")
    if not shape_matches(value.shape, pattern):
        raise ValueError(f"{name} must have shape {shape_text(pattern)}, channels last, "
                         f"got {value.shape}")
    if value.shape[0] == 0:                      # a mean over no images is 0/0
        raise ValueError(f"{name} must hold at least one image, got shape {value.shape}")
    check_finite(value, name)
    if value_range is not None and value.size:
        low, high = value.min(), value.max()
        if low < value_range[0] or high > value_range[1]:
            hint = " (divide 0..255 pixels by 255)" if high > 1.5 else ""
            raise ValueError(f"{name} must hold pixels in [0, 1], got range [{low:g}, {high:g}]{hint}")
    return x


def merge_config(defaults, *sources):
    """dict(defaults) updated by each source dict in turn; ValueError on a key that defaults
    lacks (a typo must not silently fall back to a default)."""
    merged = dict(defaults)
    for source in sources:
        unknown = sorted(set(source or {}) - set(defaults))
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; expected keys among {sorted(defaults)}")
        merged.update(source or {})
    return merged


def check_config(config, choices=None, at_least=None):
    """ValueError unless config[key] is one of choices[key], and a number (an integer when the
    bound is an int) >= at_least[key]: check_config(c, {'kind': ('grid', 'flat')}, {'num_codes': 1})."""
    for key, allowed in (choices or {}).items():
        if config[key] not in allowed:
            raise ValueError(f"config[{key!r}] must be one of {allowed}, got {config[key]!r}")
    for key, low in (at_least or {}).items():
        value, integer = config[key], isinstance(low, int)
        number = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        if not (number and value >= low and (not integer or int(value) == value)):
            kind = "an integer" if integer else "a finite number"
            raise ValueError(f"{key} must be {kind} >= {low}, got {value!r}")


def _ints(name, label, value, expand, size, minimum, expected):
    """expand(value) as a tuple of `size` ints >= minimum, or a ValueError saying what was `expected`."""
    with contextlib.suppress(TypeError, ValueError):   # not numbers, or not in pairs
        values = expand(value)
        if len(values) == size and all(int(v) == v >= minimum for v in values):
            return tuple(int(v) for v in values)
    raise ValueError(f"{name}: {label} must be {expected}, got {value!r}")


def check_conv_args(name, x, w, stride, padding, output_padding=0):
    """((sh, sw), (top, bottom, left, right), output shape) of `name` ('conv2d' or 'conv_transpose2d'), or a
    ValueError saying what was expected (x or y NHWC, w HWIO, channels matching, output_padding < stride)."""
    from .conv import conv_output_size, conv_transpose_output_size, pad_sides, pair   # conv.py imports this module
    conv, x_label = (True, "x") if name == "conv2d" else (False, "y")
    for label, arr, layout in ((x_label, x, "(B, H, W, C) (channels last)"), ("w", w, "(kh, kw, C_in, C_out)")):
        if not onp.issubdtype(getattr(arr, "dtype", object), onp.floating) or arr.ndim != 4:
            raise ValueError(f"{name}: {label} must be a float32/float64 array of shape {layout}, got "
                             f"{getattr(arr, 'dtype', type(arr))} of {onp.ndim(arr)}-D shape {onp.shape(arr)}")
    strides = _ints(name, "stride", stride, pair, 2, 1, "an integer >= 1 or a pair (sh, sw) of them")
    pads = _ints(name, "padding", padding, pad_sides, 4, 0, "an int >= 0, (ph, pw) or ((top, bottom), (left, right))")
    ops = _ints(name, "output_padding", output_padding, pair, 2, 0, "an integer >= 0 or a pair of them")
    if ops[0] >= strides[0] or ops[1] >= strides[1]:
        raise ValueError(f"{name}: output_padding must be in [0, stride), got {output_padding!r} with stride {stride}")
    kh, kw, c_in, c_out = w.shape
    if x.shape[3] != (c_in if conv else c_out):
        raise ValueError(f"{name}: {x_label} has {x.shape[3]} channels but w of shape {w.shape} (kh, kw, C_in, "
                         f"C_out) needs {'C_in' if conv else 'C_out'}={x.shape[3]}")
    out = tuple(conv_output_size(n, k, s, p) if conv else conv_transpose_output_size(n, k, s, p, op)
                for n, k, s, p, op in zip(x.shape[1:3], (kh, kw), strides, (pads[:2], pads[2:]), ops))
    if min(out) < 1:
        raise ValueError(f"{name}: output would be {out[0]}x{out[1]}: kernel {kh}x{kw}, input {x.shape[1]}x"
                         f"{x.shape[2]}, padding {pads} (top, bottom, left, right), stride {strides}")
    return strides, pads, (x.shape[0], *out, c_out if conv else c_in)


def _refuse_boxes(name, values):
    if any(isinstance(value, Box) for value in values):
        raise NotImplementedError(
            f"{name}: cannot differentiate a gradient (second order): the conv primitives' VJPs are "
            f"raw NumPy and first-order only; take one gradient, or finite differences of it")


def first_order(*makers):
    """The VJP makers of a raw-NumPy primitive, refusing a second-order gradient by name.

    autograd takes a gradient of a gradient by tracing the VJP itself: its g (or an
    argument it saved) arrives as an autograd Box, on which raw NumPy fails deep inside
    ("'ArrayBox' object has no attribute 'itemsize'"). Works for defvjp makers
    (ans, *args) and defvjp_argnums makers (argnums, ans, args, kwargs) alike:
        defvjp(conv2d, *first_order(conv2d_vjp_x, conv2d_vjp_w))
    """
    def checked(maker):
        def checked_maker(*args, **kwargs):
            _refuse_boxes(maker.__name__, [v for a in args for v in (a if isinstance(a, tuple) else (a,))])
            vjp = maker(*args, **kwargs)

            def checked_vjp(g):
                _refuse_boxes(maker.__name__, [g])
                return vjp(g)
            return checked_vjp
        return checked_maker
    return [checked(maker) for maker in makers]


# ----------------------------------------------------------------- the training loop's checks

class TrainingDivergedError(RuntimeError):
    """The loss, a gradient or a parameter became NaN or inf; the checkpoints on disk are kept."""


def _integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_settings(steps, batch_size, lr, num_examples, eval_every=1, checkpoint_every=1):
    """ValueError unless the loop's settings make sense for `num_examples` training examples."""
    problems = []
    if not (_integer(steps) and steps >= 0):
        problems.append(f"steps must be an integer >= 0, got {steps!r}")
    if not (_integer(batch_size) and 1 <= batch_size <= num_examples):
        problems.append(f"batch_size must be an integer in [1, {num_examples}] (the number of "
                        f"training examples), got {batch_size!r}")
    if not (isinstance(lr, numbers.Real) and 0 < lr < math.inf):
        problems.append(f"lr must be a finite number > 0, got {lr!r}")
    for name, value in (("eval_every", eval_every), ("checkpoint_every", checkpoint_every)):
        if not (_integer(value) and value >= 1):
            problems.append(f"{name} must be an integer >= 1, got {value!r}")
    if problems:
        raise ValueError("; ".join(problems))


def check_train_options(resume, out_dir, schedule, optimizer, ema_decay):
    """ValueError on train() options that do not go together."""
    if resume and out_dir is None:
        raise ValueError("resume=True needs the out_dir of the run to continue")
    if schedule is not None and optimizer is not None:
        raise ValueError("give the schedule to the optimizer (e.g. sgd(schedule)) or to train(), "
                         "not both")
    if ema_decay is not None and not 0.0 < ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay!r}")


def check_data_precision(data, params):
    """ValueError if float `data` is of another precision than the float parameters.

    float64 images with float32 parameters would run every step in float64 (twice the
    cost); the step check would then blame the loss for a leaked constant.
    """
    dtypes = sorted({str(onp.asarray(p).dtype) for _, p in tree_flatten_with_paths(params)
                     if onp.asarray(p).dtype.kind == "f"})
    kind = getattr(getattr(data, "dtype", None), "kind", None)
    if kind == "f" and dtypes and str(data.dtype) not in dtypes:
        raise ValueError(f"data is {data.dtype} but the parameters are {', '.join(dtypes)}: cast "
                         f"the data first (data.astype(numpy.{dtypes[0]}))")


def check_step(loss, params, grads, step):
    """TrainingDivergedError on a non-finite loss or gradient; TypeError on a precision leak.

    A float64 constant in a float32 model silently doubles the cost of every matmul; it
    shows up as a loss (or a gradient) whose dtype differs from the parameters'.
    """
    loss_dtype, loss = onp.result_type(loss), float(loss)
    if not math.isfinite(loss):
        raise TrainingDivergedError(f"loss became {loss} at step {step + 1}")
    for (path, p), (_, g) in zip(tree_flatten_with_paths(params), tree_flatten_with_paths(grads)):
        g = onp.asarray(g)
        if loss_dtype != p.dtype or g.dtype != p.dtype:
            raise TypeError(f"parameter {path} is {p.dtype} but the loss is {loss_dtype} and its "
                            f"gradient {g.dtype}: a constant of another precision leaked into the loss")
        if not onp.all(onp.isfinite(g)):
            raise TrainingDivergedError(f"gradient of {path} became non-finite at step {step + 1} "
                                        f"(loss {loss})")


def check_params(params, step, loss):
    """TrainingDivergedError if the update of `step` left a parameter non-finite."""
    for path, p in tree_flatten_with_paths(params):
        if not onp.all(onp.isfinite(p)):
            raise TrainingDivergedError(f"parameter {path} became non-finite in the update of "
                                        f"step {step + 1} (loss {loss}; learning rate too high?)")
