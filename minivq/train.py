"""The training loop: draw a batch, value_and_grad, optimizer update, step hook, log, eval.

    result = train(model.loss_and_aux, params, x_train, steps=3000, batch_size=128, lr=1e-3,
                   rng=rng, step_hook=model.step_hook, hook_state=model.init_state(params),
                   eval_fn=lambda p: model.evaluate(p, x_test), out_dir="runs/vqvae")

The step hook does the updates that need no gradient (EMA codebook, dead-code restarts);
with `ema_decay`, eval and sampling use a running average of the weights (Polyak &
Juditsky 1992). Every scalar of the loss's aux dict is logged to the history and the tqdm
bar. With out_dir, run_state.RunRecorder writes checkpoints and the history and resumes
bit-exactly (its docstring lists the files).
"""
import math
import time
from collections import namedtuple

import numpy as onp
from autograd import value_and_grad
from autograd.tracer import getval
from tqdm import tqdm

from .checks import (TrainingDivergedError, check_data_precision, check_params, check_settings,
                     check_step, check_train_options)
from .optim import adam
from .run_state import RunRecorder, averaged_params, run_settings  # noqa: F401 (averaged_params: callers')
from .schedules import ema_params_update
from .threads import apply_threads
from .tree import tree_map

# ema_params: the weight average (None without ema_decay); what eval saw and sampling should use
TrainResult = namedtuple("TrainResult", ["params", "opt_state", "hook_state", "history", "ema_params"],
                         defaults=(None,))

SHOWN_METRICS = ("loss", "recon_mse", "perplexity")   # on the tqdm bar, when present


def value_grad_and_aux(loss_fn, params, batch):
    """(loss, grads, aux) from ONE forward and backward pass of loss_fn(params, batch) ->
    scalar or (scalar, aux dict); `getval` unwraps aux's autograd boxes to plain arrays."""
    captured = {}

    def scalar_loss(p):
        out = loss_fn(p, batch)
        loss, captured["aux"] = out if isinstance(out, tuple) else (out, {})
        return loss

    loss, grads = value_and_grad(scalar_loss)(params)
    return loss, grads, {key: getval(value) for key, value in captured["aux"].items()}


def next_batch(data, sampler, batch_size, rng):
    """(batch, new sampler): epochs of random permutations, leftover rows skipped. sampler:
    {'order': this epoch's (N,) int64 permutation, 'position': 0-d int64}, checkpointed."""
    order, position = sampler["order"], int(sampler["position"])
    if position + batch_size > len(order):
        order, position = rng.permutation(len(data)).astype(onp.int64), 0
    batch = data[order[position:position + batch_size]]
    return batch, {"order": order, "position": onp.array(position + batch_size, onp.int64)}


def train(loss_fn, params, data, steps, batch_size, lr, rng, *, optimizer=None, step_hook=None,
          hook_state=None, eval_fn=None, eval_every=1000, best_metric="test_mse", out_dir=None,
          checkpoint_every=1000, resume=False, allow_new_settings=False, config=None, progress=True,
          threads="auto", model=None, schedule=None, ema_decay=None):
    """Minimise loss_fn over minibatches of `data` with `optimizer`; returns a TrainResult.

    loss_fn(params, batch) -> scalar or (scalar, aux dict); data: (N, ...) examples in the
    parameters' precision; steps: the total, a resumed run's included. rng: numpy Generator,
    the loop's ONE random stream (batches, hooks, a loss's dropout), so resume is bit-exact.
    step_hook(params, hook_state, aux, batch, rng) -> (params, hook_state) after each update.
    eval_fn(params) -> dict of floats every eval_every steps and at the end (best.npz: the
    lowest best_metric). optimizer: from minivq.optim, default adam(lr), or adam(schedule)
    with a `schedule` of the step. ema_decay: eval, result and checkpoints get the average
    ema <- d ema + (1 - d) params (schedules.ema_params_update). out_dir ... model: the run's
    files (run_state.RunRecorder); threads: BLAS threads, an int or 'auto' (minivq.threads).
    Raises TrainingDivergedError on a NaN/inf loss, gradient or parameter before anything of
    that step is saved; with out_dir it (and Ctrl-C) says what is on disk.
    """
    check_settings(steps, batch_size, lr, len(data), eval_every, checkpoint_every)
    check_data_precision(data, params)
    check_train_options(resume, out_dir, schedule, optimizer, ema_decay)
    opt_init, opt_update = adam(schedule or lr) if optimizer is None else optimizer
    opt_state, hook_state = opt_init(params), {} if hook_state is None else hook_state
    sampler = {"order": onp.zeros(0, onp.int64), "position": onp.array(0, onp.int64)}
    settings = run_settings(steps, batch_size, lr, eval_every, checkpoint_every, best_metric,
                            schedule, ema_decay)
    history = {"settings": settings, "train": [], "eval": []}
    best, start, ema = math.inf, 0, None
    run = None if out_dir is None else RunRecorder(out_dir, config, model, settings)
    if resume:                                          # the loop's state and rng from checkpoint.npz
        s = run.resume(rng, allow_new_settings)
        start, params, opt_state, hook_state = s["step"], s["params"], s["opt_state"], s["hook_state"]
        sampler, best, history = s["sampler"], s["best"], s["history"]
        ema = None if ema_decay is None else s["ema"]
    if ema_decay is not None and ema is None:          # a fresh average (or one newly switched on)
        ema = tree_map(onp.copy, params)

    def save(name, step):
        run.save(name, step, params, opt_state, rng=rng, hook_state=hook_state, sampler=sampler,
                 best=best, ema=ema, history=history)

    blas_threads, blas_note = apply_threads(threads)    # e.g. 1 beside a busy process (2.8x faster)
    bar = tqdm(total=steps, initial=start, disable=not progress, dynamic_ncols=True,
               desc="train" if blas_threads is None else f"train, BLAS threads {blas_threads}")
    if progress:
        bar.write(blas_note)
    t0, done = time.perf_counter(), start
    try:
        for step in range(start, steps):
            batch, sampler = next_batch(data, sampler, batch_size, rng)
            loss, grads, aux = value_grad_and_aux(loss_fn, params, batch)
            check_step(loss, params, grads, step)        # finite, and in the parameters' precision
            loss = float(loss)
            params, opt_state = opt_update(params, grads, opt_state)
            check_params(params, step, loss)            # before the hook reads them (EMA codebook)
            if step_hook is not None:
                params, hook_state = step_hook(params, hook_state, aux, batch, rng)
                check_params(params, step, loss)        # before any eval or save of this step
            if ema is not None:
                ema = ema_params_update(ema, params, ema_decay, step)
            done = step + 1
            metrics = dict({k: float(v) for k, v in aux.items() if onp.ndim(v) == 0}, loss=loss)
            if schedule is not None:
                metrics["lr"] = float(schedule(step))
            history["train"].append(dict(step=done, **metrics))
            bar.update(1)
            bar.set_postfix({k: f"{metrics[k]:.4g}" for k in SHOWN_METRICS if k in metrics}, refresh=False)
            if eval_fn is not None and (done % eval_every == 0 or done == steps):
                result = {k: float(v) for k, v in eval_fn(params if ema is None else ema).items()}
                history["eval"].append(dict(step=done, seconds=time.perf_counter() - t0, **result))
                bar.write(f"step {done}: " + ", ".join(f"{k} {v:.5g}" for k, v in result.items()))
                if result.get(best_metric, math.inf) < best:
                    best = result[best_metric]
                    if run is not None:
                        save("best.npz", done)
            if run is not None and (done % checkpoint_every == 0 or done == steps):
                save("checkpoint.npz", done)            # and history.json
    except (TrainingDivergedError, KeyboardInterrupt) as stop:
        if run is None:
            raise
        raise run.stopped(stop, done) from None
    finally:
        bar.close()
    return TrainResult(params, opt_state, hook_state, history, ema)
