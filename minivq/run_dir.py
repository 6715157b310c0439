"""A run directory: where each pipeline step finds its inputs, and the guards around them.

    RUN/vqvae/       config.json, checkpoint.npz, best.npz, history.json   train_vqvae
    RUN/flat_vqvae/  the same for a kind='flat' VQ-VAE (one code per image)
    RUN/codes/       train.npz, test.npz (CodeGrids), source.json          encode
    RUN/prior/       config.json, checkpoint.npz, best.npz, history.json   train_prior
    RUN/figures/     *.png                                                 every step
    RUN/samples/     <name>.png (decoded grid), <name>.npy (code indices)  sample

Downstream steps use best.npz (the best held-out metric), or checkpoint.npz if there is
none. codes/source.json and prior/config.json record the SHA-256 of the VQ-VAE
checkpoint the codes came from, so a prior is never silently paired with a VQ-VAE
trained further since. `prepare` guards a training folder: a new run never silently
replaces an old one, and a resumed run keeps its settings.
"""
import hashlib
import os
from collections import namedtuple

from .checkpoint import load_checkpoint
from .codes import load_code_grids
from .files import as_stored, read_json
from .vqvae import build_vqvae

MODEL_DIRS = {"grid": "vqvae", "flat": "flat_vqvae"}
RUN_FILES = ("config.json", "checkpoint.npz", "best.npz", "history.json")

Trained = namedtuple("Trained", ["model", "params", "path", "sha256", "step"])


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def trained_path(run, folder, what, command):
    """Path of RUN/folder/best.npz (else checkpoint.npz), or FileNotFoundError saying how to make it."""
    directory = os.path.join(run, folder)
    for name in ("best.npz", "checkpoint.npz"):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    if not os.path.isdir(run):
        raise FileNotFoundError(f"no run directory {run}: run `minivq train-vqvae --out {run}` "
                                f"first (or pass the right --run)")
    raise FileNotFoundError(f"no trained {what} in {run} (expected {directory}/best.npz): "
                            f"run `{command.format(run=run)}` first")


def load_vqvae(run_dir, kind="grid"):
    """Trained(model, params, path, sha256, step): the run's best VQ-VAE of this kind."""
    command = "minivq train-vqvae --out {run}" + (" --kind flat" if kind == "flat" else "")
    path = trained_path(run_dir, MODEL_DIRS[kind], f"{kind} VQ-VAE", command)
    ckpt = load_checkpoint(path)
    return Trained(build_vqvae(ckpt["config"]), ckpt["params"], path, file_sha256(path), ckpt["step"])


def run_config(trained):
    """The config.json record next to a Trained checkpoint."""
    return read_json(os.path.join(os.path.dirname(trained.path), "config.json"), "run config")


def load_codes(run_dir):
    """(train CodeGrids, test CodeGrids, source record) written by `encode`."""
    folder = os.path.join(run_dir, "codes")
    if not os.path.isfile(os.path.join(folder, "source.json")):
        raise FileNotFoundError(f"no code grids in {run_dir} (expected {folder}/train.npz): "
                                f"run `minivq encode --run {run_dir}` first")
    return (load_code_grids(os.path.join(folder, "train.npz")),
            load_code_grids(os.path.join(folder, "test.npz")),
            read_json(os.path.join(folder, "source.json"), "record of the encoded VQ-VAE"))


def check_same_vqvae(recorded, current, what, fix):
    if recorded != current:
        raise ValueError(f"{what} was made from another VQ-VAE checkpoint than the current one "
                         f"(it has been retrained since): {fix}")


def differences(old, new, prefix=""):
    """[(dotted key, old value, new value)] where two JSON-like dicts differ."""
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changes += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            changes.append((prefix + key, a, b))
    return changes


def prepare(directory, settings, resume, force, what, command):
    """Check the run folder before training; returns the saved config.json record or None.

    A folder that already holds a run needs resume=True (continue it, with the same
    settings) or force=True (its run files are deleted and training starts over).
    """
    saved_path = os.path.join(directory, "config.json")
    if not os.path.isfile(saved_path):
        return None
    saved = read_json(saved_path, "run config")
    if resume:
        changed = differences({key: saved.get(key) for key in settings}, as_stored(settings))
        if changed:
            detail = ", ".join(f"{key} {old} -> {new}" for key, old, new in changed)
            raise ValueError(f"cannot resume {directory} with other settings ({detail}): resume "
                             f"with the same options, or start over with --force")
        return saved
    if not force:
        raise ValueError(f"{directory} already holds a {what}: pass --resume to continue it, "
                         f"--force to start it over, or choose another run directory "
                         f"(`{command}`)")
    for name in RUN_FILES:
        if os.path.exists(os.path.join(directory, name)):
            os.remove(os.path.join(directory, name))
    return None
