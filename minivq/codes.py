"""The prior's dataset: images encoded once by a trained VQ-VAE into grids of codes.

    grids = encode_dataset(lambda x: vqvae.encode(params, x), x_train, labels=y_train)
    save_code_grids("runs/codes_train.npz", grids)
    grids = load_code_grids("runs/codes_train.npz")

A `CodeGrids` holds, for N images, the code indices (N, h, w) int64 (the prior's
targets), the code vectors codebook[indices] (N, h, w, d) float32 (the input of a
'codes'-mode prior) and the class labels (N,) int64 or None (for a conditional prior).
Files are plain .npz, read with allow_pickle=False and validated on load.
"""
import collections
import os

import numpy as onp

from .checks import check_indices, check_vectors
from .files import atomic_save_npz, read_arrays
from .threads import apply_threads

CodeGrids = collections.namedtuple("CodeGrids", ["indices", "codes", "labels"])


def check_code_grids(grids, source="code grids"):
    """Validated CodeGrids with canonical dtypes; ValueError naming `source` otherwise."""
    indices, codes, labels = grids
    try:
        indices = check_indices(indices, None, ("N", "h", "w"))
        codes = check_vectors(None if codes is None else onp.asarray(codes), indices.shape + ("d",), "codes")
        if labels is not None:
            labels = check_indices(labels, None, (len(indices),), name="labels")
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None
    return CodeGrids(indices.astype(onp.int64), codes.astype(onp.float32),
                     None if labels is None else labels.astype(onp.int64))


def encode_dataset(encode_fn, x, batch_size=500, labels=None, threads="auto"):
    """Encode images x (N, H, W, C) in batches into CodeGrids.

    encode_fn(x_batch) -> (indices (B, h, w) int, codes (B, h, w, d) float), e.g.
    `lambda xb: vqvae.encode(params, xb)`. labels (N,) are kept alongside, or None.
    threads: numpy's BLAS threads, an int or 'auto' (see minivq.threads.apply_threads).
    """
    if len(x) == 0:
        raise ValueError("encode_dataset: got no images")
    if batch_size < 1:
        raise ValueError(f"encode_dataset: batch_size must be positive, got {batch_size}")
    if labels is not None and len(labels) != len(x):
        raise ValueError(f"encode_dataset: {len(labels)} labels for {len(x)} images")
    apply_threads(threads)
    all_indices, all_codes = [], []
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        indices, codes = encode_fn(batch)
        if onp.shape(indices)[:1] != (len(batch),) or onp.shape(codes)[:1] != (len(batch),):
            raise ValueError(f"encode_fn returned {onp.shape(indices)} indices and {onp.shape(codes)} "
                             f"codes for a batch of {len(batch)} images")
        all_indices.append(onp.asarray(indices))
        all_codes.append(onp.asarray(codes))
    grids = (onp.concatenate(all_indices), onp.concatenate(all_codes), labels)
    return check_code_grids(grids, "encode_dataset")


def save_code_grids(path, grids):
    """Write CodeGrids to `path` (.npz, exactly that name), atomically; labels omitted when None."""
    grids = check_code_grids(grids, "save_code_grids")
    arrays = {"indices": grids.indices, "codes": grids.codes}
    if grids.labels is not None:
        arrays["labels"] = grids.labels
    atomic_save_npz(path, arrays)


def load_code_grids(path):
    """CodeGrids written by `save_code_grids`; FileNotFoundError / ValueError if missing or malformed."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no code-grid file at {path}")
    arrays = read_arrays(path, "an .npz of code grids (indices, codes[, labels]) written by `encode`")
    if not isinstance(arrays, dict):
        raise ValueError(f"{path} is a single .npy array, not an .npz of code grids (indices, codes)")
    missing = {"indices", "codes"} - set(arrays)
    if missing:
        raise ValueError(f"{path}: missing arrays {sorted(missing)}; found {sorted(arrays)}")
    return check_code_grids((arrays["indices"], arrays["codes"], arrays.get("labels")), str(path))
