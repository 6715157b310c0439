"""The prior's dataset: images encoded once by a trained VQ-VAE into grids of codes.

    grids = encode_dataset(lambda x: vqvae.encode(params, x), x_train, labels=y_train)
    save_code_grids("runs/codes_train.npz", grids)
    grids = load_code_grids("runs/codes_train.npz")

A `CodeGrids` holds, for N images, the code indices (N, h, w) int64 (the prior's
targets), the code vectors codebook[indices] (N, h, w, d) float32 (the input of a
'codes'-mode prior) and the class labels (N,) int64 or None (for a conditional prior).
Files are plain .npz, read with allow_pickle=False and validated on load.

Augmentation: `shifted_copies` makes copies of the training images moved by a few pixels
(zero fill); encoded like the originals they give the prior more grids to learn from, each
a plausible digit on the same code vocabulary (the encoder is convolutional, so a shift by
the VQ-VAE's stride moves the grid by one cell, and other shifts give new code patterns).
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


def random_shifts(n, max_shift, rng):
    """(n, 2) int64 shifts (dy, dx), each uniform over [-max_shift, max_shift]^2 without (0, 0)."""
    if not (int(max_shift) == max_shift and max_shift >= 1):
        raise ValueError(f"max_shift must be an integer >= 1, got {max_shift!r}")
    side = 2 * max_shift + 1
    # Draw from the side^2 - 1 nonzero offsets: a draw r >= the centre's index skips the centre.
    r = rng.integers(0, side * side - 1, size=n)
    r = r + (r >= side * side // 2)
    return onp.stack([r // side - max_shift, r % side - max_shift], axis=1).astype(onp.int64)


def shift_images(x, shifts):
    """Images moved by integer shifts, with zeros shifted in: y[n, i, j] = x[n, i - dy_n, j - dx_n].

    x: (N, H, W, C); shifts: (N, 2) ints (dy, dx), |dy| < H, |dx| < W. Returns (N, H, W, C).
    """
    x, shifts = onp.asarray(x), onp.asarray(shifts)
    if x.ndim != 4 or shifts.shape != (len(x), 2):
        raise ValueError(f"expected images (N, H, W, C) and shifts (N, 2), got {x.shape} and "
                         f"{shifts.shape}")
    n, height, width, _ = x.shape
    m = int(onp.max(onp.abs(shifts))) if n else 0
    if m >= min(height, width):
        raise ValueError(f"shifts must be smaller than the image ({height}x{width}), got up to {m}")
    padded = onp.pad(x, ((0, 0), (m, m), (m, m), (0, 0)), mode="constant")   # (N, H+2m, W+2m, C)
    out = onp.empty_like(x)
    for dy, dx in onp.unique(shifts, axis=0):                 # at most (2m+1)^2 groups, vectorised
        rows = onp.all(shifts == (dy, dx), axis=1)
        out[rows] = padded[rows, m - dy:m - dy + height, m - dx:m - dx + width]
    return out


def shifted_copies(x, labels, copies, max_shift, rng):
    """(images (copies*N, H, W, C), labels (copies*N,) or None): `copies` randomly shifted
    copies of every image (see random_shifts), copy-major: rows [c*N, (c+1)*N) are copy c."""
    if not (int(copies) == copies and copies >= 1):
        raise ValueError(f"copies must be an integer >= 1, got {copies!r}")
    images = onp.concatenate([x] * copies)
    shifted = shift_images(images, random_shifts(len(images), max_shift, rng))
    return shifted, None if labels is None else onp.concatenate([onp.asarray(labels)] * copies)


def concatenate_grids(a, b):
    """CodeGrids a followed by b (both with labels or both without)."""
    if (a.labels is None) != (b.labels is None):
        raise ValueError("cannot join code grids with labels and code grids without")
    labels = None if a.labels is None else onp.concatenate([a.labels, b.labels])
    return check_code_grids((onp.concatenate([a.indices, b.indices]),
                             onp.concatenate([a.codes, b.codes]), labels), "concatenate_grids")


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
