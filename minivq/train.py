"""A small, model-agnostic training loop: minibatches, an optimizer, hooks, eval, checkpoints.

    result = train(model.loss_and_aux, params, x_train, steps=3000, batch_size=128,
                   lr=1e-3, rng=rng, step_hook=model.step_hook,
                   hook_state=model.init_state(params),
                   eval_fn=lambda p: model.evaluate(p, x_test), eval_every=1000,
                   out_dir="runs/vqvae", config=model.config)

One step: draw a batch, one forward + backward pass (`value_and_grad`; the loss
function's aux dict comes out of the same pass, unwrapped with `getval`), an optimizer
update (`optimizer`, default Adam; `schedule` sets its learning rate per step), then
`step_hook` for updates that need no gradient (EMA codebook, dead-code restarts), then,
with `ema_decay`, the running weight average that eval and the callers' sampling use
(Polyak & Juditsky 1992). Every scalar in aux is logged to the history and the tqdm bar.

Files written to out_dir:
    checkpoint.npz  params, optimizer state, config, step, hook state, rng and batch-order
                    state, the weight average (extra['ema_params']) and the history so far;
                    every `checkpoint_every` steps and at the end (atomic writes, only of
                    finite parameters).
    best.npz        the same, at the eval with the lowest `best_metric` so far.
    history.json    {'settings', 'train': [per-step metrics], 'eval': [per-eval metrics]},
                    written after each checkpoint (and rebuilt from it on resume).
With resume=True the loop restarts from checkpoint.npz and continues bit-exactly: N
steps, then resume to 2N, gives the same parameters as 2N steps in one go.
"""
import json
import math
import numbers
import os
import time
from collections import namedtuple

import numpy as onp
from autograd import value_and_grad
from autograd.tracer import getval
from tqdm import tqdm

from .checkpoint import load_checkpoint, rng_from_json, rng_state_to_json, save_checkpoint
from .files import as_stored, atomic_write_json, read_json, remove_temp_files
from .optim import adam
from .schedules import ema_decay_at
from .threads import apply_threads
from .tree import tree_flatten_with_paths, tree_map

# ema_params: the weight average (None without ema_decay); what eval saw and sampling should use
TrainResult = namedtuple("TrainResult", ["params", "opt_state", "hook_state", "history", "ema_params"],
                         defaults=(None,))

SHOWN_METRICS = ("loss", "recon_mse", "perplexity")   # on the tqdm bar, when present
TRAIN_FILES = ("checkpoint.npz", "best.npz", "history.json")


class TrainingDivergedError(RuntimeError):
    """The loss, a gradient or a parameter became NaN or inf; the checkpoints on disk are kept."""


def averaged_params(ckpt):
    """The parameters to evaluate and sample from in a loaded checkpoint: the weight
    average when the run kept one (train(..., ema_decay=...)), else the trained params."""
    return ckpt["extra"].get("ema_params", ckpt["params"]) if ckpt.get("extra") else ckpt["params"]


def ema_update(ema, params, decay, step):
    """ema <- d ema + (1 - d) params with d = ema_decay_at(decay, step), leaf by leaf.

    step: updates done before this one (0 after the first update). Keeps the leaves' dtype.
    """
    d = ema_decay_at(decay, step)
    return tree_map(lambda a, p: (d * a + (1.0 - d) * p).astype(p.dtype), ema, params)


def value_grad_and_aux(loss_fn, params, batch):
    """(loss, grads, aux) from ONE forward and backward pass; loss is a 0-d array.

    loss_fn(params, batch) returns a scalar or (scalar, aux dict). The aux values leave
    the traced function as autograd boxes; `getval` unwraps them to plain arrays.
    """
    captured = {}

    def scalar_loss(p):
        out = loss_fn(p, batch)
        loss, captured["aux"] = out if isinstance(out, tuple) else (out, {})
        return loss

    loss, grads = value_and_grad(scalar_loss)(params)
    aux = {key: getval(value) for key, value in captured["aux"].items()}
    return loss, grads, aux


def scalar_metrics(aux):
    """The 0-d entries of aux as Python floats, e.g. {'recon_mse': 0.01, 'perplexity': 31.2}."""
    return {key: float(value) for key, value in aux.items() if onp.ndim(value) == 0}


def next_batch(data, sampler, batch_size, rng):
    """(batch, new sampler state): epochs of random permutations, leftover rows skipped.

    sampler: {'order': (N,) int64 permutation of this epoch (empty before the first),
    'position': 0-d int64}. Keeping it in the checkpoint makes the stream resumable.
    """
    order, position = sampler["order"], int(sampler["position"])
    if position + batch_size > len(order):
        order, position = rng.permutation(len(data)).astype(onp.int64), 0
    batch = data[order[position:position + batch_size]]
    return batch, {"order": order, "position": onp.array(position + batch_size, onp.int64)}


def _check_step(loss, loss_dtype, params, grads, step):
    """TrainingDivergedError on a non-finite loss or gradient; TypeError on a precision leak.

    A float64 constant in a float32 model silently doubles the cost of every matmul; it
    shows up as a loss (or a gradient) whose dtype differs from the parameters'.
    """
    if not math.isfinite(loss):
        raise TrainingDivergedError(f"loss became {loss} at step {step + 1}")
    for (path, p), (_, g) in zip(tree_flatten_with_paths(params), tree_flatten_with_paths(grads)):
        g = onp.asarray(g)
        if loss_dtype != p.dtype or g.dtype != p.dtype:
            raise TypeError(f"parameter {path} is {p.dtype} but the loss is {loss_dtype} and its "
                            f"gradient {g.dtype}: a constant of another precision leaked into the loss")
        if not onp.all(onp.isfinite(g)):
            raise TrainingDivergedError(f"gradient of {path} became non-finite at step {step + 1} "
                                        f"(loss {loss})")


def _check_params(params, step, loss):
    """TrainingDivergedError if the update of `step` left a parameter non-finite."""
    for path, p in tree_flatten_with_paths(params):
        if not onp.all(onp.isfinite(p)):
            raise TrainingDivergedError(f"parameter {path} became non-finite in the update of "
                                        f"step {step + 1} (loss {loss}; learning rate too high?)")


def check_settings(steps, batch_size, lr, num_examples, eval_every=1, checkpoint_every=1):
    """ValueError unless the loop's settings make sense for `num_examples` training examples."""
    def integer(value):
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)

    problems = []
    if not (integer(steps) and steps >= 0):
        problems.append(f"steps must be an integer >= 0, got {steps!r}")
    if not (integer(batch_size) and 1 <= batch_size <= num_examples):
        problems.append(f"batch_size must be an integer in [1, {num_examples}] (the number of "
                        f"training examples), got {batch_size!r}")
    if not (isinstance(lr, numbers.Real) and 0 < lr < math.inf):
        problems.append(f"lr must be a finite number > 0, got {lr!r}")
    for name, value in (("eval_every", eval_every), ("checkpoint_every", checkpoint_every)):
        if not (integer(value) and value >= 1):
            problems.append(f"{name} must be an integer >= 1, got {value!r}")
    if problems:
        raise ValueError("; ".join(problems))


def check_data_precision(data, params):
    """ValueError if float `data` is of another precision than the float parameters.

    float64 images with float32 parameters would run every step in float64 (twice the
    cost); the step check would then blame the loss for a leaked constant.
    """
    dtypes = sorted({str(onp.asarray(p).dtype) for _, p in tree_flatten_with_paths(params)
                     if onp.asarray(p).dtype.kind == "f"})
    kind = getattr(getattr(data, "dtype", None), "kind", None)
    if kind == "f" and dtypes and str(data.dtype) not in dtypes:
        raise ValueError(f"data is {data.dtype} but the parameters are {', '.join(dtypes)}: cast "
                         f"the data first (data.astype(numpy.{dtypes[0]}))")


def _resume_history(ckpt, settings, allow_new_settings, paths):
    """The history of a checkpoint, to continue; ValueError if the training settings changed.

    The history travels inside the checkpoint, so history.json is rebuilt from it even
    when a kill fell between the checkpoint write and the history write.
    """
    path = paths["checkpoint.npz"]
    if "history" in ckpt["extra"]:
        history = json.loads(str(ckpt["extra"]["history"]))
    else:                      # a checkpoint of an older minivq: history.json cut at its step
        history = read_json(paths["history.json"], "training history")
        for key in ("train", "eval"):
            history[key] = [r for r in history[key] if r["step"] <= ckpt["step"]]
    old = history["settings"]
    changes = {key: [old.get(key), value] for key, value in settings.items()
               if key != "steps" and old.get(key) != value}
    if changes and not allow_new_settings:
        detail = ", ".join(f"{key} {a} -> {b}" for key, (a, b) in changes.items())
        raise ValueError(f"cannot resume {path} with other settings ({detail}): resume with the "
                         f"run's own settings, or state the change (allow_new_settings=True; "
                         f"CLI: --allow-new-settings)")
    if changes:
        history.setdefault("changes", []).append(dict(step=int(ckpt["step"]), **changes))
    history["settings"] = settings
    return history


def train(loss_fn, params, data, steps, batch_size, lr, rng, *, optimizer=None, step_hook=None,
          hook_state=None, eval_fn=None, eval_every=1000, best_metric="test_mse", out_dir=None,
          checkpoint_every=1000, resume=False, allow_new_settings=False, config=None, progress=True,
          threads="auto", model=None, schedule=None, ema_decay=None):
    """Minimise loss_fn over minibatches of `data` with `optimizer`; returns a TrainResult.

    loss_fn(params, batch) -> scalar or (scalar, aux dict); data: (N, ...) training
    examples; steps: total number of steps (including those of a resumed run); rng:
    numpy Generator for batch order and hooks (advanced in place; on resume its state
    is set from the checkpoint). It is the loop's ONE random stream: a loss_fn or hook
    that draws random numbers (dropout) must draw them from this same Generator, so that
    the checkpoint holds every stream and resume is bit-exact. step_hook(params,
    hook_state, aux, batch, rng) -> (params, hook_state) runs after each optimizer step;
    hook_state is a tree of arrays saved in checkpoints. eval_fn(params) -> dict of
    floats runs every eval_every steps and at the end; the lowest `best_metric` is kept
    as best.npz. config: JSON dict stored in checkpoints (resume refuses a different one);
    model: the model's name ('vqvae', 'prior', ...) stored with it, checked by
    load_checkpoint(path, model=...). data: float data must have the parameters' precision.
    resume=True needs out_dir/checkpoint.npz and the run's own settings (only `steps`
    may grow), unless allow_new_settings=True, which records the change in the history.
    Raises TrainingDivergedError on a NaN/inf loss, gradient or updated parameter, before
    anything of that step is saved. Ctrl-C raises KeyboardInterrupt saying what is on disk.
    optimizer: an (init, update) pair from minivq.optim, default adam(lr); resume with the
    same one (its state is in the checkpoint).
    schedule: a learning-rate schedule (minivq.schedules, a function of the step) for the
    default Adam, instead of the constant lr (lr is still checked and recorded; pass it as
    the schedule's peak); with an optimizer, build that one with the schedule instead.
    Its value is logged per step as 'lr'.
    ema_decay: keep a running average of the parameters, ema <- d ema + (1 - d) params
    after every step with d = min(ema_decay, (1 + t) / (10 + t)) (schedules.ema_decay_at);
    eval_fn sees the average, checkpoints store it as extra['ema_params'] (read it back
    with `averaged_params(ckpt)`), and the result holds it as ema_params.
    threads: numpy's BLAS threads for the run, an int or 'auto' (minivq.threads: the free
    cores, unless OPENBLAS_NUM_THREADS or an earlier explicit count says otherwise); the
    progress bar shows the count and prints why.
    """
    check_settings(steps, batch_size, lr, len(data), eval_every, checkpoint_every)
    check_data_precision(data, params)
    if resume and out_dir is None:
        raise ValueError("resume=True needs the out_dir of the run to continue")
    if schedule is not None and optimizer is not None:
        raise ValueError("give the schedule to the optimizer (e.g. sgd(schedule)) or to train(), "
                         "not both")
    if ema_decay is not None and not 0.0 < ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay!r}")
    opt_init, opt_update = adam(schedule or lr) if optimizer is None else optimizer
    opt_state = opt_init(params)
    hook_state = {} if hook_state is None else hook_state
    sampler = {"order": onp.zeros(0, onp.int64), "position": onp.array(0, onp.int64)}
    settings = {"steps": steps, "batch_size": batch_size, "lr": lr, "eval_every": eval_every,
                "checkpoint_every": checkpoint_every, "best_metric": best_metric}
    if schedule is not None:
        settings["schedule"] = getattr(schedule, "settings", "custom")
    if ema_decay is not None:
        settings["ema_decay"] = ema_decay
    history = {"settings": settings, "train": [], "eval": []}
    best, start, saved = math.inf, 0, {}                # saved: {file name: step} written by this loop
    paths = {}
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        paths = {name: os.path.join(out_dir, name) for name in TRAIN_FILES}
        remove_temp_files(out_dir, TRAIN_FILES)         # left by a process killed mid-write

    if resume:
        if not os.path.isfile(paths["checkpoint.npz"]):
            raise FileNotFoundError(f"cannot resume: {paths['checkpoint.npz']} does not exist (the "
                                    f"run wrote no checkpoint yet); start it over instead of resuming")
        ckpt = load_checkpoint(paths["checkpoint.npz"], model=model)
        if ckpt["config"] != as_stored(config):
            raise ValueError(f"cannot resume {paths['checkpoint.npz']}: it was trained with config "
                             f"{ckpt['config']}, got {as_stored(config)}")
        history = _resume_history(ckpt, settings, allow_new_settings, paths)
        params, start = ckpt["params"], ckpt["step"]
        opt_state = ckpt["opt_state"]
        extra = ckpt["extra"]
        hook_state, sampler, best = extra["hook_state"], extra["sampler"], float(extra["best"])
        ema = extra.get("ema_params")
        rng.bit_generator.state = rng_from_json(extra["rng"]).bit_generator.state
        saved["checkpoint.npz"] = start
        atomic_write_json(paths["history.json"], history)

    def save(name, step):
        extra = {"rng": onp.array(rng_state_to_json(rng)), "hook_state": hook_state,
                 "sampler": sampler, "best": onp.array(best), "history": onp.array(json.dumps(history))}
        if ema is not None:
            extra["ema_params"] = ema
        save_checkpoint(paths[name], params, opt_state, config=config, step=step, extra=extra,
                        model=model)
        saved[name] = step

    if ema_decay is None:
        ema = None
    elif not resume or ema is None:                     # a fresh average (or one newly switched on)
        ema = tree_map(onp.copy, params)
    blas_threads, blas_note = apply_threads(threads)    # e.g. 1 beside a busy process (2.8x faster)
    desc = "train" if blas_threads is None else f"train, BLAS threads {blas_threads}"
    t0, done = time.perf_counter(), start
    bar = tqdm(total=steps, initial=start, disable=not progress, desc=desc, dynamic_ncols=True)
    if progress:
        bar.write(blas_note)
    try:
        for step in range(start, steps):
            batch, sampler = next_batch(data, sampler, batch_size, rng)
            loss, grads, aux = value_grad_and_aux(loss_fn, params, batch)
            loss_dtype, loss = onp.result_type(loss), float(loss)
            _check_step(loss, loss_dtype, params, grads, step)
            params, opt_state = opt_update(params, grads, opt_state)
            _check_params(params, step, loss)           # before the hook reads them (EMA codebook)
            if step_hook is not None:
                params, hook_state = step_hook(params, hook_state, aux, batch, rng)
                _check_params(params, step, loss)       # before any eval or save of this step
            if ema is not None:
                ema = ema_update(ema, params, ema_decay, step)
            done = step + 1
            metrics = dict(scalar_metrics(aux), loss=loss)
            if schedule is not None:
                metrics["lr"] = float(schedule(step))
            history["train"].append(dict(step=done, **metrics))
            bar.update(1)
            bar.set_postfix({k: f"{metrics[k]:.4g}" for k in SHOWN_METRICS if k in metrics},
                            refresh=False)
            if eval_fn is not None and (done % eval_every == 0 or done == steps):
                result = {k: float(v) for k, v in eval_fn(params if ema is None else ema).items()}
                history["eval"].append(dict(step=done, seconds=time.perf_counter() - t0, **result))
                bar.write(f"step {done}: " + ", ".join(f"{k} {v:.5g}" for k, v in result.items()))
                if result.get(best_metric, math.inf) < best:
                    best = result[best_metric]
                    if out_dir is not None:
                        save("best.npz", done)
            if out_dir is not None and (done % checkpoint_every == 0 or done == steps):
                save("checkpoint.npz", done)
                atomic_write_json(paths["history.json"], history)
    except TrainingDivergedError as err:
        if out_dir is None:
            raise
        raise TrainingDivergedError(f"{err}. Nothing of the diverged steps was saved; "
                                    f"{_on_disk(paths, saved)}") from None
    except KeyboardInterrupt:
        if out_dir is None:
            raise
        raise KeyboardInterrupt(f"interrupted after step {done}; {_on_disk(paths, saved)}") from None
    finally:
        bar.close()
    return TrainResult(params, opt_state, hook_state, history, ema)


def _on_disk(paths, saved):
    """What a stopped run leaves: the checkpoints written (and where to go on), or none."""
    if "checkpoint.npz" not in saved:
        return (f"no checkpoint of this run is on disk yet in {os.path.dirname(paths['checkpoint.npz'])}"
                f" (nothing to resume): start it again")
    kept = [f"{paths[name]} (step {step})" for name, step in sorted(saved.items())]
    if "best.npz" not in saved and os.path.isfile(paths["best.npz"]):
        kept.append(f"{paths['best.npz']} (from before)")
    return (f"kept: {', '.join(kept)}; continue from checkpoint.npz with --resume (after "
            f"divergence: a lower lr and --allow-new-settings), or use best.npz as it is")
