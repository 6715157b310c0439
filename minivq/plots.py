"""Figures for minivq: image grids, reconstructions, training curves and codebook use.

Every plotting function takes plain arrays and an output path, writes one PNG (creating
parent folders) and returns the path as a `pathlib.Path`. Inputs follow the package:
images are (N, H, W, C) floats in [0, 1] with C = 1 (grayscale) or 3 (RGB); code grids
are (N, h, w) or (h, w) integer indices into a codebook of K codes.

Figures are built as `matplotlib.figure.Figure` objects drawn by the Agg canvas, never
through pyplot: importing minivq selects no backend, opens no window and leaves no
figure registered anywhere, so there is nothing to close after saving.
"""
import math
import pathlib

import numpy as onp
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from .checks import check_images, check_indices
from .quantize import code_histogram, perplexity, used_codes

# Decoder outputs may overshoot [0, 1] a little and are clipped for display; anything
# further out (0-255 pixels, [-1, 1] normalisation) is a caller's mistake.
RANGE_SLACK = 0.5
# Screen inches per image pixel: a 28-pixel MNIST digit is about 0.7 inch wide.
INCH_PER_PIXEL = 0.025
# Code numbers are written in the cells only when they stay legible.
MAX_LABELLED_CELLS = 100


# ---------------------------------------------------------------- input checks (checks.py, for display)

def _check_images(images, name="images"):
    """(N, H, W, C) float64 copy of images clipped to [0, 1] for display, or ValueError."""
    value = onp.asarray(images)
    if value.dtype.kind in "biu":
        value = value.astype(onp.float64)
    check_images(value, name=name, value_range=(-RANGE_SLACK, 1.0 + RANGE_SLACK))
    if value.shape[-1] not in (1, 3) or value.size == 0:
        raise ValueError(f"{name} must hold at least one pixel and C = 1 or 3 channels, "
                         f"got shape {value.shape}")
    return onp.clip(value.astype(onp.float64), 0.0, 1.0)


def _check_indices(indices, num_codes, shape=None):
    """indices as integers in [0, num_codes) (at least one) fitting `shape`, or ValueError."""
    if not isinstance(num_codes, (int, onp.integer)) or num_codes < 1:
        raise ValueError(f"num_codes must be a positive int, got {num_codes!r}")
    return check_indices(indices, num_codes, shape, nonempty=True)


# ---------------------------------------------------------------- drawing helpers

def _save(fig, path):
    """Draw fig with Agg into path as PNG, creating parent folders; returns the Path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)                                  # attaches itself as fig.canvas
    fig.savefig(path, format="png", dpi=100)
    return path


def _show_tiles(ax, tiled, title=None):
    """imshow a (H, W, C) array in [0, 1] on ax: gray colormap for C = 1, no axes."""
    if tiled.shape[-1] == 1:
        ax.imshow(tiled[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(tiled, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)


def _code_colormap(num_codes):
    """ListedColormap with exactly num_codes colours, qualitative while K <= 20.

    No qualitative map has more than 20 colours; beyond that `turbo` is sampled at K
    points so every code still gets its own colour.
    """
    if num_codes <= 10:
        colours = colormaps["tab10"].colors[:num_codes]
    elif num_codes <= 20:
        colours = colormaps["tab20"].colors[:num_codes]
    else:
        colours = colormaps["turbo"](onp.linspace(0.0, 1.0, num_codes))
    return ListedColormap(colours, name=f"codes{num_codes}")


# ---------------------------------------------------------------- figures

def tile_images(images, ncols=None, pad=1, pad_value=0.5):
    """Tile N images into one (H', W', C) array, row by row, `pad` pixels between tiles.

    images: (N, H, W, C) in [0, 1]. ncols is capped at N and defaults to ceil(sqrt(N)).
    With rows = ceil(N / ncols):
    H' = rows * H + (rows - 1) * pad, W' = ncols * W + (ncols - 1) * pad. Gaps and the
    unused cells of the last row hold pad_value (mid-grey: visible on black and white).
    Image n sits at rows [r (H + pad), r (H + pad) + H) and the matching columns, with
    (r, c) = divmod(n, ncols).
    """
    images = _check_images(images)
    num, height, width, channels = images.shape
    if ncols is None:
        ncols = math.ceil(math.sqrt(num))                  # smallest square that holds N
    if not isinstance(ncols, (int, onp.integer)) or ncols < 1:
        raise ValueError(f"ncols must be a positive int or None, got {ncols!r}")
    if not isinstance(pad, (int, onp.integer)) or pad < 0:
        raise ValueError(f"pad must be a non-negative int, got {pad!r}")
    ncols = min(int(ncols), num)
    nrows = math.ceil(num / ncols)
    out = onp.full((nrows * height + (nrows - 1) * pad,
                    ncols * width + (ncols - 1) * pad, channels), float(pad_value))
    for n, image in enumerate(images):
        row, col = divmod(n, ncols)
        top, left = row * (height + pad), col * (width + pad)
        out[top:top + height, left:left + width] = image
    return out


def image_grid(images, path, ncols=None, title=None):
    """Write images (N, H, W, C) in [0, 1] as one tiled PNG; ncols defaults to ~sqrt(N)."""
    tiled = tile_images(images, ncols)
    height, width = tiled.shape[:2]
    fig = Figure(figsize=(max(2.0, width * INCH_PER_PIXEL),
                          max(2.0, height * INCH_PER_PIXEL) + (0.4 if title else 0.0)))
    _show_tiles(fig.add_subplot(1, 1, 1), tiled, title)
    fig.tight_layout()
    return _save(fig, path)


def reconstructions(originals, recons, path, n=16, title=None):
    """Write the first n originals (top block) above their reconstructions (bottom).

    originals, recons: (N, H, W, C) in [0, 1] of the same shape; each block has up to 8
    columns so that original i and reconstruction i sit in the same grid cell.
    """
    originals = _check_images(originals, "originals")
    recons = _check_images(recons, "recons")
    if originals.shape != recons.shape:
        raise ValueError(f"originals and recons must have the same shape, got "
                         f"{originals.shape} and {recons.shape}")
    if not isinstance(n, (int, onp.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    n = min(int(n), len(originals))
    ncols = min(n, 8)                                      # 8 digits fit one laptop-wide row
    top = tile_images(originals[:n], ncols)
    bottom = tile_images(recons[:n], ncols)
    height, width = top.shape[:2]
    fig = Figure(figsize=(max(2.5, width * INCH_PER_PIXEL),
                          2 * max(1.2, height * INCH_PER_PIXEL) + (1.2 if title else 0.8)))
    _show_tiles(fig.add_subplot(2, 1, 1), top, "originals")
    _show_tiles(fig.add_subplot(2, 1, 2), bottom, "reconstructions")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def history_records(history):
    """train.train's history {'train': [...], 'eval': [...]} as one record list for
    training_curves: every train record, then every eval record with its metrics named
    test_* ('test_mse' stays, 'perplexity' becomes 'test_perplexity'); the eval's timing
    ('seconds') and code count ('used_codes') are left out."""
    evals = [{"step": r["step"], **{k if k.startswith("test_") else f"test_{k}": v
                                    for k, v in r.items() if k not in ("step", "seconds", "used_codes")}}
             for r in history["eval"]]
    return history["train"] + evals


def training_curves(history, path, keys=("loss", "recon_mse", "perplexity")):
    """Write one stacked subplot per metric found in history, against 'step'.

    history: list of dicts, each with 'step' and any metrics. Keys absent from every
    record are skipped; eval metrics ('test_*', e.g. 'test_mse', 'test_bits') are drawn
    too, after `keys`, with markers since they are logged sparsely. Metrics named like a
    loss ('loss', 'mse') use a log y-axis while all their values are positive.
    """
    if not isinstance(history, (list, tuple)) or not history:
        raise ValueError(f"history must be a non-empty list of dicts, got {history!r:.80}")
    for i, record in enumerate(history):
        if not isinstance(record, dict) or "step" not in record:
            raise ValueError(f"history[{i}] must be a dict with a 'step' key, got {record!r:.80}")
    present = {key for record in history for key in record}
    evals = sorted(key for key in present if key.startswith("test_") and key not in keys)
    metrics = [key for key in keys if key in present] + evals
    if not metrics:
        raise ValueError(f"history has none of the metrics {list(keys)} or 'test_*', "
                         f"got keys {sorted(present)}")

    fig = Figure(figsize=(6.0, 2.2 * len(metrics)))
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    for ax, key in zip(axes, metrics):
        points = [(float(r["step"]), float(r[key])) for r in history if key in r]
        steps, values = onp.array(points).T                # (2, P) -> steps (P,), values (P,)
        if not onp.all(onp.isfinite(values)):
            raise ValueError(f"metric {key!r} has NaN or inf values")
        ax.plot(steps, values, marker="o" if key in evals else None, markersize=3)
        if ("loss" in key or "mse" in key) and onp.all(values > 0):
            ax.set_yscale("log")
        ax.set_ylabel(key)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    return _save(fig, path)


def codebook_usage(indices, num_codes, path):
    """Write a bar chart of how often each of the num_codes = K codes occurs in indices (any shape).

    The title gives perplexity = exp(H(p)) of the usage frequencies p (K when all codes
    are used equally, 1 when one code takes everything) and the number of used codes.
    """
    K = num_codes
    indices = _check_indices(indices, K)
    counts = code_histogram(indices, K)                    # (K,)
    fig = Figure(figsize=(min(16.0, max(4.0, 0.1 * K)), 3.0))
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(onp.arange(K), counts, width=1.0 if K > 64 else 0.8)
    ax.set_xlim(-0.5, K - 0.5)
    ax.set_xlabel("code index")
    ax.set_ylabel("count")
    ax.set_title(f"perplexity {perplexity(indices, K):.1f} / {K}, "
                 f"used codes {used_codes(indices, K)} / {K}")
    fig.tight_layout()
    return _save(fig, path)


def code_grid_map(image, indices, num_codes, path):
    """Write one image (H, W, C) next to its (h, w) code grid drawn as a colour map.

    Each code k gets its own colour of a num_codes-colour map; the index is written in each
    cell when h * w <= 100.
    """
    if onp.ndim(image) != 3:
        raise ValueError(f"image must have shape (H, W, C), got {onp.shape(image)}")
    image = _check_images(onp.asarray(image)[None], "image")[0]   # (1, H, W, C) -> (H, W, C)
    K = num_codes
    indices = _check_indices(indices, K, ("h", "w"))
    cmap = _code_colormap(K)
    fig = Figure(figsize=(7.0, 3.5))
    left, right = fig.subplots(1, 2)
    _show_tiles(left, image, "image")
    # bin edges at k +- 0.5 put code k exactly in colour k of the listed map
    right.imshow(indices, cmap=cmap, vmin=-0.5, vmax=K - 0.5, interpolation="nearest")
    right.set_axis_off()
    right.set_title(f"codes ({indices.shape[0]} x {indices.shape[1]}, K = {K})")
    if indices.size <= MAX_LABELLED_CELLS:
        for (i, j), k in onp.ndenumerate(indices):
            red, green, blue, _ = cmap(int(k))
            dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5   # ITU-R 601 luma
            right.text(j, i, str(k), ha="center", va="center", fontsize=8,
                       color="white" if dark else "black")
    fig.tight_layout()
    return _save(fig, path)


def sample_comparison(panels, path, scores=None):
    """Write panels side by side, each a square-ish tiled grid with its title.

    panels: list of (title, images) with images (N, H, W, C) in [0, 1]; N may differ
    between panels (e.g. 'random codebook row' 16, 'independent cells' 64,
    'PixelCNN prior' 64). scores: optional, one short line per panel written under its
    title (e.g. `metrics.short_score(score)`), None for a panel without one.
    """
    if not isinstance(panels, (list, tuple)) or not panels:
        raise ValueError(f"panels must be a non-empty list of (title, images), got {panels!r:.80}")
    scores = [None] * len(panels) if scores is None else list(scores)
    if len(scores) != len(panels):
        raise ValueError(f"scores must hold one line (or None) per panel: {len(panels)} panels, "
                         f"got {len(scores)} scores")
    tiles = []
    for i, (panel, score) in enumerate(zip(panels, scores)):
        if not isinstance(panel, (list, tuple)) or len(panel) != 2:
            raise ValueError(f"panels[{i}] must be a (title, images) pair, got {panel!r:.80}")
        title, images = panel
        title = str(title) if score is None else f"{title}\n{score}"
        tiles.append((title, tile_images(images, None)))
    scored = any(score is not None for score in scores)
    fig = Figure(figsize=(4.0 * len(tiles), 4.4 + (0.3 if scored else 0.0)))   # + a caption line
    for ax, (title, tiled) in zip(fig.subplots(1, len(tiles), squeeze=False)[0], tiles):
        _show_tiles(ax, tiled)
        ax.set_title(title, fontsize=10 if scored else None)   # 10 pt: a 45-character caption fits 4 inches
    fig.tight_layout()
    return _save(fig, path)


def _as_curves(sequences, name):
    """(N, L, C) float64 from sequences (N, L), (N, L, C) or (N, 1, L, C) (a row-image), or ValueError."""
    value = onp.asarray(sequences)
    if value.ndim == 4 and value.shape[1] == 1:
        value = value[:, 0]                                  # (N, 1, L, C) -> (N, L, C)
    if value.ndim == 2:
        value = value[..., None]                             # (N, L) -> (N, L, 1)
    if value.ndim != 3 or 0 in value.shape or value.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numbers of shape (N, L), (N, L, C) or (N, 1, L, C), "
                         f"got {value.dtype} {value.shape}")
    if not onp.all(onp.isfinite(value)):
        raise ValueError(f"{name} holds NaN or inf")
    return value.astype(onp.float64)


def sequence_panels(panels, path, n=8, xlabel="step", ylabel="value"):
    """Write panels side by side, each the first n sequences of a set drawn as curves.

    panels: list of (title, sequences) or (title, sequences, references); sequences
    (N, L), (N, L, C) or (N, 1, L, C) as the models see them; references, of the same
    shape, are drawn dashed in the same colour under each curve (e.g. the originals
    under their reconstructions). A channel of C > 1 is one more curve in the series'
    colour. All panels share the y-axis, so that spreads and levels compare at a glance.
    """
    if not isinstance(panels, (list, tuple)) or not panels:
        raise ValueError(f"panels must be a non-empty list of (title, sequences), got {panels!r:.80}")
    if not isinstance(n, (int, onp.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    drawn = []
    for i, panel in enumerate(panels):
        if not isinstance(panel, (list, tuple)) or len(panel) not in (2, 3):
            raise ValueError(f"panels[{i}] must be (title, sequences[, references]), got {panel!r:.80}")
        curves = _as_curves(panel[1], f"panels[{i}] sequences")[:n]
        references = None
        if len(panel) == 3:
            references = _as_curves(panel[2], f"panels[{i}] references")[:n]
            if references.shape != curves.shape:
                raise ValueError(f"panels[{i}]: references {references.shape} differ from "
                                 f"sequences {curves.shape}")
        drawn.append((str(panel[0]), curves, references))
    colours = colormaps["tab10"].colors
    fig = Figure(figsize=(3.6 * len(drawn), 3.2))
    axes = fig.subplots(1, len(drawn), sharey=True, squeeze=False)[0]
    for ax, (title, curves, references) in zip(axes, drawn):
        steps = onp.arange(curves.shape[1])
        for k, series in enumerate(curves):                  # series (L, C)
            colour = colours[k % len(colours)]
            if references is not None:
                ax.plot(steps, references[k], color=colour, linestyle="--", linewidth=1.0, alpha=0.6)
            ax.plot(steps, series, color=colour, linewidth=1.4)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(ylabel)
    fig.tight_layout()
    return _save(fig, path)
