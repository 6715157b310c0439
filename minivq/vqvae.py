"""The VQ-VAE (van den Oord et al. 2017, arXiv 1711.00937): encoder, quantizer, decoder.

    x (B, H, W, C) -> encoder -> z_e (B, h, w, d) -> quantize -> indices (B, h, w), z_q
                   -> decoder -> recon (B, H, W, C)

config['kind']: 'grid' (the paper's: one code per cell of the h x w grid, 7x7 for 28x28)
or 'flat' (one code per image: flatten, Dense to d, quantize, Dense back; a 1x1 "grid").
The loss is paper Eq. 3 with an MSE reconstruction term weighted by config['recon_weight']:

    loss = recon_weight * mean (recon - x)^2 + |sg[z_e] - e|^2 + beta |z_e - sg[e]|^2

Under Adam (invariant to scaling the loss) a weight s trains like beta / s. With
config['codebook_update'] = 'ema' the codebook term is dropped: the codebook follows moving
averages of its encoder outputs (App. A.1), in `step_hook` (codebook.codebook_care).
"""
from collections import namedtuple

import numpy as onp

from . import backend
from .autoencoder import DEFAULT_CONFIG, Decoder, Encoder, batched_mse, latent_shape, make_config, mse
from .checks import check_config, check_images, check_indices, check_vectors
from .codebook import codebook_care, init_codebook_from_batch  # noqa: F401 (init_codebook_from_batch: callers')
from .layers import Dense, Flatten, Reshape, serial
from .quantize import VectorQuantizer, perplexity, quantize, used_codes

VQVAE_DEFAULTS = dict(
    DEFAULT_CONFIG,
    kind="grid",              # 'grid': (h, w) codes per image; 'flat': one code per image
    num_codes=64,             # K
    beta=0.25,                # commitment weight, the paper's value (Sec. 3.2)
    recon_weight=1.0,         # weight of the reconstruction term; under Adam ~ beta / recon_weight
    codebook_update="grad",   # 'grad': codebook loss + Adam; 'ema': moving averages (App. A.1)
    ema_decay=0.99,           # gamma of App. A.1 (the paper's value)
    ema_eps=1e-5,             # Laplace smoothing of the EMA cluster sizes
    restart_after=0,          # re-seed a code unused for this many batches; 0 = never
    codebook_init="uniform",  # 'uniform' +-1/K, or from a batch: 'random', 'kmeans++', 'kmeans'
)

VQVAE = namedtuple("VQVAE", ["config", "init", "loss_and_aux", "loss", "forward", "encode",
                             "decode", "decode_indices", "evaluate", "init_state", "step_hook"])


def make_vqvae_config(config=None, **overrides):
    """A complete, validated VQ-VAE config: VQVAE_DEFAULTS <- config <- overrides."""
    config = make_config(config, defaults=VQVAE_DEFAULTS, **overrides)
    check_config(config, {"kind": ("grid", "flat"), "codebook_update": ("grad", "ema"),
                          "codebook_init": ("uniform", "random", "kmeans++", "kmeans")},
                 {"num_codes": 1, "beta": 0.0, "restart_after": 0, "ema_eps": 0.0})
    if not (0 < config["recon_weight"] < float("inf") and 0.0 <= config["ema_decay"] <= 1.0):
        raise ValueError(f"need recon_weight > 0 (1 is the paper's loss) and 0 <= ema_decay <= 1, "
                         f"got {config['recon_weight']}, {config['ema_decay']}")
    return config


def code_grid_shape(config):
    """(h, w) of the code grid for one image: (H/2^n, W/2^n) for 'grid', (1, 1) for 'flat'."""
    return latent_shape(config)[:2] if config["kind"] == "grid" else (1, 1)


def _networks(config):
    """(encoder, decoder) stax layers mapping x <-> z of shape (B, h, w, d)."""
    if config["kind"] == "grid":
        return Encoder(config), Decoder(config)
    d = config["code_dim"]
    trunk_shape = latent_shape(config)                       # (h, w, d) of the conv trunk
    encoder = serial(Encoder(config), Flatten(), Dense(d), Reshape((1, 1, d)))
    decoder = serial(Flatten(), Dense(int(onp.prod(trunk_shape))), Reshape(trunk_shape),
                     Decoder(config))
    return encoder, decoder


def build_vqvae(config=None):
    """The VQ-VAE as a namedtuple of pure functions over params
    {'encoder': [...], 'quantizer': {'codebook': (K, d)}, 'decoder': [...]}.

    x: (B, H, W, C) float in [0, 1]; indices: (B, h, w) int64; codes: (B, h, w, d).
        init(rng) -> params;  loss(params, x);  forward(params, x) -> aux
        loss_and_aux(params, x) -> (loss, aux {z_e, z_q, indices, recon, loss, recon_mse,
            codebook_loss, commitment_loss, perplexity, used_codes})
        encode(params, x) -> (indices, codes);  decode(params, codes), decode_indices(params, indices) -> recon
        evaluate(params, x, batch_size=500) -> {'test_mse', 'perplexity', 'used_codes'}
        init_state, step_hook: codebook care for train.train (codebook.codebook_care)
    """
    config = make_vqvae_config(config)
    (enc_init, encoder), (dec_init, decoder) = _networks(config)
    num_codes, beta, ema = config["num_codes"], config["beta"], config["codebook_update"] == "ema"
    recon_weight, grid = config["recon_weight"], code_grid_shape(config)
    init_state, step_hook = codebook_care(config)

    def init(rng):
        z_shape, enc_params = enc_init(rng, config["input_shape"])
        _, quantizer_params = VectorQuantizer(num_codes, config["code_dim"], beta)[0](rng, z_shape)
        _, dec_params = dec_init(rng, z_shape)
        return {"encoder": enc_params, "quantizer": quantizer_params, "decoder": dec_params}

    def loss_and_aux(params, x):
        check_images(x, config["input_shape"], value_range=(0, 1))
        z_e = encoder(params["encoder"], x)                          # (B, h, w, d)
        q = quantize(params["quantizer"]["codebook"], z_e, beta)
        recon = decoder(params["decoder"], q.z_q)                    # (B, H, W, C)
        recon_mse = mse(recon, x)
        # Eq. 3; with the EMA codebook (App. A.1) the codebook term is dropped
        loss = recon_weight * recon_mse + (beta * q.commitment_loss if ema else q.vq_loss)
        aux = {"z_e": z_e, "z_q": q.z_q, "indices": q.indices, "recon": recon, "loss": loss,
               "recon_mse": recon_mse, "codebook_loss": q.codebook_loss,
               "commitment_loss": q.commitment_loss, "perplexity": perplexity(q.indices, num_codes),
               "used_codes": used_codes(q.indices, num_codes)}
        return loss, aux

    def loss(params, x):
        return loss_and_aux(params, x)[0]

    def forward(params, x):
        return loss_and_aux(params, x)[1]

    def encode(params, x):
        # Forward only: the backend's forward-pass settings and nearest codes (plain: the
        # layers as in training and quantize.nearest_codes; fast: minivq/fast_forward.py).
        codebook = params["quantizer"]["codebook"]
        with backend.inference():
            z_e = encoder(params["encoder"], check_images(x, config["input_shape"], value_range=(0, 1)))
        indices = backend.nearest_codes(codebook, z_e)               # (B, h, w) int64
        return indices, codebook[indices]                            # (B, h, w, d)

    def decode(params, codes):
        code_shape = ("B",) + grid + (config["code_dim"],)
        return decoder(params["decoder"], check_vectors(codes, code_shape, name="codes"))

    def decode_indices(params, indices):
        indices = check_indices(indices, num_codes, ("B",) + grid)
        return decode(params, params["quantizer"]["codebook"][indices])   # (B, h, w, d) gather

    def evaluate(params, x, batch_size=500):
        all_indices = []

        def reconstruct(batch):
            indices, codes = encode(params, batch)
            all_indices.append(indices)
            with backend.inference():
                return decode(params, codes)

        test_mse = batched_mse(reconstruct, x, batch_size)
        all_indices = onp.concatenate(all_indices)
        return {"test_mse": test_mse, "perplexity": perplexity(all_indices, num_codes),
                "used_codes": used_codes(all_indices, num_codes)}

    return VQVAE(config, init, loss_and_aux, loss, forward, encode, decode, decode_indices,
                 evaluate, init_state, step_hook)
