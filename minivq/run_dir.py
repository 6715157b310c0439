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
replaces an old one, a resumed run keeps its settings, and --force replaces the old run
only once the new one has written its first checkpoint.
"""
import contextlib
import hashlib
import os
import shutil
from collections import namedtuple

import numpy as onp

from .checkpoint import load_checkpoint
from .codes import load_code_grids
from .files import as_stored, read_json
from .vqvae import build_vqvae

MODEL_DIRS = {"grid": "vqvae", "flat": "flat_vqvae"}
RUN_FILES = ("config.json", "checkpoint.npz", "best.npz", "history.json")
REPLACED = ".replaced"         # where --force keeps the old run until the new one has a checkpoint

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
    ckpt = load_checkpoint(path, model="vqvae")
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


def data_sha256(dataset):
    """SHA-256 over the dtype, shape and bytes of a Dataset's train and test images."""
    digest = hashlib.sha256()
    for x in (dataset.x_train, dataset.x_test):
        digest.update(f"{x.dtype.str} {x.shape}".encode())
        digest.update(onp.ascontiguousarray(x).tobytes())
    return digest.hexdigest()


def check_same_data(recorded, dataset, spec, directory, run_dir):
    """ValueError if the images of `spec` are not those the model in `directory` was trained on."""
    if recorded is not None and recorded != data_sha256(dataset):
        raise ValueError(f"the images of {spec} have changed since the model in {directory} was "
                         f"trained on them (data SHA-256 recorded in its config.json differs): "
                         f"restore them, or train again (`minivq train-vqvae --out {run_dir} --force`)")


def resolve(passed, saved, defaults):
    """Settings: each passed value (not None), else the run's saved one, else the default."""
    return {key: passed[key] if passed.get(key) is not None else saved.get(key, default)
            for key, default in defaults.items()}


def _restore_replaced(directory):
    """Put back the run that --force moved aside, removing what the new run wrote."""
    backup = os.path.join(directory, REPLACED)
    for name in RUN_FILES:
        if os.path.exists(os.path.join(directory, name)):
            os.remove(os.path.join(directory, name))
    for name in os.listdir(backup):
        os.replace(os.path.join(backup, name), os.path.join(directory, name))
    os.rmdir(backup)


def _settle_replaced(directory):
    """After a crash mid --force: keep the new run if it has a checkpoint, else the old one."""
    if os.path.isdir(os.path.join(directory, REPLACED)):
        if os.path.isfile(os.path.join(directory, "checkpoint.npz")):
            shutil.rmtree(os.path.join(directory, REPLACED))
        else:
            _restore_replaced(directory)


def prepare(directory, settings, resume, force, what, command, allow_new_settings=False):
    """Check the run folder before training; returns the saved config.json record or None.

    A folder that already holds a run needs resume=True (continue it: every setting but
    `steps` must match the saved ones unless allow_new_settings) or force=True (its run
    files are moved to RUN/<step>/.replaced and come back if the new run fails before
    its first checkpoint; see `replacing`). Nothing is deleted here.
    """
    _settle_replaced(directory)
    saved_path = os.path.join(directory, "config.json")
    if resume:
        if not os.path.isfile(os.path.join(directory, "checkpoint.npz")):
            raise FileNotFoundError(f"cannot resume: {directory} holds no checkpoint.npz (no "
                                    f"{what} was saved there); start it without --resume")
        saved = read_json(saved_path, "run config")
        changed = [change for change in differences(
            {key: saved.get(key) for key in settings}, as_stored(settings)) if change[0] != "steps"]
        if changed and not allow_new_settings:
            detail = ", ".join(f"{key} {old} -> {new}" for key, old, new in changed)
            raise ValueError(f"cannot resume {directory} with other settings ({detail}): resume "
                             f"with the run's own options (the ones not given are taken from "
                             f"its config.json), state the change with --allow-new-settings, or "
                             f"start over with --force")
        return saved
    present = [name for name in RUN_FILES if os.path.exists(os.path.join(directory, name))]
    if not present:
        return None
    if not force:
        raise ValueError(f"{directory} already holds a {what}: pass --resume to continue it, "
                         f"--force to start it over, or choose another run directory "
                         f"(`{command}`)")
    backup = os.path.join(directory, REPLACED)
    os.makedirs(backup)
    for name in present:
        os.replace(os.path.join(directory, name), os.path.join(backup, name))
    return None


@contextlib.contextmanager
def replacing(directory):
    """Around a training run: the run that --force moved aside comes back if the new one
    stops before writing its first checkpoint, and is deleted once it has one."""
    try:
        yield
    except BaseException as error:
        if os.path.isdir(os.path.join(directory, REPLACED)) and \
                not os.path.isfile(os.path.join(directory, "checkpoint.npz")):
            _restore_replaced(directory)
            if isinstance(error, KeyboardInterrupt):
                raise KeyboardInterrupt(f"{error}; the previous run in {directory} is restored") from None
        raise
    finally:
        _settle_replaced(directory)
