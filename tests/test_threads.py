"""BLAS thread choice: the rule on hand-made inputs, the load probe on scripted /proc/stat
readings and on a real busy process, and set/get on numpy's own OpenBLAS."""
import itertools
import subprocess
import sys
import time

import numpy as onp
import pytest

from minivq import threads


# ------------------------------------------------------------------ the rule (pure)

@pytest.mark.parametrize("allowed, busy, expected", [
    (2, 0.0, 2),    # quiet 2-core machine: both cores
    (2, 1.0, 1),    # one spinning neighbour: 1 thread (225 vs 636 ms measured)
    (2, 2.0, 1),    # everything busy: still at least one thread
    (2, 0.2, 2),    # background noise below IGNORED_LOAD is ignored
    (2, 0.5, 1),    # half a core taken already costs a thread
    (4, 1.0, 3),
    (8, 2.6, 5),    # ceil(2.6 - 0.3) = 3 cores taken
    (1, 0.0, 1),    # affinity to a single core
    (2, 5.0, 1),    # more load than cores (load from other cores' processes)
])
def test_decide_threads_counts_free_cores(allowed, busy, expected):
    threads_, reason = threads.decide_threads(allowed, busy, {})
    assert threads_ == expected
    assert f"{allowed} core" in reason and f"{busy:.1f} busy" in reason


def test_decide_threads_unknown_load_uses_all_allowed_cores():
    assert threads.decide_threads(3, None, {}) == (3, "3 cores allowed, load unknown")


@pytest.mark.parametrize("name", ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"])
def test_decide_threads_leaves_a_user_setting_alone(name):
    threads_, reason = threads.decide_threads(2, 1.0, {name: "2"})
    assert threads_ is None
    assert reason == f"{name}=2 set by the user"


def test_decide_threads_ignores_an_empty_variable():
    assert threads.decide_threads(2, 1.0, {"OPENBLAS_NUM_THREADS": ""})[0] == 1


# ------------------------------------------------------------------ the load probe

def scripted_probe(monkeypatch, readings, own_seconds):
    """Make _cpu_ticks and _own_cpu_seconds return the given readings in turn; no sleeping."""
    readings, own_seconds = iter(readings), iter(own_seconds)
    monkeypatch.setattr(threads, "_cpu_ticks", lambda: next(readings))
    monkeypatch.setattr(threads, "_own_cpu_seconds", lambda: next(own_seconds))
    monkeypatch.setattr(threads.time, "sleep", lambda seconds: None)
    clock = itertools.count(0.0, 0.5)                      # every window lasts 0.5 s of wall time
    monkeypatch.setattr(threads.time, "perf_counter", lambda: next(clock))


def test_busy_cores_sums_allowed_cores_and_subtracts_own_time(monkeypatch):
    # cpu0 busy 6 of 6 ticks, cpu1 3 of 6, cpu2 (not allowed) 6 of 6; this process used
    # 0.25 s in the 0.5 s window, i.e. half a core: 1.0 + 0.5 - 0.5 = 1.0.
    before = {0: (100, 200), 1: (50, 200), 2: (0, 200)}
    after = {0: (106, 206), 1: (53, 206), 2: (6, 206)}
    scripted_probe(monkeypatch, [before, after], [1.0, 1.25])
    assert threads.busy_cores([0, 1], windows=1) == pytest.approx(1.0)


def test_busy_cores_takes_the_median_window(monkeypatch):
    # Window loads 2.0 (a burst), 1.0, 1.0 -> 1.0; a mean would say 1.33.
    t0 = {0: (0, 0), 1: (0, 0)}
    t1 = {0: (6, 6), 1: (6, 6)}
    t2 = {0: (12, 12), 1: (6, 12)}
    t3 = {0: (12, 18), 1: (12, 18)}
    scripted_probe(monkeypatch, [t0, t1, t1, t2, t2, t3], [0.0] * 6)
    assert threads.busy_cores([0, 1], windows=3) == pytest.approx(1.0)


def test_busy_cores_is_none_without_proc_stat(monkeypatch):
    def missing():
        raise OSError("no /proc/stat")
    monkeypatch.setattr(threads, "_cpu_ticks", missing)
    assert threads.busy_cores([0], windows=1, seconds=0.0) is None


def test_busy_cores_sees_a_spinning_process():
    if threads.busy_cores([0], windows=1, seconds=0.0) is None:
        pytest.skip("no /proc/stat here")
    spinner = subprocess.Popen([sys.executable, "-c", "while 1: pass"])
    try:
        time.sleep(0.3)                                      # let it start spinning
        busy = threads.busy_cores(threads.allowed_cpus())
    finally:
        spinner.kill()
        spinner.wait()
    # The spinner alone keeps at least ~one core busy (more if others run too), and the
    # probe never reports more than the cores it looked at.
    assert 0.8 <= busy <= len(threads.allowed_cpus()) + 1e-9


# ------------------------------------------------------------------ numpy's OpenBLAS

@pytest.fixture
def blas(monkeypatch):
    """Skip without a findable OpenBLAS; restore its thread count, pin and load memo after the test."""
    if threads.blas_library() is None:
        pytest.skip("numpy's OpenBLAS was not found")
    monkeypatch.setitem(threads._state, "pinned", None)
    monkeypatch.setitem(threads._state, "load", (-float("inf"), None, None))
    before = threads.get_blas_threads()
    yield
    threads.set_blas_threads(before)


def test_set_get_round_trip(blas):
    a = onp.arange(12.0).reshape(3, 4)
    for n in (1, 2, 1):
        assert threads.set_blas_threads(n) == n
        assert threads.get_blas_threads() == n
        assert onp.array_equal(a @ a.T, onp.einsum("ik,jk->ij", a, a))   # BLAS still works


def test_apply_threads_respects_the_users_variable(blas):
    threads.set_blas_threads(2)
    n, description = threads.apply_threads("auto", env={"OPENBLAS_NUM_THREADS": "7"})
    assert n == 2 and threads.get_blas_threads() == 2
    assert description == "BLAS threads: 2 (OPENBLAS_NUM_THREADS=7 set by the user)"


def test_apply_threads_sets_an_explicit_count(blas):
    threads.set_blas_threads(2)
    assert threads.apply_threads(1) == (1, "BLAS threads: 1 (asked for)")
    assert threads.get_blas_threads() == 1


def test_auto_keeps_an_explicit_count(blas, monkeypatch):
    monkeypatch.setattr(threads, "busy_cores", lambda cpus: 0.0)          # quiet: auto alone says all
    threads.apply_threads(1)
    assert threads.apply_threads("auto", env={}) == (1, "BLAS threads: 1 (asked for)")
    assert threads.get_blas_threads() == 1


def test_choose_threads_reuses_a_recent_load_measure(blas, monkeypatch):
    calls = []
    monkeypatch.setattr(threads, "busy_cores", lambda cpus: calls.append(cpus) or 1.0)
    for _ in range(3):
        assert threads.choose_threads(env={})[1].endswith("1.0 busy")
    assert len(calls) == 1
    monkeypatch.setitem(threads._state, "load", (time.monotonic() - threads.LOAD_REUSE_SECONDS - 1,
                                                 threads.allowed_cpus(), 1.0))
    threads.choose_threads(env={})                                           # too old: measured again
    assert len(calls) == 2


def test_apply_threads_auto_sets_the_decided_count(blas, monkeypatch):
    monkeypatch.setattr(threads, "busy_cores", lambda cpus: 1.0)
    monkeypatch.setattr(threads, "allowed_cpus", lambda: [0, 1])
    threads.set_blas_threads(2)
    assert threads.apply_threads("auto", env={}) == (1, "BLAS threads: 1 (2 cores allowed, 1.0 busy)")
    assert threads.get_blas_threads() == 1


def test_without_openblas_everything_fails_soft(monkeypatch):
    monkeypatch.setitem(threads._library, "found", None)
    monkeypatch.setitem(threads._state, "pinned", None)
    assert threads.get_blas_threads() is None
    assert threads.set_blas_threads(2) is None
    n, description = threads.apply_threads("auto", env={"OMP_NUM_THREADS": "1"})
    assert n is None
    assert description.startswith("BLAS threads: left as they are (no OpenBLAS found")


@pytest.mark.parametrize("bad", [0, -1, 1.5, "two", True, None])
def test_bad_counts_are_refused(bad, monkeypatch):
    monkeypatch.setitem(threads._state, "pinned", None)
    with pytest.raises(ValueError, match="integer >= 1"):
        threads.set_blas_threads(bad)
    with pytest.raises(ValueError, match="'auto' or an integer >= 1"):
        threads.apply_threads(bad)


# ------------------------------------------------------------------ wiring: train, encode, CLI

def test_train_sets_the_count_and_says_so(blas, capsys):
    from minivq.train import train
    params = {"w": onp.zeros(3, onp.float32)}
    data = onp.ones((8, 3), onp.float32)
    threads.set_blas_threads(2)
    train(lambda p, batch: ((p["w"] - batch) ** 2).mean(), params, data, steps=2, batch_size=4,
          lr=0.1, rng=onp.random.default_rng(0), threads=1)
    assert threads.get_blas_threads() == 1
    captured = capsys.readouterr()
    assert "BLAS threads: 1 (asked for)" in captured.out            # the reason, once
    assert "train, BLAS threads 1" in captured.err                  # the bar's description


def test_encode_dataset_sets_the_count(blas):
    from minivq.codes import encode_dataset
    threads.set_blas_threads(2)
    x = onp.zeros((4, 2, 2, 1), onp.float32)
    encode_dataset(lambda xb: (onp.zeros((len(xb), 1, 1), int), onp.zeros((len(xb), 1, 1, 2))), x, 2,
                   threads=1)
    assert threads.get_blas_threads() == 1


def test_cli_threads_flag_is_applied_before_the_command(blas, tmp_path, capsys):
    from minivq.cli import main
    threads.set_blas_threads(2)
    with pytest.raises(SystemExit) as exit_info:                     # no run there: exits 2 after
        main(["encode", "--run", str(tmp_path / "none"), "--threads", "1"])
    assert exit_info.value.code == 2
    assert threads.get_blas_threads() == 1
    assert threads.apply_threads("auto", env={})[0] == 1              # kept by later 'auto' calls


@pytest.mark.parametrize("text, message", [("0", "got '0'"), ("two", "got 'two'"), ("-1", "got '-1'")])
def test_cli_refuses_a_bad_thread_count(text, message, capsys):
    from minivq.cli import main
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--threads", text])
    assert exit_info.value.code == 2
    assert f"argument --threads: expected 'auto' or an integer >= 1, {message}" in capsys.readouterr().err
