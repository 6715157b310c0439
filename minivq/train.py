"""A small, model-agnostic training loop: minibatches, Adam, hooks, eval, checkpoints.

    result = train(model.loss_and_aux, params, x_train, steps=3000, batch_size=128,
                   lr=1e-3, rng=rng, step_hook=model.step_hook,
                   hook_state=model.init_state(params),
                   eval_fn=lambda p: model.evaluate(p, x_test), eval_every=1000,
                   out_dir="runs/vqvae", config=model.config)

One step: draw a batch, one forward + backward pass (`value_and_grad`; the loss
function's aux dict comes out of the same pass, unwrapped with `getval`), an Adam
update, then `step_hook` for updates that need no gradient (EMA codebook, dead-code
restarts). Every scalar in aux is logged to the history and the tqdm bar.

Files written to out_dir:
    checkpoint.npz  params, Adam state, config, step, hook state, rng and batch-order
                    state; every `checkpoint_every` steps and at the end (atomic writes).
    best.npz        the same, at the eval with the lowest `best_metric` so far.
    history.json    {'settings', 'train': [per-step metrics], 'eval': [per-eval metrics]}.
With resume=True the loop restarts from checkpoint.npz and continues bit-exactly: N
steps, then resume to 2N, gives the same parameters as 2N steps in one go.
"""
import json
import math
import os
import time
from collections import namedtuple

import numpy as onp
from autograd import value_and_grad
from autograd.tracer import getval
from tqdm import tqdm

from .checkpoint import load_checkpoint, rng_from_json, rng_state_to_json, save_checkpoint
from .files import as_stored, atomic_write_json
from .optim import adam
from .tree import tree_flatten_with_paths

TrainResult = namedtuple("TrainResult", ["params", "opt_state", "hook_state", "history"])

SHOWN_METRICS = ("loss", "recon_mse", "perplexity")   # on the tqdm bar, when present


class TrainingDivergedError(RuntimeError):
    """The loss or a gradient became NaN or inf; the last good checkpoint is kept."""


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


def train(loss_fn, params, data, steps, batch_size, lr, rng, *, step_hook=None, hook_state=None,
          eval_fn=None, eval_every=1000, best_metric="test_mse", out_dir=None,
          checkpoint_every=1000, resume=False, config=None, progress=True):
    """Minimise loss_fn over minibatches of `data` with Adam; returns a TrainResult.

    loss_fn(params, batch) -> scalar or (scalar, aux dict); data: (N, ...) training
    examples; steps: total number of steps (including those of a resumed run); rng:
    numpy Generator for batch order and hooks (advanced in place; on resume its state
    is set from the checkpoint). step_hook(params, hook_state, aux, batch, rng) ->
    (params, hook_state) runs after each Adam step; hook_state is a tree of arrays
    saved in checkpoints. eval_fn(params) -> dict of floats runs every eval_every steps
    and at the end; the lowest `best_metric` is kept as best.npz. config: JSON dict
    stored in checkpoints (resume refuses a different one). Raises
    TrainingDivergedError on a NaN/inf loss or gradient, before the bad update.
    """
    if steps < 0 or batch_size < 1 or not len(data) >= batch_size:
        raise ValueError(f"need steps >= 0 and 1 <= batch_size <= len(data), got steps={steps}, "
                         f"batch_size={batch_size}, len(data)={len(data)}")
    if resume and out_dir is None:
        raise ValueError("resume=True needs the out_dir of the run to continue")
    opt_init, opt_update = adam(lr)
    opt_state = opt_init(params)
    hook_state = {} if hook_state is None else hook_state
    sampler = {"order": onp.zeros(0, onp.int64), "position": onp.array(0, onp.int64)}
    settings = {"steps": steps, "batch_size": batch_size, "lr": lr, "eval_every": eval_every,
                "checkpoint_every": checkpoint_every, "best_metric": best_metric}
    history = {"settings": settings, "train": [], "eval": []}
    best, start, last_saved = math.inf, 0, None
    paths = {}
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        paths = {name: os.path.join(out_dir, name)
                 for name in ("checkpoint.npz", "best.npz", "history.json")}

    if resume and os.path.exists(paths["checkpoint.npz"]):
        ckpt = load_checkpoint(paths["checkpoint.npz"])
        if ckpt["config"] != as_stored(config):
            raise ValueError(f"cannot resume {paths['checkpoint.npz']}: it was trained with config "
                             f"{ckpt['config']}, got {as_stored(config)}")
        params, opt_state, start = ckpt["params"], ckpt["opt_state"], ckpt["step"]
        last_saved = start
        extra = ckpt["extra"]
        hook_state, sampler, best = extra["hook_state"], extra["sampler"], float(extra["best"])
        rng.bit_generator.state = rng_from_json(extra["rng"]).bit_generator.state
        if os.path.exists(paths["history.json"]):
            with open(paths["history.json"]) as f:
                saved = json.load(f)
            history["train"] = [r for r in saved["train"] if r["step"] <= start]
            history["eval"] = [r for r in saved["eval"] if r["step"] <= start]

    def save(path, step):
        extra = {"rng": onp.array(rng_state_to_json(rng)), "hook_state": hook_state,
                 "sampler": sampler, "best": onp.array(best)}
        save_checkpoint(path, params, opt_state, config=config, step=step, extra=extra)

    t0 = time.perf_counter()
    bar = tqdm(total=steps, initial=start, disable=not progress, desc="train", dynamic_ncols=True)
    try:
        for step in range(start, steps):
            batch, sampler = next_batch(data, sampler, batch_size, rng)
            loss, grads, aux = value_grad_and_aux(loss_fn, params, batch)
            loss_dtype, loss = onp.result_type(loss), float(loss)
            _check_step(loss, loss_dtype, params, grads, step)
            params, opt_state = opt_update(params, grads, opt_state)
            if step_hook is not None:
                params, hook_state = step_hook(params, hook_state, aux, batch, rng)
            done = step + 1
            metrics = dict(scalar_metrics(aux), loss=loss)
            history["train"].append(dict(step=done, **metrics))
            bar.update(1)
            bar.set_postfix({k: f"{metrics[k]:.4g}" for k in SHOWN_METRICS if k in metrics},
                            refresh=False)
            if eval_fn is not None and (done % eval_every == 0 or done == steps):
                result = {k: float(v) for k, v in eval_fn(params).items()}
                history["eval"].append(dict(step=done, seconds=time.perf_counter() - t0, **result))
                bar.write(f"step {done}: " + ", ".join(f"{k} {v:.5g}" for k, v in result.items()))
                if result.get(best_metric, math.inf) < best:
                    best = result[best_metric]
                    if out_dir is not None:
                        save(paths["best.npz"], done)
            if out_dir is not None and (done % checkpoint_every == 0 or done == steps):
                save(paths["checkpoint.npz"], done)
                last_saved = done
                atomic_write_json(paths["history.json"], history)
    except TrainingDivergedError as err:
        if out_dir is not None:
            atomic_write_json(paths["history.json"], history)
            if last_saved is not None:
                raise TrainingDivergedError(f"{err}; the last good checkpoint "
                                            f"{paths['checkpoint.npz']} (step {last_saved}) is kept") from None
        raise
    finally:
        bar.close()
    return TrainResult(params, opt_state, hook_state, history)
