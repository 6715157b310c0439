"""The files of one training run: checkpoints, history, resume, and what is on disk after a stop.

train.train(..., out_dir=...) builds a RunRecorder and calls it at four points: resume
(before the first step), save (at a checkpoint or a new best eval), and stopped (when the
loop ends by divergence or Ctrl-C). Files written to out_dir:

    checkpoint.npz  params, optimizer state, config, step, hook state, rng and batch-order
                    state, the weight average (extra['ema_params']) and the history so far;
                    every `checkpoint_every` steps and at the end (atomic writes, only of
                    finite parameters: the loop checks them before any save).
    best.npz        the same, at the eval with the lowest `best_metric` so far.
    history.json    {'settings', 'train': [per-step metrics], 'eval': [per-eval metrics]},
                    written after each checkpoint (and rebuilt from it on resume).

A resumed run continues bit-exactly: N steps, then resume to 2N, gives the same
parameters as 2N steps in one go.
"""
import json
import os

import numpy as onp

from .checkpoint import load_checkpoint, rng_from_json, rng_state_to_json, save_checkpoint
from .checks import TrainingDivergedError
from .files import as_stored, atomic_write_json, read_json, remove_temp_files

TRAIN_FILES = ("checkpoint.npz", "best.npz", "history.json")


def averaged_params(ckpt):
    """The parameters to evaluate and sample from in a loaded checkpoint: the weight
    average when the run kept one (train(..., ema_decay=...)), else the trained params."""
    return ckpt["extra"].get("ema_params", ckpt["params"]) if ckpt.get("extra") else ckpt["params"]


def run_settings(steps, batch_size, lr, eval_every, checkpoint_every, best_metric, schedule=None,
                 ema_decay=None):
    """The loop's settings as the history records them (resume compares them)."""
    settings = {"steps": steps, "batch_size": batch_size, "lr": lr, "eval_every": eval_every,
                "checkpoint_every": checkpoint_every, "best_metric": best_metric}
    if schedule is not None:
        settings["schedule"] = getattr(schedule, "settings", "custom")
    if ema_decay is not None:
        settings["ema_decay"] = ema_decay
    return settings


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


class RunRecorder:
    """Checkpoints and history of one run in out_dir (see the module docstring).

    config: JSON dict stored in checkpoints (resume refuses a different one); model: the
    model's name stored with it; settings: the loop's settings, recorded in the history
    (resume refuses other ones, except a larger `steps`, unless allow_new_settings).
    """

    def __init__(self, out_dir, config=None, model=None, settings=None):
        os.makedirs(out_dir, exist_ok=True)
        self.config, self.model, self.settings = config, model, settings
        self.paths = {name: os.path.join(out_dir, name) for name in TRAIN_FILES}
        self.saved = {}                                   # {file name: step} written by this run
        remove_temp_files(out_dir, TRAIN_FILES)           # left by a process killed mid-write

    def resume(self, rng, allow_new_settings=False):
        """The loop state of checkpoint.npz as a dict (step, params, opt_state, hook_state,
        sampler, best, ema, history); sets rng's state to the saved one."""
        path = self.paths["checkpoint.npz"]
        if not os.path.isfile(path):
            raise FileNotFoundError(f"cannot resume: {path} does not exist (the run wrote no "
                                    f"checkpoint yet); start it over instead of resuming")
        ckpt = load_checkpoint(path, model=self.model)
        if ckpt["config"] != as_stored(self.config):
            raise ValueError(f"cannot resume {path}: it was trained with config "
                             f"{ckpt['config']}, got {as_stored(self.config)}")
        history = _resume_history(ckpt, self.settings, allow_new_settings, self.paths)
        extra = ckpt["extra"]
        rng.bit_generator.state = rng_from_json(extra["rng"]).bit_generator.state
        self.saved["checkpoint.npz"] = ckpt["step"]
        atomic_write_json(self.paths["history.json"], history)
        return dict(step=ckpt["step"], params=ckpt["params"], opt_state=ckpt["opt_state"],
                    hook_state=extra["hook_state"], sampler=extra["sampler"],
                    best=float(extra["best"]), ema=extra.get("ema_params"), history=history)

    def save(self, name, step, params, opt_state, *, rng, hook_state, sampler, best, ema, history):
        """Write `name` ('checkpoint.npz', then also history.json, or 'best.npz') atomically."""
        extra = {"rng": onp.array(rng_state_to_json(rng)), "hook_state": hook_state,
                 "sampler": sampler, "best": onp.array(best), "history": onp.array(json.dumps(history))}
        if ema is not None:
            extra["ema_params"] = ema
        save_checkpoint(self.paths[name], params, opt_state, config=self.config, step=step,
                        extra=extra, model=self.model)
        self.saved[name] = step
        if name == "checkpoint.npz":
            atomic_write_json(self.paths["history.json"], history)

    def stopped(self, error, done):
        """The error to raise when the loop stops after step `done`, saying what is on disk."""
        if isinstance(error, TrainingDivergedError):
            return TrainingDivergedError(f"{error}. Nothing of the diverged steps was saved; "
                                         f"{self._on_disk()}")
        return KeyboardInterrupt(f"interrupted after step {done}; {self._on_disk()}")

    def _on_disk(self):
        """What a stopped run leaves: the checkpoints written (and where to go on), or none."""
        if "checkpoint.npz" not in self.saved:
            return (f"no checkpoint of this run is on disk yet in "
                    f"{os.path.dirname(self.paths['checkpoint.npz'])} (nothing to resume): start it again")
        kept = [f"{self.paths[name]} (step {step})" for name, step in sorted(self.saved.items())]
        if "best.npz" not in self.saved and os.path.isfile(self.paths["best.npz"]):
            kept.append(f"{self.paths['best.npz']} (from before)")
        return (f"kept: {', '.join(kept)}; continue from checkpoint.npz with --resume (after "
                f"divergence: a lower lr and --allow-new-settings), or use best.npz as it is")
