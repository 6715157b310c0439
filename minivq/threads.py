"""How many threads numpy's BLAS runs, chosen from the cores this process may use and how busy they are.

    n, description = apply_threads("auto")   # e.g. (1, "BLAS threads: 1 (2 cores allowed, 1.0 busy)")
    set_blas_threads(2); get_blas_threads()   # -> 2

Why: minivq makes many short BLAS calls (small GEMMs per conv, per step). OpenBLAS
splits each across its threads and spins waiting for them; when another process holds
one of the cores, the thread that lands there waits for the scheduler and the whole
call stalls. Measured on a 2-core machine, VQ-VAE training step at B=128 beside one
`python3 -c 'while 1: pass'`: 636 ms with 2 BLAS threads, 225 ms with 1 (quiet: 161 ms
with 2). So the default counts only the cores nobody else is using.

How: numpy 2.x ships its own OpenBLAS (scipy-openblas, symbols renamed
`scipy_openblas_set_num_threads64_`; other builds keep `openblas_set_num_threads`).
We find the loaded library in /proc/self/maps (or numpy's bundled .libs folder) and
call its setter through ctypes: no new dependency. How busy the cores are comes from
/proc/stat sampled over a fraction of a second; the load average cannot see a process
that started a few seconds ago (it is a one-minute moving average).

An explicit OPENBLAS_NUM_THREADS or OMP_NUM_THREADS in the environment is the user's
choice: "auto" then leaves the count alone; so it does after `apply_threads(n)` (the
CLI's --threads n). Where no OpenBLAS is found (another BLAS, another OS) everything
fails soft: the functions return None and the description says so.

Nothing happens on `import minivq`: the count is process-wide state shared with the
user's other numpy code, and the load at import is not the load when training starts.
train() and encode_dataset() apply the choice at their start; the CLI at its start.
"""
import ctypes
import glob
import math
import numbers
import os
import statistics
import time

import numpy as onp

# Three windows of 0.06 s of /proc/stat (6 clock ticks per core each at the usual 100 Hz;
# 0.18 s in all, unnoticed at the start of a training run). In probes here a core kept
# busy read 1.0 and an idle one 0.0 in every window, while one-off 0.15 s samples on
# the shared machine read 0.3-0.8 now and then from short commands; the median of
# three drops such a burst. The load average, read in the same probe, had not moved
# 0.3 s after a busy process started (it is a one-minute moving average).
BUSY_WINDOWS, BUSY_WINDOW_SECONDS = 3, 0.06
# Others' load below this many cores is ignored: a load b takes ceil(b - 0.3) cores away
# (1.0 takes one, 0.3 none, 0.5 one). Leaning to fewer threads on purpose: a thread too
# many beside a busy core cost 2.8x (636 vs 225 ms), a thread too few on a quiet core at
# most the parallel speed-up (161 ms with 2 threads; <= 2x).
IGNORED_LOAD = 0.3
USER_ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
# Names of the C-level setter/getter pairs, most specific first: numpy 2.x's
# scipy-openblas (64-bit ints, 32-bit ints), then a plain OpenBLAS.
SYMBOL_PAIRS = [("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
                ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
                ("openblas_set_num_threads", "openblas_get_num_threads")]

# A run that starts within this time of the last measure (the train and test splits
# encoded one after the other, a test suite's many short runs) reuses it instead of
# sleeping to measure again; the demo's stages, minutes apart, each measure afresh.
LOAD_REUSE_SECONDS = 30.0

_library = {}   # cache: 'found' -> (path, setter, getter) or None
# 'pinned': a count given to apply_threads, kept by later 'auto' calls;
# 'load': (time.monotonic() of the measure, cpus, busy cores) of the last load measure.
_state = {"pinned": None, "load": (-math.inf, None, None)}


def _candidate_paths():
    """Paths of loaded libraries whose name says OpenBLAS, then those bundled with numpy."""
    paths = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split(maxsplit=5)[-1].strip()
                if "openblas" in os.path.basename(path).lower() and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    numpy_dir = os.path.dirname(onp.__file__)
    for folder in (numpy_dir + ".libs", os.path.join(numpy_dir, ".dylibs")):
        paths += [p for p in sorted(glob.glob(os.path.join(folder, "*openblas*"))) if p not in paths]
    return paths


def blas_library():
    """(path, set_num_threads, get_num_threads) of numpy's OpenBLAS, or None if not found.

    Opening an already-loaded library returns the same handle, so the functions act on
    the copy numpy is using.
    """
    if "found" not in _library:
        _library["found"] = None
        for path in _candidate_paths():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for set_name, get_name in SYMBOL_PAIRS:
                if hasattr(lib, set_name) and hasattr(lib, get_name):
                    setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    _library["found"] = (path, setter, getter)
                    return _library["found"]
    return _library["found"]


def _is_count(n):
    return isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1


def get_blas_threads():
    """The number of threads numpy's OpenBLAS uses now, or None if it was not found."""
    found = blas_library()
    return None if found is None else int(found[2]())


def set_blas_threads(n):
    """Make numpy's OpenBLAS use n >= 1 threads; returns n, or None if it was not found."""
    if not _is_count(n):
        raise ValueError(f"set_blas_threads: expected an integer >= 1, got {n!r}")
    found = blas_library()
    if found is None:
        return None
    found[1](int(n))
    return int(n)


def allowed_cpus():
    """The CPU ids this process may run on (sched_getaffinity), or all of them where unsupported."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _cpu_ticks():
    """{cpu id: (busy ticks, total ticks)} from the per-core lines of /proc/stat."""
    ticks = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *fields = line.split()
                values = [int(v) for v in fields[:8]]        # user nice system idle iowait irq softirq steal
                ticks[int(name[3:])] = (sum(values) - values[3] - values[4], sum(values))
    return ticks


def _own_cpu_seconds():
    """CPU seconds used by all threads of this process so far."""
    times = os.times()
    return times.user + times.system


def busy_cores(cpus, windows=BUSY_WINDOWS, seconds=BUSY_WINDOW_SECONDS):
    """How many of `cpus` other processes keep busy, e.g. 1.0 beside one spinning process.

    The sum of each core's busy fraction over a window of `seconds`, less what this
    process used meanwhile (OpenBLAS's own threads spin for ~0.1 s after a call); the
    median over `windows` windows, so that a burst in one (a shell command, a compiler)
    is not read as a neighbour. None without /proc/stat.
    """
    loads = []
    for _ in range(windows):
        try:
            before, own_before, start = _cpu_ticks(), _own_cpu_seconds(), time.perf_counter()
            time.sleep(seconds)
            after, own_after, wall = _cpu_ticks(), _own_cpu_seconds(), time.perf_counter() - start
        except (OSError, ValueError):
            return None
        total = 0.0
        for cpu in cpus:
            if cpu in before and cpu in after:
                busy = after[cpu][0] - before[cpu][0]
                elapsed = after[cpu][1] - before[cpu][1]
                total += busy / elapsed if elapsed > 0 else 0.0
        loads.append(max(0.0, total - (own_after - own_before) / wall))
    return statistics.median(loads)


def _user_setting(env):
    """'NAME=value set by the user' for the first thread variable set in env, else None."""
    for name in USER_ENV_VARS:
        if env.get(name):
            return f"{name}={env[name]} set by the user"
    return None


def decide_threads(allowed, busy, env):
    """(threads or None, reason): the rule, a pure function of its inputs.

    allowed: number of cores this process may use; busy: how many of them other
    processes keep busy (float, None if unknown); env: the environment mapping. None
    means leave OpenBLAS as it is (the user set a variable). Otherwise the allowed cores
    less ceil(busy - IGNORED_LOAD) of them, at least 1.
    """
    user = _user_setting(env)
    if user is not None:
        return None, user
    cores = f"{allowed} core{'s' if allowed != 1 else ''} allowed"
    if busy is None:
        return allowed, f"{cores}, load unknown"
    threads = max(1, min(allowed, int(allowed - busy + IGNORED_LOAD)))   # allowed - ceil(busy - 0.3)
    return threads, f"{cores}, {busy:.1f} busy"


def _recent_load(cpus):
    """busy_cores(cpus), measured again only when the last measure is older than LOAD_REUSE_SECONDS."""
    when, cpus_then, busy = _state["load"]
    if cpus != cpus_then or time.monotonic() - when > LOAD_REUSE_SECONDS:
        busy = busy_cores(cpus)
        _state["load"] = (time.monotonic(), cpus, busy)
    return busy


def choose_threads(env=None):
    """(threads or None, reason) for this process now: decide_threads on measured inputs."""
    env = os.environ if env is None else env
    cpus = allowed_cpus()
    busy = None if _user_setting(env) else _recent_load(cpus)   # no sampling wait when unused
    return decide_threads(len(cpus), busy, env)


def apply_threads(threads="auto", env=None):
    """Set numpy's BLAS threads to `threads` (an int, or 'auto' to choose); (n or None, description).

    An int is the caller's choice (the CLI's --threads): it is set, and later 'auto'
    calls in this process keep it, as they keep OPENBLAS_NUM_THREADS. n is the count in
    force afterwards, or None if no OpenBLAS symbol was found (then nothing changes).
    The description is one line for a log or a progress bar.
    """
    if _is_count(threads):
        _state["pinned"] = int(threads)
        chosen, reason = int(threads), "asked for"
    elif threads != "auto":
        raise ValueError(f"threads must be 'auto' or an integer >= 1, got {threads!r}")
    elif _state["pinned"] is not None:
        chosen, reason = _state["pinned"], "asked for"
    else:
        chosen, reason = choose_threads(env)
    if blas_library() is None:
        return None, f"BLAS threads: left as they are (no OpenBLAS found in numpy; {reason})"
    if chosen is not None:
        set_blas_threads(chosen)
    return get_blas_threads(), f"BLAS threads: {get_blas_threads()} ({reason})"
