"""What each speed measure in minivq buys: the same training step with one measure switched off.

    python -m bench.ablations [--rounds 8] [--steps 4] [--batch 128]

Every variant runs in this one process, and the variants take turns: each round runs
`--steps` timed steps of every variant (after one untimed step), so a slow spell of the
machine hits all of them alike. The table gives the median over rounds of each round's
median step time, and the minor page faults per step (getrusage), for:

    vqvae / prior                  the reference models as they are (minivq defaults: the
                                   fast backend, minivq/fast_conv.py)
    vqvae / prior, fresh arrays    conv temporaries (padded input, im2col rows, GEMM
                                   products) allocated anew instead of in fast_conv's
                                   per-thread scratch buffers (scratch_buffers=False)
    prior, full masked kernels     the PixelCNN's causal kernels convolved whole (zeros
                                   included) instead of cropped to the rows the mask keeps
    vqvae / prior, separate VJPs   conv2d's x and w gradients each on their own (x's windows
                                   gathered for dw, g's for dx) instead of both from one
                                   gather of g (shared_dw="never")
    vqvae, always shared dw        both from one gather of g for every conv that takes the
                                   gather path, also where dw then needs more multiplies
                                   (the encoder's 4x4 stride-2 conv; shared_dw="always",
                                   i.e. without the fast_conv.shared_dw_is_cheaper rule)
    vqvae / prior, plain backend   minivq/conv.py, the textbook primitives, instead of
                                   fast_conv (minivq.use_backend("plain")): what the fast
                                   path buys in all
    vqvae / prior, chunk N KiB     im2col batch chunks of N KiB instead of the default
    encode                         vqvae.encode of 500 digits (no gradients; fast_forward)
    encode, training chunks        the same with training's im2col chunks instead of the
                                   forward pass's (fast_forward.FORWARD_CHUNK_BYTES)

The conv settings are fast_conv's public knobs, changed with fast_conv.configured(...).
The scratch buffers matter most where no other work has taught glibc to keep freed
memory: a process that only trains. So the script ends by timing VQ-VAE training steps in
fresh processes, alternately with and without the buffers, with their page faults and
system time (`--process-variant` runs one of them).

No torch needed: this compares minivq with itself.
"""
import argparse
import resource
import statistics
import subprocess
import sys
import time

import numpy as onp

import minivq
from bench.bench_train import minivq_train_step
from minivq import fast_conv, fast_forward, pixelcnn
from minivq.prior import build_prior
from minivq.data import load_mnist_embedded
from minivq.vqvae import build_vqvae

NUM_CODES = 64
CHUNK_KIB = (512, 8192, 32768)   # the default is 2048


def prior_step(params, crop):
    """A prior training step on a network built with or without the masked-kernel crop."""
    original = pixelcnn._mask_crop
    if not crop:
        pixelcnn._mask_crop = lambda *args: None
    try:
        prior = build_prior({"num_codes": NUM_CODES})
    finally:
        pixelcnn._mask_crop = original
    return minivq_train_step(lambda p, grids: (prior.loss(p, grids), {}), params)


def with_settings(step, backend="fast", **changes):
    """step wrapped so that it runs on `backend` with fast_conv.SETTINGS changed by `changes`
    (chunk_bytes, scratch_buffers, shared_dw), restored afterwards."""
    def run(batch):
        with minivq.use_backend(backend), fast_conv.configured(**changes):
            step(batch)
    return run


def training_chunks(encode):
    """encode wrapped so that its forward pass uses training's im2col chunks (fast_conv.SETTINGS)."""
    def run(x):
        saved = fast_forward.FORWARD_CHUNK_BYTES
        fast_forward.FORWARD_CHUNK_BYTES = fast_conv.SETTINGS["chunk_bytes"]
        try:
            encode(x)
        finally:
            fast_forward.FORWARD_CHUNK_BYTES = saved
    return run


def main(rounds=8, steps=4, batch=128):
    rng = onp.random.default_rng(0)
    model = build_vqvae()
    images = load_mnist_embedded().x_train[:batch]
    grids = rng.integers(0, NUM_CODES, (batch, 7, 7))
    prior_params = build_prior({"num_codes": NUM_CODES}).init(rng)
    vqvae_params = model.init(rng)
    vqvae_step = minivq_train_step(model.loss_and_aux, vqvae_params)
    cropped_prior = prior_step(prior_params, crop=True)
    variants = {
        "vqvae": (vqvae_step, images),
        "vqvae, fresh arrays": (with_settings(vqvae_step, scratch_buffers=False), images),
        "prior": (cropped_prior, grids),
        "prior, fresh arrays": (with_settings(cropped_prior, scratch_buffers=False), grids),
        "prior, full masked kernels": (prior_step(prior_params, crop=False), grids),
        "vqvae, separate VJPs": (with_settings(vqvae_step, shared_dw="never"), images),
        "prior, separate VJPs": (with_settings(cropped_prior, shared_dw="never"), grids),
        "vqvae, always shared dw": (with_settings(vqvae_step, shared_dw="always"), images),
        "vqvae, plain backend": (with_settings(vqvae_step, backend="plain"), images),
        "prior, plain backend": (with_settings(cropped_prior, backend="plain"), grids),
    }
    encode_images = load_mnist_embedded().x_train[:500]
    variants["encode"] = (lambda x: model.encode(vqvae_params, x), encode_images)
    variants["encode, training chunks"] = (training_chunks(lambda x: model.encode(vqvae_params, x)),
                                           encode_images)
    for kib in CHUNK_KIB:
        variants[f"vqvae, chunk {kib} KiB"] = (with_settings(vqvae_step, chunk_bytes=kib << 10), images)
        variants[f"prior, chunk {kib} KiB"] = (with_settings(cropped_prior, chunk_bytes=kib << 10), grids)
    times = {name: [] for name in variants}
    faults = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (step, data) in variants.items():
            step(data)                                            # untimed: warm caches and threads
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            seconds = []
            for _ in range(steps):
                start = time.perf_counter()
                step(data)
                seconds.append(time.perf_counter() - start)
            faults[name].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps)
            times[name].append(statistics.median(seconds))
    print(f"batch {batch}, float32, medians over {rounds} rounds of {steps} steps; "
          f"default chunk {fast_conv.SETTINGS['chunk_bytes'] >> 10} KiB")
    print(f"{'variant':<30} {'ms/step':>9} {'vs default':>11} {'page faults/step':>17}")
    for name in variants:
        default = name.split(",")[0]
        ms = statistics.median(times[name]) * 1e3
        ratio = ms / (statistics.median(times[default]) * 1e3)
        print(f"{name:<30} {ms:>9.1f} {ratio:>11.2f} {statistics.median(faults[name]):>17.0f}")


def process_variant(name, steps=15, batch=128):
    """VQ-VAE training steps in this (fresh) process, with ('scratch') or without ('fresh')
    the scratch buffers; prints page faults, system time and the median step."""
    if name == "fresh":
        fast_conv.SETTINGS["scratch_buffers"] = False
    model = build_vqvae()
    step = minivq_train_step(model.loss_and_aux, model.init(onp.random.default_rng(0)))
    images = load_mnist_embedded().x_train[:batch]
    for _ in range(3):
        step(images)
    before, seconds = resource.getrusage(resource.RUSAGE_SELF), []
    for _ in range(steps):
        start = time.perf_counter()
        step(images)
        seconds.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{'vqvae, own process, ' + name:<30} {statistics.median(seconds) * 1e3:>9.1f} "
          f"{'':>11} {(after.ru_minflt - before.ru_minflt) / steps:>17.0f}   "
          f"system time {(after.ru_stime - before.ru_stime) * 1e3 / steps:.1f} ms/step")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--process-variant", choices=["scratch", "fresh"])
    args = parser.parse_args()
    if args.process_variant:
        process_variant(args.process_variant, batch=args.batch)
    else:
        main(args.rounds, args.steps, args.batch)
        for _ in range(2):
            for name in ("scratch", "fresh"):
                subprocess.run([sys.executable, "-m", "bench.ablations", "--process-variant", name,
                                "--batch", str(args.batch)], check=True)
