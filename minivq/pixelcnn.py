"""PixelCNN prior over VQ-VAE code grids: causal masks, the reference network, the loss.

van den Oord et al. 2016, "Pixel Recurrent Neural Networks", Sec. 3.4 (masked
convolutions); gated variant in `gated_pixelcnn.py`. The prior models a grid of code
indices (B, h, w) in raster order,

    p(x) = prod_{i,j} p(x[i,j] | x[<(i,j)])        (Eq. 1; x[<(i,j)]: rows above, then cells left)

so the logits at (i, j) may depend only on earlier cells. The network's input is either a
learned embedding of the indices ('embedding') or the VQ-VAE's own code vectors
('codes', fixed: the codebook is passed with the data, never trained here). Either way
the input is projected per cell to C channels (Embedding or Dense), so the projection
cannot mix cells; the first masked conv (mask A) excludes the centre, so nothing of
x[i,j] reaches the logits at (i, j). tests/test_pixelcnn.py proves it through gradients.

Reference network (config defaults, as the PyTorch course model):
    input -> C=64 | conv 7x7 mask A | 6 x [ReLU, conv 3x3 mask B, + residual]
          | ReLU, conv 1x1 | ReLU, conv 1x1 -> K logits

Parameters describe themselves: `config_from_params` reads the architecture back from
their shapes, so `pixelcnn_logits(params, inputs)` needs no config.
"""
import functools
import math

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from .gated_pixelcnn import GatedPixelCNN
from .layers import Conv2d, Dense, Embedding, Relu, Residual, serial

DEFAULT_CONFIG = {
    "num_codes": 64,          # K, the VQ-VAE codebook size
    "code_dim": None,         # d, needed in 'codes' mode only
    "input_mode": "embedding",
    "channels": 64,
    "num_blocks": 6,          # residual blocks (plain) or gated layers after the first (gated)
    "first_kernel": 7,        # the mask-A layer
    "kernel": 3,              # the mask-B layers
    "gated": False,
    "num_classes": None,      # class-conditional (gated only) when set
}
INPUT_MODES = ("embedding", "codes")


def causal_mask(kernel, mask_type):
    """(k, k, 1, 1) float32 raster-scan mask; broadcasts over (in, out) channels of HWIO weights.

    1 on every row above the centre and left of the centre on its row; mask 'A' (first
    layer) excludes the centre, mask 'B' (later layers) includes it. All code channels
    form one group, so no per-channel (R, G, B) ordering is needed.
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"a causal mask needs an odd kernel size, got {kernel}")
    centre = kernel // 2
    mask = onp.zeros((kernel, kernel, 1, 1), onp.float32)
    mask[:centre] = 1.0                                              # rows above
    mask[centre, :centre + (mask_type == "B")] = 1.0                # left of (and for B, at) the centre
    return mask


def make_config(**overrides):
    """DEFAULT_CONFIG updated with `overrides`, validated (ValueError on unknown keys or bad values)."""
    unknown = sorted(set(overrides) - set(DEFAULT_CONFIG))
    if unknown:
        raise ValueError(f"unknown PixelCNN config keys {unknown}; expected some of {sorted(DEFAULT_CONFIG)}")
    config = dict(DEFAULT_CONFIG, **overrides)
    if config["input_mode"] not in INPUT_MODES:
        raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {config['input_mode']!r}")
    if config["input_mode"] == "codes" and not config["code_dim"]:
        raise ValueError("input_mode 'codes' needs code_dim, the VQ-VAE code vector size d")
    for key in ("num_codes", "channels", "first_kernel", "kernel"):
        if int(config[key]) != config[key] or config[key] < 1:
            raise ValueError(f"{key} must be a positive integer, got {config[key]!r}")
    if config["num_blocks"] < 0:
        raise ValueError(f"num_blocks must be >= 0, got {config['num_blocks']}")
    for key in ("first_kernel", "kernel"):
        causal_mask(config[key], "A")                                # odd kernel sizes only
    if config["num_classes"] is not None and not config["gated"]:
        raise ValueError("class conditioning (num_classes) is implemented by the gated PixelCNN; "
                         "set gated=True")
    return config


@functools.lru_cache(maxsize=None)
def _network(config_items):
    """(init, apply) of the whole prior for one architecture; built once, masks included.

    apply(params, inputs, labels=None, dropout=0.0, rng=None, embedded=False) -> logits (B, h, w, K).
    """
    config = dict(config_items)
    channels, num_codes = config["channels"], config["num_codes"]
    embedding = config["input_mode"] == "embedding"
    project = Embedding(num_codes, channels) if embedding else Dense(channels)
    if config["gated"]:
        body_init, body_apply = GatedPixelCNN(channels, config["num_blocks"], config["first_kernel"],
                                              config["kernel"], config["num_classes"])
    else:
        k1, k = config["first_kernel"], config["kernel"]
        body_init, plain_apply = serial(
            Conv2d(channels, k1, padding=k1 // 2, mask=causal_mask(k1, "A")),
            *[Residual(Relu, Conv2d(channels, k, padding=k // 2, mask=causal_mask(k, "B")))
              for _ in range(config["num_blocks"])])

        def body_apply(params, e, labels=None):
            return plain_apply(params, e)                              # unconditional: labels unused
    head_init, head_apply = serial(Relu, Conv2d(channels, 1), Relu, Conv2d(num_codes, 1))

    def init(rng):
        # Params do not depend on the grid size ('same' padding), so a nominal 1x1 grid will do.
        in_shape = (1, 1) if embedding else (1, 1, config["code_dim"])
        shape, input_params = project[0](rng, in_shape)
        shape, body_params = body_init(rng, shape)
        _, head_params = head_init(rng, shape)
        return {"input": input_params, "body": body_params, "head": head_params}

    def apply(params, inputs, labels=None, dropout=0.0, rng=None, embedded=False):
        e = inputs if embedded else project[1](params["input"], inputs)       # (B, h, w, C)
        features = body_apply(params["body"], e, labels)                      # (B, h, w, C)
        if rng is not None and dropout > 0:
            # Inverted dropout, per cell and channel: cannot mix cells, so causality holds.
            keep = rng.random(features.shape) >= dropout
            features = features * (keep / (1.0 - dropout)).astype(features.dtype)
        return head_apply(params["head"], features)                            # (B, h, w, K)

    return init, apply


def init_pixelcnn(rng, config):
    """Random parameters of the prior described by `config` (see DEFAULT_CONFIG); float32 tree."""
    config = make_config(**config)
    return _network(tuple(sorted(config.items())))[0](rng)


def config_from_params(params):
    """The architecture config that `init_pixelcnn` was given, read back from the shapes."""
    params = getval(params)                      # shapes only: unwrap autograd's boxes if traced
    inputs, body, head = (getval(params[key]) for key in ("input", "body", "head"))
    body = [getval(layer) for layer in body]
    gated = isinstance(body[0], dict) and "v" in body[0]
    first_w = body[0]["v"]["w"] if gated else body[0]["w"]                  # (k1 or k1//2+1, k1, C, .)
    later_w = [layer["v"]["w"] if gated else layer[1]["w"] for layer in body[1:]]
    embedding = "table" in inputs
    return make_config(
        num_codes=int(head[-1]["w"].shape[-1]),
        code_dim=None if embedding else int(inputs["w"].shape[0]),
        input_mode="embedding" if embedding else "codes",
        channels=int(first_w.shape[2]),
        num_blocks=len(later_w),
        first_kernel=int(first_w.shape[1]),
        kernel=int(later_w[0].shape[1]) if later_w else DEFAULT_CONFIG["kernel"],
        gated=gated,
        num_classes=int(body[0]["class_v"].shape[0]) if gated and "class_v" in body[0] else None)


def check_labels(config, labels, batch):
    """ValueError unless labels fit the model: None for unconditional, (B,) ints in range otherwise."""
    if config["num_classes"] is None:
        if labels is not None:
            raise ValueError("labels were given but the prior is unconditional "
                             "(train a gated prior with num_classes to condition on labels)")
        return None
    if labels is None:
        raise ValueError(f"this prior is conditioned on {config['num_classes']} classes: pass labels (B,)")
    labels = onp.asarray(labels)
    if labels.dtype.kind not in "iu" or labels.shape != (batch,):
        raise ValueError(f"labels must be integers of shape ({batch},), got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= config["num_classes"]):
        raise ValueError(f"labels must lie in [0, {config['num_classes']}), "
                         f"got range [{labels.min()}, {labels.max()}]")
    return labels


def _check_inputs(config, inputs):
    """ValueError unless inputs are (B, h, w) int indices or (B, h, w, d) float codes, per the mode."""
    value = onp.asarray(getval(inputs))
    shape, dtype = value.shape, value.dtype
    if config["input_mode"] == "embedding":
        expected = "integer code indices of shape (B, h, w)"
        ok = len(shape) == 3 and dtype.kind in "iu"
    else:
        expected = f"float code vectors of shape (B, h, w, {config['code_dim']})"
        ok = len(shape) == 4 and shape[-1] == config["code_dim"] and dtype.kind == "f"
    if not ok:
        raise ValueError(f"input_mode {config['input_mode']!r} expects {expected}, got {dtype} {shape}")


def pixelcnn_logits(params, inputs, labels=None, dropout=0.0, rng=None):
    """Logits of p(x[i,j] | earlier cells): (B, h, w, K).

    inputs: int indices (B, h, w) in 'embedding' mode, float code vectors (B, h, w, d)
    = codebook[indices] in 'codes' mode. labels: (B,) ints for a conditional prior.
    dropout > 0 with a numpy Generator `rng` drops body features (training only).
    """
    config = config_from_params(params)
    _check_inputs(config, inputs)
    labels = check_labels(config, labels, onp.shape(inputs)[0])
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    return _network(tuple(sorted(config.items())))[1](params, inputs, labels, dropout, rng)


def logits_from_embedded(params, e, labels=None, dropout=0.0, rng=None):
    """Logits from the per-cell projected input e (B, h, w, C), skipping the input layer.

    For tests and analysis: in 'embedding' mode the input gradient lives here.
    """
    config = config_from_params(params)
    labels = check_labels(config, labels, onp.shape(e)[0])
    return _network(tuple(sorted(config.items())))[1](params, e, labels, dropout, rng, embedded=True)


def log_softmax(logits):
    """log p over the last axis, stable: logits - logsumexp(logits). (..., K) -> (..., K)."""
    # log sum_k exp(l_k) = m + log sum_k exp(l_k - m) with m = max_k l_k (a constant for the
    # gradient, since softmax is shift-invariant), so no exp can overflow.
    shifted = logits - getval(np.max(logits, axis=-1, keepdims=True))
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def cross_entropy(logits, targets):
    """Mean over cells of -log softmax(logits)[target], in nats. logits (..., K), targets (...) int."""
    num_codes = logits.shape[-1]
    # Pick log p[target] with a one-hot mask, not log_p[arange, targets]: autograd's VJP of
    # that gather scatters with np.add.at. sum / size keeps float32 gradients float32.
    one_hot = onp.asarray(targets)[..., None] == onp.arange(num_codes)   # (..., K) bool
    return -np.sum(log_softmax(logits) * one_hot) / one_hot[..., 0].size


def _prior_inputs(config, indices, codes):
    """Validate the target grid and return the network input for the configured mode."""
    indices = onp.asarray(indices)
    if indices.ndim != 3 or indices.dtype.kind not in "iu":
        raise ValueError(f"indices must be an integer grid (B, h, w), got {indices.dtype} {indices.shape}")
    if indices.size and (indices.min() < 0 or indices.max() >= config["num_codes"]):
        raise ValueError(f"indices must lie in [0, {config['num_codes']}), "
                         f"got range [{indices.min()}, {indices.max()}]")
    if config["input_mode"] == "embedding":
        return indices
    if codes is None:
        raise ValueError("this prior reads code vectors ('codes' mode): pass codes (B, h, w, d)")
    if onp.shape(codes) != indices.shape + (config["code_dim"],):
        raise ValueError(f"codes must have shape {indices.shape + (config['code_dim'],)} "
                         f"to match the indices, got {onp.shape(codes)}")
    return codes


def prior_loss(params, indices, codes=None, labels=None, dropout=0.0, rng=None):
    """Training loss: mean cross-entropy in nats of the target indices under the prior.

    indices: (B, h, w) int targets; codes: (B, h, w, d) float inputs ('codes' mode only,
    fixed data, no gradient); labels: (B,) int for a conditional prior.
    """
    config = config_from_params(params)
    inputs = _prior_inputs(config, indices, codes)
    return cross_entropy(pixelcnn_logits(params, inputs, labels, dropout, rng), indices)


def bits_per_code(params, indices, codes=None, labels=None, batch_size=500):
    """Held-out NLL in bits per code (nats / ln 2), evaluated in batches without dropout.

    Same arguments as `prior_loss`; returns a Python float.
    """
    total_nats, count = 0.0, 0
    for start in range(0, len(indices), batch_size):
        part = slice(start, start + batch_size)
        loss = prior_loss(params, indices[part], None if codes is None else codes[part],
                          None if labels is None else labels[part])
        total_nats += float(loss) * indices[part].size
        count += indices[part].size
    if count == 0:
        raise ValueError("bits_per_code needs at least one grid, got none")
    return total_nats / count / math.log(2.0)
