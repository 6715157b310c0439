"""Learning-rate schedules and the weight-averaging decay, as pure functions of the step.

    schedule = warmup_cosine(1e-3, total_steps=1000, warmup_steps=50)
    init, update = adam(schedule)          # optim.adam/sgd take a number or a schedule
    schedule(0), schedule(50), schedule(1000)   # 2e-5, 1e-3, 0.0

A schedule maps t, the number of updates done before this one (0 for the first), to the
update's learning rate. Being a function of t alone (kept in the optimizer state), it
resumes bit-exactly from a checkpoint.
"""
import math
import numbers

from .tree import tree_map


def constant(lr):
    """lr(t) = lr for every t."""
    _check_lr(lr)

    def schedule(step):
        return lr

    schedule.settings = {"kind": "constant", "lr": lr}       # recorded by train() for resume checks
    return schedule


def warmup_cosine(lr, total_steps, warmup_steps=0, final_fraction=0.0):
    """Linear warm-up to lr over warmup_steps, then a cosine decay to final_fraction * lr.

        t <  W:      lr(t) = lr (t + 1) / W
        W <= t <= T: lr(t) = lr_min + (lr - lr_min) (1 + cos(pi (t - W) / (T - W))) / 2
        t >  T:      lr(t) = lr_min,         lr_min = final_fraction * lr

    T = total_steps, W = warmup_steps (Goyal et al. 2017 warm-up; Loshchilov & Hutter 2017,
    SGDR, one cosine cycle without restarts). The warm-up counts from (t + 1) so that the
    first update is not a zero step.
    """
    _check_lr(lr)
    if not (isinstance(total_steps, numbers.Integral) and total_steps >= 1):
        raise ValueError(f"total_steps must be an integer >= 1, got {total_steps!r}")
    if not (isinstance(warmup_steps, numbers.Integral) and 0 <= warmup_steps <= total_steps):
        raise ValueError(f"warmup_steps must be an integer in [0, total_steps = {total_steps}], "
                         f"got {warmup_steps!r}")
    if not 0.0 <= final_fraction <= 1.0:
        raise ValueError(f"final_fraction must be in [0, 1], got {final_fraction!r}")
    lr_min = final_fraction * lr
    decay_steps = total_steps - warmup_steps

    def schedule(step):
        step = int(step)
        if step < warmup_steps:
            return lr * (step + 1) / warmup_steps
        if decay_steps == 0 or step >= total_steps:
            return lr_min if decay_steps else lr
        progress = (step - warmup_steps) / decay_steps                   # 0 .. 1
        return lr_min + (lr - lr_min) * 0.5 * (1.0 + math.cos(math.pi * progress))

    schedule.settings = {"kind": "warmup_cosine", "lr": lr, "total_steps": int(total_steps),
                         "warmup_steps": int(warmup_steps), "final_fraction": final_fraction}
    return schedule


def ema_decay_at(decay, step):
    """The weight-averaging decay of update t (t = 0 for the first): min(decay, (1 + t) / (10 + t)).

    The ramp (TensorFlow's ExponentialMovingAverage with num_updates) lets the average
    forget the random initial weights quickly: with a constant 0.999 the initial weights
    would still hold 0.999^1000 = 37% of the average after 1,000 steps.
    """
    return min(decay, (1.0 + step) / (10.0 + step))


def _check_lr(lr):
    if not (isinstance(lr, numbers.Real) and 0 < lr < math.inf):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")


def ema_params_update(ema, params, decay, step):
    """ema <- d ema + (1 - d) params with d = ema_decay_at(decay, step), leaf by leaf.

    The running weight average of train(..., ema_decay=...) (Polyak & Juditsky 1992).
    step: updates done before this one (0 after the first update). Keeps the leaves' dtype.
    """
    d = ema_decay_at(decay, step)
    return tree_map(lambda a, p: (d * a + (1.0 - d) * p).astype(p.dtype), ema, params)
