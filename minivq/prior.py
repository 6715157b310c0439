"""The prior over VQ-VAE code grids: config, build, loss, bits per code.

    prior = build_prior(make_config(num_codes=64))
    loss = prior.loss(prior.init(rng), indices)            # mean cross-entropy in nats

Input: a learned embedding of the indices ('embedding') or the VQ-VAE's fixed code vectors
('codes'), projected per cell to C channels (so no cells mix), then a causal body
(pixelcnn.PixelCNN, or gated_pixelcnn.GatedPixelCNN with gated=True), then a per-cell head
ReLU, conv 1x1, ReLU, conv 1x1 -> K logits.
"""
import math
from collections import namedtuple

import autograd.numpy as np
import numpy as onp
from autograd.tracer import getval

from .checks import check_config, check_indices, check_labels, check_vectors, merge_config
from .gated_pixelcnn import GatedPixelCNN
from .layers import Conv2d, Dense, Embedding, Relu, serial
from .pixelcnn import PixelCNN, causal_mask

DEFAULT_CONFIG = {
    "num_codes": 64,          # K, the VQ-VAE codebook size
    "code_dim": None,         # d, needed in 'codes' mode only
    "input_mode": "embedding",
    "channels": 64,
    "num_blocks": 6,          # residual blocks (plain) or gated layers after the first (gated)
    "first_kernel": 7,        # the mask-A layer: k or (kh, kw), odd; (1, k) for a 1 x L grid (sequences)
    "kernel": 3,              # the mask-B layers, the same
    "gated": False,
    "num_classes": None,      # class-conditional (gated only) when set
}
INPUT_MODES = ("embedding", "codes")

Prior = namedtuple("Prior", ["config", "init", "logits", "logits_from_embedded", "loss",
                             "bits_per_code"])


def make_config(**overrides):
    """DEFAULT_CONFIG updated with `overrides`, validated (ValueError on unknown keys or bad values)."""
    config = merge_config(DEFAULT_CONFIG, overrides)
    check_config(config, {"input_mode": INPUT_MODES}, {"num_codes": 1, "channels": 1, "num_blocks": 0})
    if config["input_mode"] == "codes" and not config["code_dim"]:
        raise ValueError("input_mode 'codes' needs code_dim, the VQ-VAE code vector size d")
    for key in ("first_kernel", "kernel"):
        try:
            causal_mask(config[key], "A")                            # odd kernel sizes k or (kh, kw) only
        except ValueError as error:
            raise ValueError(f"{key}: {error}") from None
    if config["num_classes"] is not None and not config["gated"]:
        raise ValueError("class conditioning (num_classes) is implemented by the gated PixelCNN; "
                         "set gated=True")
    return config


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


def build_prior(config=None):
    """The prior as a namedtuple of pure functions over params {'input', 'body', 'head'}.

    indices: (B, h, w) int in [0, K); codes: (B, h, w, d) = codebook[indices] ('codes' mode);
    labels: (B,) int for a conditional prior; dropout > 0 needs a Generator rng (training).
        init(rng) -> params (float32)
        logits(params, inputs, labels=None, dropout=0.0, rng=None) -> (B, h, w, K)
        logits_from_embedded(params, e, labels=None) -> logits of the projected input e (B, h, w, C)
        loss(params, indices, codes=None, labels=None, dropout=0.0, rng=None) -> nats
        bits_per_code(params, indices, codes=None, labels=None, batch_size=500) -> float
    """
    config = make_config(**(config or {}))
    channels, num_codes, code_dim = config["channels"], config["num_codes"], config["code_dim"]
    embedding = config["input_mode"] == "embedding"
    project_init, project = Embedding(num_codes, channels) if embedding else Dense(channels)
    if config["gated"]:
        body_init, body = GatedPixelCNN(channels, config["num_blocks"], config["first_kernel"],
                                        config["kernel"], config["num_classes"])
    else:
        body_init, plain_body = PixelCNN(channels, config["num_blocks"], config["first_kernel"],
                                         config["kernel"])

        def body(params, e, labels=None):
            return plain_body(params, e)                               # unconditional: labels unused
    head_init, head = serial(Relu, Conv2d(channels, 1), Relu, Conv2d(num_codes, 1))

    def init(rng):
        # Params do not depend on the grid size ('same' padding), so a nominal 1x1 grid will do.
        shape, input_params = project_init(rng, (1, 1) if embedding else (1, 1, code_dim))
        shape, body_params = body_init(rng, shape)
        _, head_params = head_init(rng, shape)
        return {"input": input_params, "body": body_params, "head": head_params}

    def logits_from_embedded(params, e, labels=None, dropout=0.0, rng=None):
        labels = check_labels(config, labels, onp.shape(e)[0])
        features = body(params["body"], e, labels)                     # (B, h, w, C)
        if rng is not None and dropout > 0:
            # Inverted dropout, per cell and channel: cannot mix cells, so causality holds.
            keep = rng.random(features.shape) >= dropout
            features = features * (keep / (1.0 - dropout)).astype(features.dtype)
        return head(params["head"], features)                          # (B, h, w, K)

    def logits(params, inputs, labels=None, dropout=0.0, rng=None):
        if embedding:
            check_indices(inputs, num_codes, ("B", "h", "w"))
        else:
            check_vectors(inputs, ("B", "h", "w", code_dim), name="codes")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        e = project(params["input"], inputs)                           # (B, h, w, C)
        return logits_from_embedded(params, e, labels, dropout, rng)

    def loss(params, indices, codes=None, labels=None, dropout=0.0, rng=None):
        indices = check_indices(indices, num_codes, ("B", "h", "w"))
        if embedding:
            return cross_entropy(logits(params, indices, labels, dropout, rng), indices)
        if codes is None:
            raise ValueError("this prior reads code vectors ('codes' mode): pass codes (B, h, w, d)")
        check_vectors(codes, indices.shape + (code_dim,), name="codes")
        return cross_entropy(logits(params, codes, labels, dropout, rng), indices)

    def bits_per_code(params, indices, codes=None, labels=None, batch_size=500):
        if onp.size(indices) == 0:
            raise ValueError("bits_per_code needs at least one grid, got none")
        total_nats = 0.0
        for start in range(0, len(indices), batch_size):
            part = slice(start, start + batch_size)
            nats = loss(params, indices[part], None if codes is None else codes[part],
                        None if labels is None else labels[part])
            total_nats += float(nats) * indices[part].size
        return total_nats / onp.size(indices) / math.log(2.0)

    return Prior(config, init, logits, logits_from_embedded, loss, bits_per_code)
