"""The minivq pipeline as plain functions over a run directory; `cli.py` is only argparse.

    train_vqvae(RUN) -> encode(RUN) -> train_prior(RUN) -> sample(RUN) / reconstruct(RUN)

Each step finds what it needs in RUN (see `run_dir.py` for the layout) and writes its
results there, so that `sample(RUN)` works days later from a fresh process. config.json
holds the model config, the data spec and the training settings; the checkpoints and
history.json are those of `train.train`.
"""
import contextlib
import math
import os
import time

import numpy as onp
from tqdm import tqdm

from .checkpoint import load_checkpoint
from .codes import concatenate_grids, encode_dataset, load_code_grids, save_code_grids, shifted_copies
from .data import SPECS, describe, load_dataset
from .classifier import IMAGE_SHAPE
from .files import as_stored, atomic_open, atomic_write_json, read_json
from .likelihood import vqvae_bits_per_dim
from .prior import DEFAULT_CONFIG as PRIOR_DEFAULTS
from .metrics import format_score, sample_score
from .prior import build_prior, make_config
from .plots import (code_grid_map, codebook_usage, history_records, image_grid, reconstructions,
                    sample_comparison, training_curves)
from .quantize import perplexity, used_codes
from .run_dir import (MODEL_DIRS, check_same_data, check_same_vqvae, data_sha256, load_codes,
                      load_vqvae, prepare, replacing, resolve, run_config, trained_path)
from .baselines import (independent_bits, random_codebook_rows, sample_independent, uniform_bits,
                        unigram_bits)
from .sampling import sample_grids
from .schedules import warmup_cosine
from .train import averaged_params, check_settings, train
from .vqvae import build_vqvae, code_grid_shape, init_codebook_from_batch, make_vqvae_config

VQVAE_TRAINING = dict(steps=2000, batch_size=128, lr=1e-3, eval_every=250, checkpoint_every=None, seed=0)
# Prior training (issue 14; every choice measured in docs/prior_ablation.md). Batch 64 at lr 2e-3
# reached in 1,400 steps the held-out bits that batch 32 at 1e-3 reached in 2,800 (3.18), at 1.6x
# the cost of a step. ema_decay 0 = off, else the weight average used for eval and sampling
# (0.995: -0.06 bits/code at 1,000 steps, both seeds); schedule 'constant' or 'cosine' (linear
# warm-up over `warmup` steps, then cosine to 0); augment: also learn from
# codes/train_shifted.npz (needs `encode --augment N`; the demo's default: -0.07 bits at 1,500 steps).
PRIOR_TRAINING = dict(steps=1500, batch_size=64, lr=2e-3, eval_every=100, checkpoint_every=None, seed=0,
                      dropout=0.0, ema_decay=0.995, schedule="constant", warmup=0, augment=False)
# What a prior run saved before these settings existed trained with: none of them (for resume).
REGULARISERS_OFF = dict(ema_decay=0.0, schedule="constant", warmup=0, augment=False)
SCHEDULES = ("constant", "cosine")
SHIFTED_CODES = "train_shifted.npz"   # codes/ file of the shifted training copies (encode --augment N)
SAMPLE_CHUNK = 100        # grids drawn per sample_grids call (one progress-bar tick each)
DECODE_BATCH = 500        # images decoded per call: bounds the decoder's activation memory
# A new VQ-VAE run's quantizer unless told otherwise: the demo's EMA codebook (App. A.1) with
# dead-code restarts after 100 unused batches. With the paper's plain setting a 32x32 RGB set
# used 11 of 256 codes and reconstructed grey; with these, 249 of 256 and colour (issue 13).
VQVAE_MODEL = dict(codebook_update="ema", restart_after=100)
PAPER_VQVAE = dict(codebook_update="grad", restart_after=0)   # paper Eq. 3 as written (CLI --paper)
# Named model sizes for one input size (CLI --preset). course32: the course's worked example,
# 32x32 inputs, overall stride 8 (three stride-2 convs), d = 64, K = 256 -> a 4x4 code grid.
PRESETS = {"course32": dict(input_hw=(32, 32), model=dict(num_downsamplings=3, code_dim=64, num_codes=256))}


def _curves(history_path, figure_path, keys):
    """Training curves from history.json: every train record, plus eval metrics as test_*."""
    return training_curves(history_records(read_json(history_path, "training history")), figure_path, keys)


def _best_eval(history_path, metric):
    evals = read_json(history_path, "training history")["eval"]
    return min(evals, key=lambda record: record[metric]) if evals else {}


def _settings(passed, saved, defaults, num_examples):
    """The training settings of a step: passed, else the run's saved ones, else defaults;
    checked before anything is written (checkpoint_every defaults to eval_every)."""
    settings = resolve(passed, saved, defaults)
    settings["checkpoint_every"] = settings["checkpoint_every"] or settings["eval_every"]
    check_settings(settings["steps"], settings["batch_size"], settings["lr"], num_examples,
                   settings["eval_every"], settings["checkpoint_every"])
    if not 0 <= settings.get("dropout", 0.0) < 1:
        raise ValueError(f"dropout must be in [0, 1), got {settings['dropout']}")
    if not 0 <= settings.get("ema_decay", 0.0) < 1:
        raise ValueError(f"ema_decay must be in [0, 1) (0 = no weight average), got "
                         f"{settings['ema_decay']}")
    if settings.get("schedule", "constant") not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {settings['schedule']!r}")
    if not 0 <= settings.get("warmup", 0) <= settings["steps"]:
        raise ValueError(f"warmup must be in [0, steps = {settings['steps']}], got {settings['warmup']}")
    return settings


def preset_model(name, input_shape):
    """The model keys of preset `name` after checking the images' (H, W, C) input_shape fits it."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(sorted(PRESETS))}")
    (h, w), (height, width) = PRESETS[name]["input_hw"], input_shape[:2]
    if (height, width) != (h, w):
        raise ValueError(f"preset {name} expects {h}x{w} images, got {height}x{width}; resize them "
                         f"first (e.g. ImageMagick `mogrify -resize {w}x{h}! <files>`) or choose "
                         f"--num-downsamplings, --code-dim and --num-codes yourself")
    return dict(PRESETS[name]["model"])


def decode(model, params, indices):
    """Decoded images (N, H, W, C) clipped to [0, 1], in batches."""
    parts = [model.decode_indices(params, indices[i:i + DECODE_BATCH])
             for i in range(0, len(indices), DECODE_BATCH)]
    return onp.clip(onp.concatenate(parts), 0.0, 1.0)


# ---------------------------------------------------------------- pipeline steps

def train_vqvae(run_dir, data=None, steps=None, batch_size=None, lr=None, eval_every=None,
                checkpoint_every=None, seed=None, resume=False, force=False, download=False,
                allow_new_settings=False, progress=True, preset=None, **model):
    """Train a VQ-VAE into RUN/vqvae (kind 'grid') or RUN/flat_vqvae (kind 'flat').

    data: a `load_dataset` spec (default 'mnist-embedded', or the run's on resume).
    model: `make_vqvae_config` keys (kind, num_codes, code_dim, hidden, beta,
    codebook_update, ...); None values mean the default (or the run's value on resume).
    A new run's defaults are VQVAE_DEFAULTS with VQVAE_MODEL (EMA codebook + dead-code
    restarts); pass PAPER_VQVAE's values for the paper's plain setting. preset: a name in
    PRESETS, whose sizes apply unless given in model (the images must fit it).
    Training settings left None take VQVAE_TRAINING's defaults, or on resume the run's
    own (config.json); resume=True refuses other settings unless allow_new_settings.
    steps counts the total, so resume=True continues to `steps`. The codebook is seeded
    from the first batch unless codebook_init is 'uniform'. Writes the run files and
    figures/<dir>_curves.png; returns a summary dict (best held-out eval, paths, seconds).
    """
    model = {key: value for key, value in model.items() if value is not None}
    kind = model.get("kind", "grid")
    if kind not in MODEL_DIRS:
        raise ValueError(f"kind must be one of {sorted(MODEL_DIRS)}, got {kind!r}")
    directory = os.path.join(run_dir, MODEL_DIRS[kind])
    previous_path = os.path.join(directory, "config.json")
    previous = read_json(previous_path, "run config") if resume and os.path.isfile(previous_path) else {}
    spec = data or previous.get("data", "mnist-embedded")
    dataset = load_dataset(spec, download=download)
    _say_data(dataset)
    if spec not in SPECS:
        spec = os.path.abspath(spec)           # a file or folder: found again from any cwd
    if preset is not None:
        model = dict(preset_model(preset, dataset.x_train.shape[1:]), **model)
    config = make_vqvae_config(previous.get("model") or VQVAE_MODEL,
                               **dict(model, input_shape=dataset.x_train.shape[1:]))
    settings = _settings(dict(steps=steps, batch_size=batch_size, lr=lr, eval_every=eval_every,
                              checkpoint_every=checkpoint_every, seed=seed),
                         previous, VQVAE_TRAINING, len(dataset.x_train))
    record = dict(settings, model=config, data=spec, data_sha256=data_sha256(dataset))
    prepare(directory, record, resume, force, "trained VQ-VAE", f"minivq train-vqvae --out {run_dir}",
            allow_new_settings)

    vqvae = build_vqvae(config)
    rng = onp.random.default_rng(settings["seed"])
    start = time.perf_counter()
    with replacing(directory):
        params = vqvae.init(rng)
        first = dataset.x_train[rng.permutation(len(dataset.x_train))[:settings["batch_size"]]]
        params = init_codebook_from_batch(vqvae, params, first, rng)
        os.makedirs(directory, exist_ok=True)
        atomic_write_json(os.path.join(directory, "config.json"), as_stored(record))
        train(vqvae.loss_and_aux, params, dataset.x_train, settings["steps"], settings["batch_size"],
              settings["lr"], rng, step_hook=vqvae.step_hook, hook_state=vqvae.init_state(params),
              eval_fn=lambda p: vqvae.evaluate(p, dataset.x_test), eval_every=settings["eval_every"],
              best_metric="test_mse", out_dir=directory, checkpoint_every=settings["checkpoint_every"],
              resume=resume, allow_new_settings=allow_new_settings, config=config, progress=progress,
              model="vqvae")
    seconds = time.perf_counter() - start
    history = os.path.join(directory, "history.json")
    curves = _curves(history, os.path.join(run_dir, "figures", f"{MODEL_DIRS[kind]}_curves.png"),
                     ("loss", "recon_mse", "perplexity"))
    best = _best_eval(history, "test_mse")
    return dict(best, kind=kind, num_codes=config["num_codes"], seconds=seconds,
                checkpoint=trained_path(run_dir, MODEL_DIRS[kind], "VQ-VAE", ""), figures=[str(curves)])


_SAID = None   # inside data_lines_once(): the data lines printed so far


@contextlib.contextmanager
def data_lines_once():
    """Within this block each 'data: ...' line is printed once: the demo's five steps read
    the same images and say so once (a CLI command, one step, always says it)."""
    global _SAID
    outer, _SAID = _SAID, set()
    try:
        yield
    finally:
        _SAID = outer


def _say_data(dataset):
    """Print what a step read: 'data: <describe(dataset)>' (once per block of data_lines_once)."""
    line = f"data: {describe(dataset)}"
    if _SAID is not None:
        if line in _SAID:
            return
        _SAID.add(line)
    print(line)


def _training_data(vqvae, run_dir, download):
    """The Dataset a trained VQ-VAE was trained on; ValueError if its images changed since."""
    record = run_config(vqvae)
    dataset = load_dataset(record["data"], download=download)
    _say_data(dataset)
    check_same_data(record.get("data_sha256"), dataset, record["data"],
                    os.path.dirname(vqvae.path), run_dir)
    return dataset


def _encode_split(vqvae, params, x, labels, desc, batch_size, progress):
    with tqdm(total=len(x), desc=desc, disable=not progress, dynamic_ncols=True) as bar:
        def encode_batch(batch):
            bar.update(len(batch))
            return vqvae.encode(params, batch)
        return encode_dataset(encode_batch, x, batch_size, labels)


def encode(run_dir, batch_size=500, download=False, progress=True, augment=0, max_shift=2,
           augment_seed=0):
    """Encode the run's train and test images with its best grid VQ-VAE into RUN/codes.

    Writes codes/{train,test}.npz (indices (N, h, w), code vectors, labels), codes/source.json
    and figures codebook_usage.png (train codes) and code_grid.png (first test image).
    augment > 0 also writes codes/train_shifted.npz: `augment` copies of every training
    image shifted by 1..max_shift pixels (codes.shifted_copies, rng seed augment_seed),
    encoded, for `train_prior(augment=True)`; the test codes are never augmented.
    Returns a summary dict: shapes, perplexity and used codes of the train codes, paths.
    """
    if not (int(augment) == augment and augment >= 0):
        raise ValueError(f"augment must be a number of copies >= 0, got {augment!r}")
    vqvae = load_vqvae(run_dir)
    dataset = _training_data(vqvae, run_dir, download)
    train_grids = _encode_split(vqvae.model, vqvae.params, dataset.x_train, dataset.y_train,
                                "encode train", batch_size, progress)
    test_grids = _encode_split(vqvae.model, vqvae.params, dataset.x_test, dataset.y_test,
                               "encode test", batch_size, progress)
    folder = os.path.join(run_dir, "codes")
    os.makedirs(folder, exist_ok=True)
    save_code_grids(os.path.join(folder, "train.npz"), train_grids)
    save_code_grids(os.path.join(folder, "test.npz"), test_grids)
    shifted_path = os.path.join(folder, SHIFTED_CODES)
    if augment:
        x, y = shifted_copies(dataset.x_train, dataset.y_train, augment, max_shift,
                              onp.random.default_rng(augment_seed))
        save_code_grids(shifted_path, _encode_split(vqvae.model, vqvae.params, x, y,
                                                    "encode shifted train", batch_size, progress))
    elif os.path.exists(shifted_path):
        os.remove(shifted_path)                         # stale: made from an earlier VQ-VAE
    atomic_write_json(os.path.join(folder, "source.json"),
                {"vqvae": os.path.relpath(vqvae.path, run_dir), "vqvae_step": vqvae.step,
                 "vqvae_sha256": vqvae.sha256, "augment": augment, "max_shift": max_shift,
                 "augment_seed": augment_seed})
    num_codes = vqvae.model.config["num_codes"]
    figures = os.path.join(run_dir, "figures")
    usage = codebook_usage(train_grids.indices, num_codes, os.path.join(figures, "codebook_usage.png"))
    grid = code_grid_map(dataset.x_test[0], test_grids.indices[0], num_codes,
                         os.path.join(figures, "code_grid.png"))
    return {"train_shape": train_grids.indices.shape, "test_shape": test_grids.indices.shape,
            "perplexity": perplexity(train_grids.indices, num_codes),
            "used_codes": used_codes(train_grids.indices, num_codes), "num_codes": num_codes,
            "vqvae": vqvae.path, "vqvae_step": vqvae.step, "folder": folder,
            "figures": [str(usage), str(grid)]}


def train_prior(run_dir, steps=None, batch_size=None, lr=None, eval_every=None, checkpoint_every=None,
                seed=None, resume=False, force=False, dropout=None, input_mode=None, gated=None,
                conditional=None, channels=None, num_blocks=None, first_kernel=None, kernel=None,
                allow_new_settings=False, progress=True, ema_decay=None, schedule=None, warmup=None,
                augment=None):
    """Train a PixelCNN prior on RUN/codes into RUN/prior; the best held-out bits/code is kept.

    input_mode 'embedding' (learned per-index vectors) or 'codes' (the VQ-VAE's code
    vectors); gated: the gated PixelCNN; conditional: condition on the class labels
    (gated only). ema_decay > 0: evaluate, keep and sample the weight average; schedule
    'cosine': warm-up over `warmup` steps then cosine decay of lr; augment: train on the
    shifted copies too (needs `encode(augment=N)`). None means the default
    (PRIOR_TRAINING, the pixelcnn's), or on resume the run's own value; resume=True
    refuses other settings unless allow_new_settings.
    Writes figures/prior_curves.png; returns a summary dict with the baselines' bits/code
    and 'bits_per_dim', the whole model's on the test images (likelihood.vqvae_bits_per_dim:
    prior + reconstruction under a discretised Gaussian with a scale fitted on train).
    """
    vqvae = load_vqvae(run_dir)
    train_grids, test_grids, source = load_codes(run_dir)
    sha = vqvae.sha256
    check_same_vqvae(source["vqvae_sha256"], sha, f"{run_dir}/codes",
                      f"run `minivq encode --run {run_dir}` again")
    images = _training_data(vqvae, run_dir, download=False)    # for bits/dim: the images of these codes
    pairs = ((images.x_train, train_grids.indices), (images.x_test, test_grids.indices))
    directory = os.path.join(run_dir, "prior")
    previous_path = os.path.join(directory, "config.json")
    saved = read_json(previous_path, "run config") if resume and os.path.isfile(previous_path) else {}
    previous = saved.get("model", {})
    options = {"input_mode": input_mode, "gated": gated, "channels": channels,
               "num_blocks": num_blocks, "first_kernel": first_kernel, "kernel": kernel}
    options = dict(previous, **{key: value for key, value in options.items() if value is not None})
    if conditional or (conditional is None and options.get("num_classes")):
        if train_grids.labels is None or test_grids.labels is None:
            raise ValueError("a conditional prior needs class labels, but this run's data has none")
        options["num_classes"] = int(max(train_grids.labels.max(), test_grids.labels.max())) + 1
        if gated is None:
            options["gated"] = True                      # conditioning is a gated-PixelCNN feature
    else:
        options["num_classes"] = None
    options["num_codes"] = vqvae.model.config["num_codes"]
    if train_grids.indices.shape[1] == 1:   # a 1 x L grid (sequences): row kernels, no rows above to read
        for key in ("first_kernel", "kernel"):
            size = options.get(key, PRIOR_DEFAULTS[key])
            options[key] = [1, size if onp.ndim(size) == 0 else size[1]]   # a list, as JSON keeps it
    codes_mode = options.get("input_mode", "embedding") == "codes"
    options["code_dim"] = vqvae.model.config["code_dim"] if codes_mode else None
    config = make_config(**options)
    settings = _settings(dict(steps=steps, batch_size=batch_size, lr=lr, eval_every=eval_every,
                              checkpoint_every=checkpoint_every, seed=seed, dropout=dropout,
                              ema_decay=ema_decay, schedule=schedule, warmup=warmup, augment=augment),
                         dict(REGULARISERS_OFF, **saved) if saved else {}, PRIOR_TRAINING,
                         len(train_grids.indices))
    if settings["augment"]:
        shifted_path = os.path.join(run_dir, "codes", SHIFTED_CODES)
        if not os.path.isfile(shifted_path):
            raise FileNotFoundError(f"augment needs the shifted training codes {shifted_path}: run "
                                    f"`minivq encode --run {run_dir} --augment 4` first")
        train_grids = concatenate_grids(train_grids, load_code_grids(shifted_path))
    record = dict(settings, model=config)
    for key in set(REGULARISERS_OFF) - set(saved) if saved else ():
        if record[key] == REGULARISERS_OFF[key]:      # an older run's record, as it was written
            del record[key]
    saved = prepare(directory, record, resume, force, "trained prior",
                    f"minivq train-prior --run {run_dir}", allow_new_settings)
    if saved is not None:
        check_same_vqvae(saved["vqvae_sha256"], sha, directory,
                          "start the prior over with --force")

    prior = build_prior(config)
    conditional = config["num_classes"] is not None
    dropout = settings["dropout"]
    rng = onp.random.default_rng(settings["seed"])     # the loop's one stream, dropout's too

    def split_args(grids, ids=slice(None)):
        """(indices, codes, labels) of some grids, as prior.loss takes them."""
        return (grids.indices[ids], grids.codes[ids] if codes_mode else None,
                grids.labels[ids] if conditional else None)

    def loss_fn(params, ids):                         # the loop's "data" are ids into the train grids
        loss = prior.loss(params, *split_args(train_grids, ids), dropout=dropout, rng=rng)
        return loss, {"bits": loss / math.log(2.0)}

    def eval_fn(params):
        return {"test_bits": prior.bits_per_code(params, *split_args(test_grids))}

    start = time.perf_counter()
    with replacing(directory):
        params = prior.init(rng)
        os.makedirs(directory, exist_ok=True)
        atomic_write_json(os.path.join(directory, "config.json"), as_stored(dict(record, vqvae_sha256=sha)))
        train(loss_fn, params, onp.arange(len(train_grids.indices)), settings["steps"],
              settings["batch_size"], settings["lr"], rng, eval_fn=eval_fn,
              eval_every=settings["eval_every"], best_metric="test_bits", out_dir=directory,
              checkpoint_every=settings["checkpoint_every"], resume=resume,
              allow_new_settings=allow_new_settings, config=config, progress=progress, model="prior",
              schedule=None if settings["schedule"] == "constant" else warmup_cosine(
                  settings["lr"], settings["steps"], settings["warmup"]),
              ema_decay=settings["ema_decay"] or None)
    seconds = time.perf_counter() - start
    history = os.path.join(directory, "history.json")
    curves = _curves(history, os.path.join(run_dir, "figures", "prior_curves.png"), ("loss", "bits"))
    num_codes = config["num_codes"]
    baselines = {"uniform_bits": uniform_bits(num_codes),
                 "unigram_bits": unigram_bits(train_grids.indices, test_grids.indices, num_codes),
                 "independent_bits": independent_bits(train_grids.indices, test_grids.indices, num_codes)}
    best = _best_eval(history, "test_bits")
    if "test_bits" in best:   # the whole model's bound, prior + reconstruction (likelihood.py)
        baselines["bits_per_dim"] = vqvae_bits_per_dim(
            lambda indices: vqvae.model.decode_indices(vqvae.params, indices), best["test_bits"], *pairs)
    return dict(best, **baselines, conditional=conditional,
                gated=config["gated"], seconds=seconds, checkpoint=trained_path(run_dir, "prior", "prior", ""),
                figures=[str(curves)])


def _sample_labels(config, labels, n):
    """(n,) labels: as given (one value is repeated n times), or for a conditional prior
    without labels every class in turn; None for an unconditional prior without labels.
    sample_grids checks them against the prior (range; labels for an unconditional one)."""
    if labels is None:
        if config["num_classes"] is None:
            return None
        return onp.sort(onp.arange(n) % config["num_classes"])       # blocks of classes 0, 1, ...
    labels = onp.asarray(labels).reshape(-1)
    if len(labels) == 1:
        labels = onp.repeat(labels, n)
    if len(labels) != n:
        raise ValueError(f"give one label or n = {n} labels, got {len(labels)}")
    return labels


def sample(run_dir, n=64, temperature=1.0, top_k=None, seed=0, labels=None, name=None,
           compare=False, force=False, progress=True):
    """Draw n code grids from the run's best prior, decode them, and save both; returns the PNG path.

    Writes RUN/samples/<name>.npy (indices (n, h, w) int64) and <name>.png (decoded images);
    name defaults to e.g. 'seed0_T1' (plus '_top10', '_labels' when used). labels: one
    class or n classes for a conditional prior (default: every class in turn).
    Existing sample files are only replaced with force=True.
    compare=True also writes figures/sample_comparison.png: the flat VQ-VAE's random
    codebook rows (if RUN/flat_vqvae exists), independent cells, and these samples.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if name is not None and (not name or name.startswith(".") or os.sep in name
                             or "/" in name or (os.altsep and os.altsep in name)):
        raise ValueError(f"--name must be a plain file name stem inside {run_dir}/samples (no path "
                         f"separators, not starting with '.'), got {name!r}")
    if name is None:
        name = f"seed{seed}_T{temperature:g}" + (f"_top{top_k}" if top_k else "") \
            + ("_labels" if labels is not None else "")
    folder = os.path.join(run_dir, "samples")
    existing = [p for p in (os.path.join(folder, f"{name}{ext}") for ext in (".npy", ".png"))
                if os.path.exists(p)]
    if existing and not force:
        raise ValueError(f"{existing[0]} already exists: choose another --name, or pass --force "
                         f"to replace it")
    vqvae = load_vqvae(run_dir)
    prior_dir = os.path.join(run_dir, "prior")
    ckpt = load_checkpoint(trained_path(run_dir, "prior", "prior", "minivq train-prior --run {run}"),
                           model="prior")
    check_same_vqvae(read_json(os.path.join(prior_dir, "config.json"), "run config")["vqvae_sha256"],
                      vqvae.sha256, prior_dir, f"run `minivq encode --run {run_dir}` and "
                                               f"`minivq train-prior --run {run_dir} --force` again")
    prior = build_prior(ckpt["config"])             # the architecture saved with the weights
    config = prior.config
    labels = _sample_labels(config, labels, n)
    codebook = vqvae.params["quantizer"]["codebook"] if config["input_mode"] == "codes" else None
    h, w = code_grid_shape(vqvae.model.config)
    rng = onp.random.default_rng(seed)
    grids = []
    with tqdm(total=n, desc="sample", disable=not progress, dynamic_ncols=True) as bar:
        for start in range(0, n, SAMPLE_CHUNK):
            count = min(SAMPLE_CHUNK, n - start)
            part = None if labels is None else labels[start:start + count]
            grids.append(sample_grids(prior, averaged_params(ckpt), count, h, w, rng, temperature,
                                      top_k, part, codebook))
            bar.update(count)
    grids = onp.concatenate(grids)                                   # (n, h, w) int64
    os.makedirs(folder, exist_ok=True)
    with atomic_open(os.path.join(folder, f"{name}.npy")) as f:
        onp.save(f, grids)
    images = decode(vqvae.model, vqvae.params, grids)
    title = f"PixelCNN prior, T = {temperature:g}" + (f", top-{top_k}" if top_k else "")
    path = image_grid(images, os.path.join(folder, f"{name}.png"), title=title)
    if compare:
        compare_samples(run_dir, images, seed)
    return str(path)


def score_lines(run_dir, image_sets):
    """[(score dict or None, one line)] for each of image_sets (a list of (N, H, W, C) arrays):
    the digit classifier's score of 28x28x1 images in [0, 1] against the run's own
    train/test images (metrics.sample_score); other shapes have no classifier, and the
    line says so."""
    shapes = [onp.shape(images)[1:] for images in image_sets]
    dataset = None
    if any(shape == IMAGE_SHAPE for shape in shapes):
        dataset = _training_data(load_vqvae(run_dir), run_dir, download=False)   # loaded once
    lines = []
    for images, shape in zip(image_sets, shapes):
        if shape != IMAGE_SHAPE:
            lines.append((None, f"score: none (the sample score's digit classifier reads 28x28x1 "
                                f"images; these are {'x'.join(map(str, shape))})"))
            continue
        score = sample_score(onp.clip(images, 0.0, 1.0), train_images=dataset.x_train,
                             test_images=dataset.x_test)
        lines.append((score, format_score(score)))
    return lines


def score_line(run_dir, images):
    """(score dict or None, one line) of one set of images (N, H, W, C); see score_lines."""
    return score_lines(run_dir, [images])[0]


def _spread(x, n):
    """n images of x evenly spaced over it, not the first n: a set sorted by class would show one class."""
    return x[onp.linspace(0, len(x) - 1, min(n, len(x))).round().astype(int)]


def real_sets(run_dir, n):
    """[('real test digits', x), ('VQ-VAE reconstructions', x_hat)]: n test images (N, H, W, C),
    evenly spread over the test set, and their reconstructions by the run's best VQ-VAE."""
    vqvae = load_vqvae(run_dir)
    x = _spread(_training_data(vqvae, run_dir, download=False).x_test, n)
    indices, _ = vqvae.model.encode(vqvae.params, x)                  # (n, h, w)
    return [("real test digits", onp.asarray(x, onp.float64)),
            ("VQ-VAE reconstructions", decode(vqvae.model, vqvae.params, indices))]


def baseline_sets(run_dir, n, seed=0):
    """[(title, images (n, H, W, C))]: the flat VQ-VAE's random codebook rows (left out when
    the run has no flat VQ-VAE) and independent cells of the grid VQ-VAE's codes."""
    vqvae = load_vqvae(run_dir)
    train_grids, _, _ = load_codes(run_dir)
    rng = onp.random.default_rng(seed)
    sets = []
    if os.path.isdir(os.path.join(run_dir, MODEL_DIRS["flat"])):
        flat = load_vqvae(run_dir, "flat")
        _, rows = random_codebook_rows(flat.params["quantizer"]["codebook"], n, rng)   # (n, d)
        flat_images = flat.model.decode(flat.params, rows[:, None, None, :])          # (n, 1, 1, d) in
        sets.append(("flat VQ-VAE: random codebook row", onp.clip(flat_images, 0.0, 1.0)))
    independent = sample_independent(train_grids.indices, vqvae.model.config["num_codes"], n, rng)
    return sets + [("independent cells", decode(vqvae.model, vqvae.params, independent))]


def compare_samples(run_dir, prior_images, seed=0):
    """figures/sample_comparison.png: random flat-VQ-VAE codebook rows | independent cells | prior.

    prior_images: decoded prior samples (n, H, W, C); the baselines draw n each. The flat
    panel is left out when the run has no flat VQ-VAE. Returns the path.
    """
    panels = baseline_sets(run_dir, len(prior_images), seed) + [("PixelCNN prior", prior_images)]
    return str(sample_comparison(panels, os.path.join(run_dir, "figures", "sample_comparison.png")))


def reconstruct(run_dir, n=16, kind="grid", download=False):
    """figures/reconstructions.png (flat: flat_reconstructions.png): n test images, evenly
    spread over the test set, above their reconstructions by the run's best VQ-VAE.
    Returns the path."""
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    vqvae = load_vqvae(run_dir, kind)
    x = _spread(_training_data(vqvae, run_dir, download).x_test, n)
    recon = onp.clip(vqvae.model.decode(vqvae.params, vqvae.model.encode(vqvae.params, x)[1]), 0.0, 1.0)
    name = "reconstructions.png" if kind == "grid" else "flat_reconstructions.png"
    return str(reconstructions(x, recon, os.path.join(run_dir, "figures", name), n=n))
