"""Save and load parameter trees and training checkpoints as plain .npz files.

A file holds one array per leaf under a path-like name ('params/encoder/0/w') and two
unicode-string records: '__minivq__' (JSON: format, version, kind, the container structure
of every tree, config, step) and '__minivq_sha256__' (a digest of that JSON and of every
array's name, dtype, shape and bytes). Pickle is never used: any array NumPy stores without
it (float, int, uint, bool, unicode; 0-d too) round-trips bit-exactly.

Writes are atomic (`files.atomic_open`): a crash never leaves a half-written checkpoint.
Loading checks the record, the version and the digest, and raises CheckpointError (a
ValueError) otherwise.

    extra = {"rng": onp.array(rng_state_to_json(rng))}     # the random stream, as text
    save_checkpoint("ckpt.npz", params, opt_state, config={"lr": 1e-3}, step=100, extra=extra)
    ckpt = load_checkpoint("ckpt.npz")                      # dict(params, opt_state, ...)
    rng = rng_from_json(ckpt["extra"]["rng"])               # continues the same draws
"""
import hashlib
import json
import operator
import os
import zipfile

import numpy as onp

from minivq.files import as_stored, atomic_open
from minivq.tree import tree_flatten_with_paths

FORMAT, VERSION = "minivq", 1
META_KEY, DIGEST_KEY = "__minivq__", "__minivq_sha256__"
CHECKPOINT_TREES = ("params", "opt_state", "extra")


class CheckpointError(ValueError):
    """The file is not an intact minivq file of the expected kind and format version."""


def _structure(tree):
    """JSON record of the containers of `tree`: {'dict': {...}}, {'list': [...]}, 'array'."""
    if isinstance(tree, dict):
        return {"dict": {key: _structure(child) for key, child in tree.items()}}
    if isinstance(tree, (list, tuple)):
        return {type(tree).__name__: [_structure(child) for child in tree]}
    return "array"


def _rebuild(structure, arrays, path):
    """Inverse of `_structure`: the leaf at `path` is arrays['/'.join(path)]."""
    if structure == "array":
        return arrays["/".join(path)]
    (kind, children), = structure.items()
    if kind == "dict":
        return {key: _rebuild(child, arrays, path + [key]) for key, child in children.items()}
    return {"list": list, "tuple": tuple}[kind](
        _rebuild(child, arrays, path + [str(index)]) for index, child in enumerate(children))


def _flatten(name, tree):
    """{'name/encoder/0/w': array} for every leaf of `tree` ('name' alone for a bare array)."""
    try:
        pairs = tree_flatten_with_paths(tree)
    except ValueError as err:
        raise ValueError(f"cannot save {name}: {err}") from err
    arrays = {}
    for path, leaf in pairs:
        key, array = (f"{name}/{path}" if path else name), onp.asarray(leaf)
        if array.dtype.hasobject:
            raise TypeError(f"cannot save {key}: expected a numeric, bool or str array, got "
                            f"{type(leaf).__name__} (object dtype would need pickle)")
        arrays[key] = array
    return arrays


def _digest(meta_text, arrays):
    """SHA-256 over the JSON record and each array's name, dtype, shape and bytes."""
    sha = hashlib.sha256(meta_text.encode("utf-8") + b"\n")
    for key in sorted(arrays):
        array = arrays[key]
        sha.update(json.dumps([key, array.dtype.str, list(array.shape)]).encode("utf-8") + b"\n")
        sha.update(onp.ascontiguousarray(array).tobytes())
    return sha.hexdigest()


def _write(path, kind, trees, config=None, step=0, model=None):
    """Atomically write `trees` ({name: tree or None}) and the record to exactly `path`."""
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
    try:
        json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise type(err)("config must be JSON-serialisable (str, int, float, bool, None, "
                        f"lists and dicts with str keys), got: {err}") from err
    try:
        step = operator.index(step)
    except TypeError as err:
        raise TypeError(f"step must be an integer, got {step!r}") from err
    arrays = {}
    for name, tree in trees.items():
        arrays.update(_flatten(name, tree) if tree is not None else {})
    named = {} if model is None else {"model": model}     # files of unnamed trees stay as before
    meta_text = json.dumps({"format": FORMAT, "version": VERSION, "kind": kind, "step": step,
                            "config": config, **named, "structure": {name: _structure(tree) for name,
                            tree in trees.items() if tree is not None}}, allow_nan=False)
    records = {META_KEY: onp.array(meta_text), DIGEST_KEY: onp.array(_digest(meta_text, arrays))}
    with atomic_open(path) as f:
        onp.savez(f, allow_pickle=False, **arrays, **records)


def _read(path, kind):
    """(record, {name: tree}) from a verified minivq file of `kind`; else CheckpointError."""
    path, arrays = os.fspath(path), None
    with open(path, "rb") as file:  # a missing path raises FileNotFoundError naming it
        try:
            loaded = onp.load(file, allow_pickle=False)
            if isinstance(loaded, onp.lib.npyio.NpzFile):
                with loaded:
                    arrays = {key: loaded[key] for key in loaded.files}
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as err:
            reason = "" if "pickle" in str(err) else f": {err}"   # never numpy's "load it unsafely"
            raise CheckpointError(f"{path}: expected a minivq .npz file, but it cannot be read "
                                  f"as plain arrays (truncated, corrupted or not a checkpoint?)"
                                  f"{reason}") from None
    if arrays is None or META_KEY not in arrays or DIGEST_KEY not in arrays:
        raise CheckpointError(f"{path} is not a minivq file: expected an .npz with "
                              f"'{META_KEY}' and '{DIGEST_KEY}' records")
    try:
        meta_text, digest = str(arrays.pop(META_KEY)[()]), str(arrays.pop(DIGEST_KEY)[()])
        meta = json.loads(meta_text)
        format_version = (meta["format"], meta["version"])
    except (ValueError, TypeError, KeyError, IndexError) as err:
        raise CheckpointError(f"{path}: garbled minivq record: {err}") from err
    if format_version != (FORMAT, VERSION):
        raise CheckpointError(f"{path}: expected format {(FORMAT, VERSION)}, got {format_version}")
    if _digest(meta_text, arrays) != digest:
        raise CheckpointError(f"{path}: SHA-256 checksum mismatch, the file is corrupted")
    if meta.get("kind") != kind:
        raise CheckpointError(f"{path}: expected a minivq {kind} file, got a {meta.get('kind')} "
                              f"file (use load_{meta.get('kind')})")
    try:
        trees = {name: _rebuild(structure, arrays, [name])
                 for name, structure in meta["structure"].items()}
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        raise CheckpointError(f"{path}: structure record does not match the arrays: {err}") from err
    return meta, trees


def save_tree(path, tree):
    """Write one tree (nested dicts / lists / tuples of arrays) to `path` (no suffix added)."""
    _write(path, "tree", {"tree": tree})


def load_tree(path):
    """The tree written by `save_tree`, bit-exact and with identical containers."""
    return _read(path, "tree")[1]["tree"]


def save_checkpoint(path, params, opt_state=None, config=None, step=0, extra=None, model=None):
    """Atomically write a training checkpoint to `path` (no suffix added).

    params, opt_state, extra: trees of arrays (or None); config: JSON-serialisable dict
    (tuples come back as lists); step: int; model: the name of what params are ('vqvae',
    'prior', ...), checked by load_checkpoint(path, model=...).
    """
    _write(path, "checkpoint", dict(zip(CHECKPOINT_TREES, (params, opt_state, extra))),
           config=config, step=step, model=model)


def load_checkpoint(path, model=None, config=None):
    """dict(params=, opt_state=, config=, step=int, extra=) as given to `save_checkpoint`.

    model: the name the file must record (CheckpointError naming both otherwise; files
    written before names were recorded pass); config: the config it must have been
    trained with (CheckpointError listing the keys that differ).
    """
    meta, trees = _read(path, "checkpoint")
    stored = meta.get("model")
    if model is not None and stored is not None and stored != model:
        raise CheckpointError(f"{path}: expected a {model} checkpoint, got a {stored} checkpoint "
                              f"(pass the file of the {model})")
    if config is not None and meta["config"] != as_stored(config):
        old, new = meta["config"] or {}, as_stored(config) or {}
        keys = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
        detail = ", ".join(f"{key}: file {old.get(key)!r}, expected {new.get(key)!r}" for key in keys)
        raise CheckpointError(f"{path}: its {stored or 'model'} was trained with another config "
                              f"({detail}); build the model from ckpt['config'] instead")
    return dict({name: trees.get(name) for name in CHECKPOINT_TREES},
                config=meta["config"], step=int(meta["step"]))


def rng_state_to_json(rng):
    """JSON text of a numpy Generator's PCG64 / PCG64DXSM state (store it as onp.array(text))."""
    if not isinstance(rng, onp.random.Generator):
        raise TypeError(f"expected a numpy Generator, got {type(rng).__name__}")
    state = rng.bit_generator.state
    if state["bit_generator"] not in ("PCG64", "PCG64DXSM"):
        raise ValueError(f"expected a PCG64 or PCG64DXSM Generator, got {state['bit_generator']}")
    return json.dumps(state)


def rng_from_json(text):
    """A Generator continuing the random stream saved by `rng_state_to_json` (str or 0-d array)."""
    state = json.loads(str(text))
    if state.get("bit_generator") not in ("PCG64", "PCG64DXSM"):
        raise ValueError(f"expected a PCG64 or PCG64DXSM state, got {state.get('bit_generator')!r}")
    bit_generator = getattr(onp.random, state["bit_generator"])()
    bit_generator.state = state
    return onp.random.Generator(bit_generator)
