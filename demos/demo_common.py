"""Helpers shared by the demos: pick display digits, get a grid VQ-VAE, measure coherence.

Not a demo itself; the numbered demos import it.
"""
import os

import numpy as onp

from minivq.checkpoint import load_checkpoint
from minivq.train import train
from minivq.vqvae import build_vqvae


def spread(n, total):
    """n indices spread evenly over range(total): the embedded digits are sorted by class."""
    return onp.linspace(0, total - 1, min(n, total)).round().astype(int)


def grid_vqvae(vqvae_run, steps, batch_size, lr, hidden, x_train, x_test, seed, out_dir, progress):
    """(model, params): loaded from a run folder (best.npz, else checkpoint.npz), or trained here."""
    if vqvae_run:
        path = os.path.join(vqvae_run, "best.npz")
        path = path if os.path.exists(path) else os.path.join(vqvae_run, "checkpoint.npz")
        ckpt = load_checkpoint(path)                              # FileNotFoundError if neither exists
        model = build_vqvae(ckpt["config"])
        if model.config["kind"] != "grid":
            raise ValueError(f"{path} holds a {model.config['kind']!r} VQ-VAE; this demo needs a 'grid' one")
        print(f"loaded the grid VQ-VAE from {path} (step {ckpt['step']})")
        return model, ckpt["params"]
    model = build_vqvae({"kind": "grid", "hidden": hidden, "res_hidden": hidden // 2})
    rng = onp.random.default_rng(seed)
    params = model.init(rng)
    result = train(model.loss_and_aux, params, x_train, steps, batch_size, lr, rng,
                   step_hook=model.step_hook, hook_state=model.init_state(params),
                   eval_fn=lambda p: model.evaluate(p, x_test), eval_every=max(steps, 1),
                   out_dir=out_dir, checkpoint_every=max(steps, 1), config=model.config,
                   progress=progress)
    return model, result.params


def unseen_pair_rate(grids, train_grids, num_codes):
    """Fraction of adjacent code pairs (right and below) in grids (N, h, w) that occur at that
    position in no training grid: near 0 for grids like the training ones."""
    unseen, total = 0, 0
    for pair_ids in (lambda g: g[:, :, :-1] * num_codes + g[:, :, 1:],     # (N, h, w-1) pair id a*K+b
                     lambda g: g[:, :-1, :] * num_codes + g[:, 1:, :]):    # (N, h-1, w)
        train_pairs = pair_ids(train_grids)
        rows, cols = onp.indices(train_pairs.shape[1:])                     # (h', w') each
        seen = onp.zeros(train_pairs.shape[1:] + (num_codes ** 2,), bool)  # (h', w', K^2)
        seen[rows, cols, train_pairs] = True
        unseen += int(onp.sum(~seen[rows, cols, pair_ids(grids)]))
        total += pair_ids(grids).size
    return unseen / total
