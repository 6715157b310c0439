"""The minivq pipeline as plain functions over a run directory; `cli.py` is only argparse.

    train_vqvae(RUN) -> encode(RUN) -> train_prior(RUN) -> sample(RUN) / reconstruct(RUN)

Each step finds what it needs in RUN and writes its results there, so that
`sample(RUN)` works days later from a fresh process:

    RUN/vqvae/       config.json, checkpoint.npz, best.npz, history.json   train_vqvae
    RUN/flat_vqvae/  the same for a kind='flat' VQ-VAE (one code per image)
    RUN/codes/       train.npz, test.npz (CodeGrids), source.json          encode
    RUN/prior/       config.json, checkpoint.npz, best.npz, history.json   train_prior
    RUN/figures/     *.png                                                 every step
    RUN/samples/     <name>.png (decoded grid), <name>.npy (code indices)  sample

config.json holds the model config, the data spec and the training settings; the
checkpoints and history.json are those of `train.train`. Downstream steps use best.npz
(the best held-out metric), or checkpoint.npz if there is no best.npz. codes/source.json
and prior/config.json record the SHA-256 of the VQ-VAE checkpoint the codes came from,
so a prior is never silently paired with a VQ-VAE trained further since.

`demo(out_dir)` runs the whole pipeline on the embedded MNIST (see its docstring).
"""
import hashlib
import json
import math
import os
import tempfile
import time
from collections import namedtuple

import numpy as onp
from tqdm import tqdm

from .checkpoint import load_checkpoint
from .codes import encode_dataset, load_code_grids, save_code_grids
from .data import IDX_SOURCES, load_dataset
from .pixelcnn import bits_per_code, init_pixelcnn, make_config, prior_loss
from .plots import (code_grid_map, codebook_usage, history_records, image_grid, reconstructions,
                    sample_comparison, training_curves)
from .quantize import perplexity, used_codes
from .sampling import (independent_bits, random_codebook_rows, sample_grids,
                       sample_independent, uniform_bits, unigram_bits)
from .train import train
from .vqvae import build_vqvae, code_grid_shape, init_codebook_from_batch, make_vqvae_config

MODEL_DIRS = {"grid": "vqvae", "flat": "flat_vqvae"}
RUN_FILES = ("config.json", "checkpoint.npz", "best.npz", "history.json")
SAMPLE_CHUNK = 100        # grids drawn per sample_grids call (one progress-bar tick each)
DECODE_BATCH = 500        # images decoded per call: bounds the decoder's activation memory

Trained = namedtuple("Trained", ["model", "params", "path", "sha256", "step"])


# ---------------------------------------------------------------- run-directory helpers

def _read_json(path):
    with open(path) as f:
        return json.load(f)


def _write_json(path, obj):
    """Atomic JSON write (temp file in the same folder, then os.replace)."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1)
    os.chmod(tmp, 0o644)                 # mkstemp makes 0600; this is an ordinary data file
    os.replace(tmp, path)


def _normalised(obj):
    return json.loads(json.dumps(obj, sort_keys=True))          # tuples -> lists, as stored


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _trained(run, folder, what, command):
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


def _load_vqvae(run_dir, kind="grid"):
    """Trained(model, params, path, sha256, step): the run's best VQ-VAE of this kind."""
    command = "minivq train-vqvae --out {run}" + (" --kind flat" if kind == "flat" else "")
    path = _trained(run_dir, MODEL_DIRS[kind], f"{kind} VQ-VAE", command)
    ckpt = load_checkpoint(path)
    return Trained(build_vqvae(ckpt["config"]), ckpt["params"], path, _sha256(path), ckpt["step"])


def _data_spec(vqvae):
    """The dataset spec the VQ-VAE was trained on, from the config.json next to its checkpoint."""
    return _read_json(os.path.join(os.path.dirname(vqvae.path), "config.json"))["data"]


def _load_codes(run_dir):
    """(train CodeGrids, test CodeGrids, source record) written by `encode`."""
    folder = os.path.join(run_dir, "codes")
    if not os.path.isfile(os.path.join(folder, "source.json")):
        raise FileNotFoundError(f"no code grids in {run_dir} (expected {folder}/train.npz): "
                                f"run `minivq encode --run {run_dir}` first")
    return (load_code_grids(os.path.join(folder, "train.npz")),
            load_code_grids(os.path.join(folder, "test.npz")),
            _read_json(os.path.join(folder, "source.json")))


def _check_same_vqvae(recorded, current, what, fix):
    if recorded != current:
        raise ValueError(f"{what} was made from another VQ-VAE checkpoint than the current one "
                         f"(it has been retrained since): {fix}")


def _differences(old, new, prefix=""):
    """[(dotted key, old value, new value)] where two JSON-like dicts differ."""
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changes += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            changes.append((prefix + key, a, b))
    return changes


def _prepare(directory, settings, resume, force, what, command):
    """Check the run folder before training; returns the saved config.json record or None.

    A folder that already holds a run needs resume=True (continue it, with the same
    settings) or force=True (its run files are deleted and training starts over).
    """
    saved_path = os.path.join(directory, "config.json")
    if not os.path.isfile(saved_path):
        return None
    saved = _read_json(saved_path)
    if resume:
        changed = _differences({key: saved.get(key) for key in settings}, _normalised(settings))
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


def _curves(history_path, figure_path, keys):
    """Training curves from history.json: every train record, plus eval metrics as test_*."""
    return training_curves(history_records(_read_json(history_path)), figure_path, keys)


def _best_eval(history_path, metric):
    evals = _read_json(history_path)["eval"]
    return min(evals, key=lambda record: record[metric]) if evals else {}


def _decode(model, params, indices):
    """Decoded images (N, H, W, C) clipped to [0, 1], in batches."""
    parts = [model.decode_indices(params, indices[i:i + DECODE_BATCH])
             for i in range(0, len(indices), DECODE_BATCH)]
    return onp.clip(onp.concatenate(parts), 0.0, 1.0)


# ---------------------------------------------------------------- pipeline steps

def train_vqvae(run_dir, data=None, steps=2000, batch_size=128, lr=1e-3, eval_every=250,
                checkpoint_every=None, seed=0, resume=False, force=False, download=False,
                progress=True, **model):
    """Train a VQ-VAE into RUN/vqvae (kind 'grid') or RUN/flat_vqvae (kind 'flat').

    data: a `load_dataset` spec (default 'mnist-embedded', or the run's on resume).
    model: `make_vqvae_config` keys (kind, num_codes, code_dim, hidden, beta,
    codebook_update, ...); None values mean the default (or the run's value on resume).
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
    previous = _read_json(previous_path) if resume and os.path.isfile(previous_path) else {}
    spec = data or previous.get("data", "mnist-embedded")
    dataset = load_dataset(spec, download=download)
    if spec != "mnist-embedded" and spec not in IDX_SOURCES:
        spec = os.path.abspath(spec)           # a file or folder: found again from any cwd
    config = make_vqvae_config(previous.get("model"), **dict(model, input_shape=dataset.x_train.shape[1:]))
    _prepare(directory, {"model": config, "data": spec}, resume, force, "trained VQ-VAE",
             f"minivq train-vqvae --out {run_dir}")

    vqvae = build_vqvae(config)
    rng = onp.random.default_rng(seed)
    params = vqvae.init(rng)
    first = dataset.x_train[rng.permutation(len(dataset.x_train))[:batch_size]]
    params = init_codebook_from_batch(vqvae, params, first, rng)
    checkpoint_every = checkpoint_every or eval_every
    os.makedirs(directory, exist_ok=True)
    _write_json(os.path.join(directory, "config.json"), _normalised({
        "model": config, "data": spec, "seed": seed, "steps": steps, "batch_size": batch_size,
        "lr": lr, "eval_every": eval_every, "checkpoint_every": checkpoint_every}))
    start = time.perf_counter()
    train(vqvae.loss_and_aux, params, dataset.x_train, steps, batch_size, lr, rng,
          step_hook=vqvae.step_hook, hook_state=vqvae.init_state(params),
          eval_fn=lambda p: vqvae.evaluate(p, dataset.x_test), eval_every=eval_every,
          best_metric="test_mse", out_dir=directory, checkpoint_every=checkpoint_every,
          resume=resume, config=config, progress=progress)
    seconds = time.perf_counter() - start
    history = os.path.join(directory, "history.json")
    curves = _curves(history, os.path.join(run_dir, "figures", f"{MODEL_DIRS[kind]}_curves.png"),
                     ("loss", "recon_mse", "perplexity"))
    best = _best_eval(history, "test_mse")
    return dict(best, kind=kind, num_codes=config["num_codes"], seconds=seconds,
                checkpoint=_trained(run_dir, MODEL_DIRS[kind], "VQ-VAE", ""), figures=[str(curves)])


def _encode_split(vqvae, params, x, labels, desc, batch_size, progress):
    with tqdm(total=len(x), desc=desc, disable=not progress, dynamic_ncols=True) as bar:
        def encode_batch(batch):
            bar.update(len(batch))
            return vqvae.encode(params, batch)
        return encode_dataset(encode_batch, x, batch_size, labels)


def encode(run_dir, batch_size=500, download=False, progress=True):
    """Encode the run's train and test images with its best grid VQ-VAE into RUN/codes.

    Writes codes/{train,test}.npz (indices (N, h, w), code vectors, labels), codes/source.json
    and figures codebook_usage.png (train codes) and code_grid.png (first test image).
    Returns a summary dict: shapes, perplexity and used codes of the train codes, paths.
    """
    vqvae = _load_vqvae(run_dir)
    dataset = load_dataset(_data_spec(vqvae), download=download)
    train_grids = _encode_split(vqvae.model, vqvae.params, dataset.x_train, dataset.y_train,
                                "encode train", batch_size, progress)
    test_grids = _encode_split(vqvae.model, vqvae.params, dataset.x_test, dataset.y_test,
                               "encode test", batch_size, progress)
    folder = os.path.join(run_dir, "codes")
    os.makedirs(folder, exist_ok=True)
    save_code_grids(os.path.join(folder, "train.npz"), train_grids)
    save_code_grids(os.path.join(folder, "test.npz"), test_grids)
    _write_json(os.path.join(folder, "source.json"),
                {"vqvae": os.path.relpath(vqvae.path, run_dir), "vqvae_step": vqvae.step,
                 "vqvae_sha256": vqvae.sha256})
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


def train_prior(run_dir, steps=1000, batch_size=32, lr=1e-3, eval_every=100, checkpoint_every=None,
                seed=0, resume=False, force=False, dropout=0.0, input_mode=None, gated=None,
                conditional=None, channels=None, num_blocks=None, first_kernel=None, kernel=None,
                progress=True):
    """Train a PixelCNN prior on RUN/codes into RUN/prior; the best held-out bits/code is kept.

    input_mode 'embedding' (learned per-index vectors) or 'codes' (the VQ-VAE's code
    vectors); gated: the gated PixelCNN; conditional: condition on the class labels
    (gated only). None means the pixelcnn default (or the run's value on resume).
    Writes figures/prior_curves.png; returns a summary dict with the baselines' bits/code.
    """
    vqvae = _load_vqvae(run_dir)
    train_grids, test_grids, source = _load_codes(run_dir)
    sha = vqvae.sha256
    _check_same_vqvae(source["vqvae_sha256"], sha, f"{run_dir}/codes",
                      f"run `minivq encode --run {run_dir}` again")
    directory = os.path.join(run_dir, "prior")
    previous_path = os.path.join(directory, "config.json")
    previous = _read_json(previous_path)["model"] if resume and os.path.isfile(previous_path) else {}
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
    codes_mode = options.get("input_mode", "embedding") == "codes"
    options["code_dim"] = vqvae.model.config["code_dim"] if codes_mode else None
    config = make_config(**options)
    saved = _prepare(directory, {"model": config}, resume, force, "trained prior",
                     f"minivq train-prior --run {run_dir}")
    if saved is not None:
        _check_same_vqvae(saved["vqvae_sha256"], sha, directory,
                          "start the prior over with --force")

    conditional = config["num_classes"] is not None
    rng, dropout_rng = onp.random.default_rng(seed), onp.random.default_rng(seed + 1)

    def split_args(grids, ids=slice(None)):
        """(indices, codes, labels) of some grids, as prior_loss takes them."""
        return (grids.indices[ids], grids.codes[ids] if codes_mode else None,
                grids.labels[ids] if conditional else None)

    def loss_fn(params, ids):                         # the loop's "data" are ids into the train grids
        loss = prior_loss(params, *split_args(train_grids, ids), dropout=dropout, rng=dropout_rng)
        return loss, {"bits": loss / math.log(2.0)}

    def eval_fn(params):
        return {"test_bits": bits_per_code(params, *split_args(test_grids))}

    checkpoint_every = checkpoint_every or eval_every
    os.makedirs(directory, exist_ok=True)
    _write_json(os.path.join(directory, "config.json"), _normalised({
        "model": config, "vqvae_sha256": sha, "seed": seed, "steps": steps,
        "batch_size": batch_size, "lr": lr, "dropout": dropout, "eval_every": eval_every,
        "checkpoint_every": checkpoint_every}))
    start = time.perf_counter()
    train(loss_fn, init_pixelcnn(rng, config), onp.arange(len(train_grids.indices)), steps,
          batch_size, lr, rng, eval_fn=eval_fn, eval_every=eval_every, best_metric="test_bits",
          out_dir=directory, checkpoint_every=checkpoint_every, resume=resume, config=config,
          progress=progress)
    seconds = time.perf_counter() - start
    history = os.path.join(directory, "history.json")
    curves = _curves(history, os.path.join(run_dir, "figures", "prior_curves.png"), ("loss", "bits"))
    num_codes = config["num_codes"]
    baselines = {"uniform_bits": uniform_bits(num_codes),
                 "unigram_bits": unigram_bits(train_grids.indices, test_grids.indices, num_codes),
                 "independent_bits": independent_bits(train_grids.indices, test_grids.indices, num_codes)}
    return dict(_best_eval(history, "test_bits"), **baselines, conditional=conditional,
                gated=config["gated"], seconds=seconds, checkpoint=_trained(run_dir, "prior", "prior", ""),
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
           compare=False, progress=True):
    """Draw n code grids from the run's best prior, decode them, and save both; returns the PNG path.

    Writes RUN/samples/<name>.npy (indices (n, h, w) int64) and <name>.png (decoded images);
    name defaults to e.g. 'seed0_T1' (plus '_top10', '_labels' when used). labels: one
    class or n classes for a conditional prior (default: every class in turn).
    compare=True also writes figures/sample_comparison.png: the flat VQ-VAE's random
    codebook rows (if RUN/flat_vqvae exists), independent cells, and these samples.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    vqvae = _load_vqvae(run_dir)
    prior_dir = os.path.join(run_dir, "prior")
    ckpt = load_checkpoint(_trained(run_dir, "prior", "prior", "minivq train-prior --run {run}"))
    _check_same_vqvae(_read_json(os.path.join(prior_dir, "config.json"))["vqvae_sha256"],
                      vqvae.sha256, prior_dir, f"run `minivq encode --run {run_dir}` and "
                                               f"`minivq train-prior --run {run_dir} --force` again")
    config = ckpt["config"]
    labels = _sample_labels(config, labels, n)
    codebook = vqvae.params["quantizer"]["codebook"] if config["input_mode"] == "codes" else None
    h, w = code_grid_shape(vqvae.model.config)
    rng = onp.random.default_rng(seed)
    grids = []
    with tqdm(total=n, desc="sample", disable=not progress, dynamic_ncols=True) as bar:
        for start in range(0, n, SAMPLE_CHUNK):
            count = min(SAMPLE_CHUNK, n - start)
            part = None if labels is None else labels[start:start + count]
            grids.append(sample_grids(ckpt["params"], config, count, h, w, rng, temperature,
                                      top_k, part, codebook))
            bar.update(count)
    grids = onp.concatenate(grids)                                   # (n, h, w) int64
    if name is None:
        name = f"seed{seed}_T{temperature:g}" + (f"_top{top_k}" if top_k else "") \
            + ("_labels" if labels is not None else "")
    folder = os.path.join(run_dir, "samples")
    os.makedirs(folder, exist_ok=True)
    onp.save(os.path.join(folder, f"{name}.npy"), grids)
    images = _decode(vqvae.model, vqvae.params, grids)
    title = f"PixelCNN prior, T = {temperature:g}" + (f", top-{top_k}" if top_k else "")
    path = image_grid(images, os.path.join(folder, f"{name}.png"), title=title)
    if compare:
        compare_samples(run_dir, images, seed)
    return str(path)


def compare_samples(run_dir, prior_images, seed=0):
    """figures/sample_comparison.png: random flat-VQ-VAE codebook rows | independent cells | prior.

    prior_images: decoded prior samples (n, H, W, C); the baselines draw n each. The flat
    panel is left out when the run has no flat VQ-VAE. Returns the path.
    """
    vqvae = _load_vqvae(run_dir)
    train_grids, _, _ = _load_codes(run_dir)
    n, rng = len(prior_images), onp.random.default_rng(seed)
    panels = []
    if os.path.isdir(os.path.join(run_dir, MODEL_DIRS["flat"])):
        flat = _load_vqvae(run_dir, "flat")
        _, rows = random_codebook_rows(flat.params["quantizer"]["codebook"], n, rng)   # (n, d)
        flat_images = flat.model.decode(flat.params, rows[:, None, None, :])          # (n, 1, 1, d) in
        panels.append(("flat VQ-VAE: random codebook row", onp.clip(flat_images, 0.0, 1.0)))
    independent = sample_independent(train_grids.indices, vqvae.model.config["num_codes"], n, rng)
    panels += [("independent cells", _decode(vqvae.model, vqvae.params, independent)),
               ("PixelCNN prior", prior_images)]
    return str(sample_comparison(panels, os.path.join(run_dir, "figures", "sample_comparison.png")))


def reconstruct(run_dir, n=16, kind="grid", download=False):
    """figures/reconstructions.png (flat: flat_reconstructions.png): n test images, evenly
    spread over the test set, above their reconstructions by the run's best VQ-VAE.
    Returns the path."""
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    vqvae = _load_vqvae(run_dir, kind)
    x_test = load_dataset(_data_spec(vqvae), download=download).x_test
    # evenly spaced, not the first n: a test set sorted by class would show one class only
    x = x_test[onp.linspace(0, len(x_test) - 1, min(n, len(x_test))).round().astype(int)]
    recon = onp.clip(vqvae.model.decode(vqvae.params, vqvae.model.encode(vqvae.params, x)[1]), 0.0, 1.0)
    name = "reconstructions.png" if kind == "grid" else "flat_reconstructions.png"
    return str(reconstructions(x, recon, os.path.join(run_dir, "figures", name), n=n))


# ---------------------------------------------------------------- the demo

DEMO_QUICK = dict(vqvae_steps=6, flat_steps=4, prior_steps=6, batch_size=16, prior_batch_size=16,
                  eval_every=3, prior_eval_every=3, n_samples=8)
# Small networks for --quick: the point is to exercise every step in seconds.
QUICK_VQVAE = dict(hidden=8, res_hidden=4, num_res_blocks=1, code_dim=4, num_codes=16)
QUICK_PRIOR = dict(channels=8, num_blocks=1)
# The demo's grid VQ-VAE: EMA codebook + dead-code restarts, the setting that met both
# acceptance targets (test MSE <= 0.0035, perplexity >= 40; bench/acceptance_vqvae.py).
DEMO_VQVAE = dict(codebook_update="ema", restart_after=100)
# The flat VQ-VAE is only a baseline: a slimmer trunk, k-means++ codes so none start dead.
FLAT_VQVAE = dict(kind="flat", hidden=32, res_hidden=16, num_res_blocks=1, codebook_init="kmeans++")


def demo(out_dir="runs/demo", vqvae_steps=2000, flat_steps=300, prior_steps=1000, batch_size=128,
         prior_batch_size=32, eval_every=250, prior_eval_every=100, n_samples=64, seed=0,
         quick=False, resume=False, progress=True, log=print):
    """The whole pipeline on the embedded MNIST: VQ-VAE, flat baseline, codes, prior, samples.

    Trains the grid VQ-VAE (28x28 -> 7x7 codes, K = 64, EMA codebook with dead-code
    restarts) and a small flat VQ-VAE, encodes
    the digits, trains the PixelCNN prior (best held-out checkpoint kept), draws n_samples
    grids, and writes every figure to out_dir/figures. Without resume each step starts
    over (replacing an earlier demo in out_dir); resume=True continues an interrupted
    one. quick=True: tiny networks and a few steps (seconds; for tests). `log` receives
    the progress headlines. Returns the summary dict (metrics, seconds, figure paths).
    """
    start = time.perf_counter()
    steps = dict(vqvae_steps=vqvae_steps, flat_steps=flat_steps, prior_steps=prior_steps,
                 batch_size=batch_size, prior_batch_size=prior_batch_size, eval_every=eval_every,
                 prior_eval_every=prior_eval_every, n_samples=n_samples)
    steps.update(DEMO_QUICK if quick else {})
    sizes, prior_sizes = (QUICK_VQVAE, QUICK_PRIOR) if quick else ({}, {})
    common = dict(resume=resume, force=not resume, seed=seed, progress=progress)
    log(f"[1/5] VQ-VAE, {steps['vqvae_steps']} steps -> {out_dir}/vqvae")
    vq = train_vqvae(out_dir, data="mnist-embedded", steps=steps["vqvae_steps"],
                     batch_size=steps["batch_size"], eval_every=steps["eval_every"],
                     **dict(DEMO_VQVAE, **sizes), **common)
    log(f"[2/5] flat VQ-VAE (baseline), {steps['flat_steps']} steps -> {out_dir}/flat_vqvae")
    flat = train_vqvae(out_dir, data="mnist-embedded", steps=steps["flat_steps"],
                       batch_size=steps["batch_size"], eval_every=max(steps["flat_steps"] // 2, 1),
                       **dict(FLAT_VQVAE, **sizes, kind="flat"), **common)
    log(f"[3/5] encoding the digits -> {out_dir}/codes")
    codes = encode(out_dir, progress=progress)
    log(f"[4/5] PixelCNN prior, {steps['prior_steps']} steps -> {out_dir}/prior")
    prior = train_prior(out_dir, steps=steps["prior_steps"], batch_size=steps["prior_batch_size"],
                        eval_every=steps["prior_eval_every"], **prior_sizes, **common)
    log(f"[5/5] sampling {steps['n_samples']} grids and drawing the figures")
    sample_start = time.perf_counter()
    sample_path = sample(out_dir, n=steps["n_samples"], seed=seed, progress=progress)
    sample_seconds = time.perf_counter() - sample_start
    vqvae = _load_vqvae(out_dir)
    prior_images = _decode(vqvae.model, vqvae.params, onp.load(sample_path[:-len(".png")] + ".npy"))
    figures = os.path.join(out_dir, "figures")
    paths = vq["figures"] + flat["figures"] + codes["figures"] + prior["figures"] + [
        str(image_grid(prior_images, os.path.join(figures, "prior_samples.png"),
                       title="PixelCNN prior samples")),
        compare_samples(out_dir, prior_images, seed),
        reconstruct(out_dir),
        reconstruct(out_dir, kind="flat")]
    return {"test_mse": vq.get("test_mse"), "perplexity": vq.get("perplexity"),
            "used_codes": vq.get("used_codes"), "num_codes": vq["num_codes"],
            "uniform_bits": prior["uniform_bits"], "unigram_bits": prior["unigram_bits"],
            "independent_bits": prior["independent_bits"], "prior_bits": prior.get("test_bits"),
            "prior_step": prior.get("step"), "n_samples": steps["n_samples"],
            "sample_seconds": sample_seconds, "seconds": time.perf_counter() - start,
            "figures": sorted(paths), "samples": sample_path}
