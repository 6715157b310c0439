"""Convolutional encoder and decoder, and the plain (continuous) autoencoder baseline.

The default is the reference VQ-VAE net for 28x28 MNIST (the DeepMind / PyTorch examples,
van den Oord et al. 2017 Sec. 4.1 scaled down):

    encoder  x (B, 28, 28, 1)
             conv4x4 s2 p1 (1->32), ReLU, conv4x4 s2 p1 (32->64), ReLU, conv3x3 p1 (64->64),
             2 x residual [ReLU, conv3x3 p1 (64->32), ReLU, conv1x1 (32->64), add],
             ReLU, conv1x1 (64->d)                                -> z_e (B, 7, 7, d)
    decoder  z (B, 7, 7, d)
             conv3x3 p1 (d->64), 2 x residual, ReLU,
             convT4x4 s2 p1 (64->32), ReLU, convT4x4 s2 p1 (32->1)  -> x_hat (B, 28, 28, 1)

The decoder output is linear, trained with the per-pixel MSE against x in [0, 1]. The plain
autoencoder feeds z_e straight to the decoder: the reconstruction a quantized bottleneck of
the same shape can at best reach. An input_shape (1, L, C) is a sequence: every k x k kernel
becomes (1, k) and every stride (1, s), so only L is halved (code grid 1 x L/2^n).
"""
from collections import namedtuple

import autograd.numpy as np
import numpy as onp

from .checks import check_config, check_images, check_vectors, merge_config
from .layers import Conv2d, ConvTranspose2d, Relu, Residual, serial

DEFAULT_CONFIG = {
    "input_shape": (28, 28, 1),   # (H, W, C) of one image
    "hidden": 64,                 # channels of the residual trunk
    "res_hidden": 32,             # bottleneck channels inside a residual block
    "num_res_blocks": 2,
    "num_downsamplings": 2,       # stride-2 convs: 28x28 -> 7x7 code grid
    "code_dim": 16,               # d, channels of z_e and of each codebook vector
}


def make_config(config=None, defaults=None, **overrides):
    """A complete, validated config dict: `defaults` <- `config` <- `overrides`; unknown keys
    raise ValueError (a typo must not silently fall back to a default)."""
    merged = merge_config(DEFAULT_CONFIG if defaults is None else defaults, config, overrides)
    merged["input_shape"] = tuple(int(n) for n in merged["input_shape"])
    if len(merged["input_shape"]) != 3:
        raise ValueError(f"input_shape must be (H, W, C), got {merged['input_shape']}")
    check_config(merged, at_least={"hidden": 1, "res_hidden": 1, "code_dim": 1, "num_res_blocks": 0,
                                   "num_downsamplings": 0})
    if merged["num_downsamplings"] > 1 and merged["hidden"] < 2:
        raise ValueError(f"hidden must be >= 2 with several downsamplings (they use hidden // 2 "
                         f"channels), got {merged['hidden']}")
    height, width, _ = merged["input_shape"]
    factor = 2 ** merged["num_downsamplings"]
    if (height % factor and height != 1) or width % factor:
        raise ValueError(f"input_shape {merged['input_shape']} must be divisible by 2**num_downsamplings "
                         f"= {factor} (a sequence (1, L, C): L) so that the decoder can return the input size")
    return merged


def is_sequence(config):
    """True for a (1, L, C) input_shape: a sequence, downsampled along L only."""
    return config["input_shape"][0] == 1


def _kernel(config, k, stride=1, padding=0):
    """(kernel, stride, padding) of a k x k conv, or of its (1, k) row form for a sequence."""
    if is_sequence(config):
        return (1, k), (1, stride), (0, padding)
    return k, stride, padding


def latent_shape(config):
    """(h, w, d) of z_e for one image: (H/2^n, W/2^n, d); (1, L/2^n, d) for a sequence."""
    height, width, _ = config["input_shape"]
    factor = 2 ** config["num_downsamplings"]
    return (1 if is_sequence(config) else height // factor, width // factor, config["code_dim"])


def _residual_stack(config):
    """num_res_blocks x [ReLU, conv3x3 (->res_hidden), ReLU, conv1x1 (->hidden), add], then ReLU."""
    blocks = [Residual(Relu, Conv2d(config["res_hidden"], *_kernel(config, 3, padding=1)),
                       Relu, Conv2d(config["hidden"], 1))
              for _ in range(config["num_res_blocks"])]
    return blocks + [Relu]


def Encoder(config):
    """Stax layer x (B, H, W, C) -> z_e (B, H/2^n, W/2^n, d); n = num_downsamplings
    conv4x4 s2 p1, each halving H and W: hidden/2 channels, the last `hidden`."""
    n, hidden = config["num_downsamplings"], config["hidden"]
    layers = []
    for i in range(n):
        layers += [Conv2d(hidden if i == n - 1 else hidden // 2, *_kernel(config, 4, 2, 1)), Relu]
    layers += [Conv2d(hidden, *_kernel(config, 3, padding=1))] + _residual_stack(config)
    layers += [Conv2d(config["code_dim"], 1)]
    return serial(*layers)


def Decoder(config):
    """Stax layer z (B, h, w, d) -> x_hat (B, h*2^n, w*2^n, C), linear output: the mirror of
    `Encoder`, n convT4x4 s2 p1, each doubling H and W: hidden/2 channels, the last C."""
    n, hidden = config["num_downsamplings"], config["hidden"]
    out_channels = config["input_shape"][2]
    layers = [Conv2d(hidden, *_kernel(config, 3, padding=1))] + _residual_stack(config)
    for i in range(n):
        last = i == n - 1
        layers += [ConvTranspose2d(out_channels if last else hidden // 2, *_kernel(config, 4, 2, 1))]
        layers += [] if last else [Relu]
    if n == 0:
        layers += [Conv2d(out_channels, 1)]   # no upsampling: project the trunk to C channels
    return serial(*layers)


def batched_mse(reconstruct, x, batch_size=500):
    """Per-pixel MSE of reconstruct(x_batch) against x over all of x, in batches (no gradients)."""
    check_images(x, name="x (the evaluation images)")     # also refuses an empty set (0/0)
    total = 0.0
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        total += float(onp.sum((onp.asarray(reconstruct(batch), onp.float64) - batch) ** 2))
    return total / x.size


def mse(x_hat, x):
    """Mean squared error per pixel, the reconstruction loss (log p(x|z) up to scale, Eq. 3)."""
    squared_error = (x_hat - x) ** 2
    # sum / size, not np.mean: autograd's mean VJP would upcast the float32 backward pass to float64.
    return np.sum(squared_error) / squared_error.size


Autoencoder = namedtuple("Autoencoder", ["config", "init", "loss_and_aux", "loss", "forward",
                                         "encode", "decode", "evaluate"])


def build_autoencoder(config=None):
    """The plain autoencoder: pure functions over params {'encoder': [...], 'decoder': [...]}.

    x: (B, H, W, C) float in [0, 1]; z_e: (B, h, w, d).
        init(rng) -> params;  loss(params, x) -> MSE;  forward(params, x) -> aux
        loss_and_aux(params, x) -> (MSE, aux {'z_e', 'recon', 'recon_mse', 'loss'})
        encode(params, x) -> z_e;  decode(params, z) -> recon (B, H, W, C)
        evaluate(params, x, batch_size=500) -> {'test_mse': per-pixel MSE over all of x}
    """
    config = make_config(config)
    enc_init, encoder = Encoder(config)
    dec_init, decoder = Decoder(config)

    def init(rng):
        z_shape, enc_params = enc_init(rng, config["input_shape"])
        _, dec_params = dec_init(rng, z_shape)
        return {"encoder": enc_params, "decoder": dec_params}

    def loss_and_aux(params, x):
        z_e = encode(params, x)                             # (B, h, w, d)
        recon = decoder(params["decoder"], z_e)             # (B, H, W, C)
        loss = mse(recon, x)
        return loss, {"z_e": z_e, "recon": recon, "recon_mse": loss, "loss": loss}

    def loss(params, x):
        return loss_and_aux(params, x)[0]

    def forward(params, x):
        return loss_and_aux(params, x)[1]

    def encode(params, x):
        return encoder(params["encoder"], check_images(x, config["input_shape"], value_range=(0, 1)))

    def decode(params, z):
        return decoder(params["decoder"], check_vectors(z, ("B",) + latent_shape(config), name="z"))

    def evaluate(params, x, batch_size=500):
        return {"test_mse": batched_mse(lambda xb: decode(params, encode(params, xb)), x, batch_size)}

    return Autoencoder(config, init, loss_and_aux, loss, forward, encode, decode, evaluate)

