"""Every file minivq writes goes through here: atomic writes and readable JSON errors.

    atomic_write_json("RUN/vqvae/config.json", {"lr": 1e-3})
    atomic_save_npz("RUN/codes/train.npz", {"indices": indices})
    with atomic_open("mnist/train.gz") as f:       # stream into it; an exception discards it
        f.write(block)

A write goes to a hidden temp file next to the target (`.<name>.<random>.tmp`, same
folder hence same file system), is fsync'ed, then `os.replace`d onto the target, and
the folder is fsync'ed so that the rename itself survives a crash. A reader therefore
sees the old file or the new one, never half of one. A process killed mid-write leaves
its temp file behind; `remove_temp_files` deletes those of given targets on the next start.
"""
import contextlib
import json
import os
import tempfile
import zipfile

import numpy as onp

TEMP_SUFFIX = ".tmp"


def _temp_prefix(name):
    return f".{name}."


@contextlib.contextmanager
def atomic_open(path):
    """Binary file object whose content replaces `path` when the block exits cleanly.

    An exception inside the block (or a failed write) deletes the temp file and leaves
    `path` as it was.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = tempfile.NamedTemporaryFile(delete=False, dir=folder, suffix=TEMP_SUFFIX,
                                      prefix=_temp_prefix(os.path.basename(path)))
    try:
        with tmp:
            yield tmp
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp.name, 0o644)    # NamedTemporaryFile makes 0600; these are ordinary data files
        os.replace(tmp.name, path)
    except BaseException:
        if os.path.exists(tmp.name):
            os.unlink(tmp.name)
        raise
    if hasattr(os, "O_DIRECTORY"):   # make the rename itself durable (POSIX)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path, data):
    """Atomically replace `path` with the bytes `data`."""
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_json(path, obj):
    """Atomically write `obj` as indented JSON."""
    atomic_write_bytes(path, json.dumps(obj, indent=1).encode("utf-8"))


def atomic_save_npz(path, arrays):
    """Atomically write {name: array} as an uncompressed .npz at exactly `path` (no pickle)."""
    with atomic_open(path) as f:
        onp.savez(f, allow_pickle=False, **arrays)     # a file object: numpy adds no '.npz'


def read_json(path, what="file"):
    """The JSON in `path`; a corrupt file raises ValueError naming it and the fix."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        text = f.read()
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}): this {what} is corrupt; restore it "
                         f"from a backup or start the step over with --force") from None


def read_arrays(path, expected):
    """The array of a .npy, or {key: array} of an .npz, read without pickle.

    A file NumPy cannot read as plain arrays raises ValueError naming it and `expected`
    (what it should hold), never numpy's advice to load it unsafely: unpickling runs code.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            loaded = onp.load(f, allow_pickle=False)
            if not isinstance(loaded, onp.lib.npyio.NpzFile):
                return loaded
            with loaded:
                return {key: loaded[key] for key in loaded.files}
    except (ValueError, EOFError, zipfile.BadZipFile) as err:
        if "Object arrays" in str(err):
            raise ValueError(f"{path} holds an object array (Python objects, stored with pickle): "
                             f"expected {expected}; convert it to numbers (e.g. x.astype(numpy.float32)) "
                             f"and save it again") from None
        raise ValueError(f"{path} is not a NumPy .npy/.npz file of plain arrays (it is damaged, "
                         f"another format, or a pickle, which minivq never loads): expected "
                         f"{expected}") from None


def as_stored(obj):
    """`obj` as it reads back from JSON: tuples become lists, keys sorted."""
    return json.loads(json.dumps(obj, sort_keys=True))


def remove_temp_files(folder, names):
    """Delete the temp files left in `folder` by interrupted writes of the files `names`."""
    if not os.path.isdir(folder):
        return []
    prefixes = tuple(_temp_prefix(name) for name in names)
    stale = [entry for entry in os.listdir(folder)
             if entry.startswith(prefixes) and entry.endswith(TEMP_SUFFIX)]
    for entry in stale:
        os.unlink(os.path.join(folder, entry))
    return stale
