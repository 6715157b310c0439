"""Speed of minivq's training, sampling and encoding against the same models in PyTorch.

    python -m bench.bench_train                          # everything (a few minutes)
    python -m bench.bench_train --only vqvae --steps 30  # one row group

Run from the repository root. Rows (float32; 2 threads for OpenBLAS and for torch, or
OPENBLAS_NUM_THREADS for both):
    vqvae step B=64/128   median seconds of one training step (forward + backward + Adam)
    prior step B=64/128   the same for the PixelCNN prior on 7x7 grids of K=64 codes
                          (both also on minivq's plain conv backend: a plain/fast ratio line
                          under the table, timed interleaved with the others)
    sample 64 + decode    64 code grids drawn cell by cell (49 prior passes), then decoded
    encode 10k images     encoder + nearest code, batches of 500, no gradients (fast backend:
                          minivq/fast_forward.py; also on the plain backend, plain/fast line)
    peak RSS vqvae B=128  VmHWM of a separate process per framework after --memory-steps steps
    busy neighbour        minivq's VQ-VAE step B=128 beside one `while 1: pass` process: the
                          default thread choice (minivq.threads) against 1 and 2 threads
Each row prints both times, the ratio minivq/torch and the achieved GFLOP/s, counted
analytically from the conv shapes (2 flops per multiply-add; training = forward +
weight grad + input grad, the latter skipped for the layer that reads the data), next
to numpy's float32 matmul rate measured in the same run. The frameworks are timed
alternately, one repeat each, with the order flipped every repeat, so load from other
jobs on the machine hits both alike. Without torch the minivq column still prints.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

# Threads for numpy's BLAS, and the same number for torch (torch.set_num_threads); 2 unless
# OPENBLAS_NUM_THREADS is set. Must precede importing numpy.
THREADS = int(os.environ.setdefault("OPENBLAS_NUM_THREADS", "2"))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))

import numpy as onp  # noqa: E402

from minivq.data import load_mnist_embedded  # noqa: E402

NUM_CODES, CODE_DIM, GRID = 64, 16, (7, 7)    # the reference models' K, d and code grid
ENCODE_IMAGES, ENCODE_BATCH = 10_000, 500
SAMPLES = 64
LR = 1e-3

# Conv layers of the reference models per image: (kernel, C_in, C_out, pixels), where
# pixels = Ho*Wo of a conv's output, or Hin*Win of a transposed conv's input; either way
# the layer does pixels * k*k * C_in * C_out multiply-adds.
RES_BLOCK = [(3, 64, 32, 49), (1, 32, 64, 49)]
ENCODER_CONVS = ([(4, 1, 32, 14 * 14), (4, 32, 64, 7 * 7), (3, 64, 64, 49)]
                 + 2 * RES_BLOCK + [(1, 64, CODE_DIM, 49)])
DECODER_CONVS = [(3, CODE_DIM, 64, 49)] + 2 * RES_BLOCK + [(4, 64, 32, 49), (4, 32, 1, 14 * 14)]
# The masked convs are counted dense: both frameworks multiply the zeros too.
PRIOR_CONVS = [(7, 64, 64, 49)] + 6 * [(3, 64, 64, 49)] + [(1, 64, 64, 49), (1, 64, NUM_CODES, 49)]
DISTANCES_MACS = 49 * NUM_CODES * CODE_DIM     # z @ codebook^T of the quantizer, per image
# The prior's convs as minivq runs them: each masked kernel cropped to the rows and columns
# its mask shows (pixelcnn._mask_crop): 7x7 mask A -> 4x7 = 28 taps, 3x3 mask B -> 2x3 = 6.
# (taps, C_in, C_out, pixels); the GEMM floor of the prior rows counts these.
PRIOR_GEMMS = [(28, 64, 64, 49)] + 6 * [(6, 64, 64, 49)] + [(1, 64, 64, 49), (1, 64, NUM_CODES, 49)]


def macs(convs):
    return sum(pixels * k * k * c_in * c_out for k, c_in, c_out, pixels in convs)


def vqvae_step_gflop(batch):
    forward = macs(ENCODER_CONVS) + macs(DECODER_CONVS)
    first = macs(ENCODER_CONVS[:1])                 # its input is the data: no input grad
    return batch * 2 * (3 * forward - first + DISTANCES_MACS) / 1e9


def prior_step_gflop(batch):
    return batch * 2 * 3 * macs(PRIOR_CONVS) / 1e9


def sample_gflop(n=SAMPLES, cropped=False):
    """One prior pass per cell on the full grid (torch), or on the rows up to the cell's
    own (minivq's sampler: rows below cannot reach it), then one decoder pass."""
    height, width = GRID
    per_pixel = macs(PRIOR_CONVS) / (height * width)
    rows_per_pass = [i + 1 if cropped else height for i in range(height) for _ in range(width)]
    prior = per_pixel * width * sum(rows_per_pass)
    return n * 2 * (prior + macs(DECODER_CONVS)) / 1e9


def encode_gflop(n=ENCODE_IMAGES):
    return n * 2 * (macs(ENCODER_CONVS) + DISTANCES_MACS) / 1e9


# ------------------------------------------------------------------------- minivq side

def minivq_vqvae(rng):
    from minivq.vqvae import build_vqvae
    model = build_vqvae()
    return model, model.init(rng)


def minivq_prior_model():
    from minivq.prior import build_prior
    return build_prior({"num_codes": NUM_CODES})


def minivq_prior(rng):
    return minivq_prior_model().init(rng)


def minivq_train_step(loss_fn, params):
    """step(batch) -> loss: one value_and_grad + Adam update, as in minivq.train.train."""
    from minivq.optim import adam
    from minivq.train import value_grad_and_aux
    opt_init, opt_update = adam(LR)
    opt_state = opt_init(params)

    def step(batch):
        nonlocal params, opt_state
        loss, grads, _ = value_grad_and_aux(loss_fn, params, batch)
        params, opt_state = opt_update(params, grads, opt_state)
        return loss
    return step


def plain_on(step, batch):
    """step(batch) on minivq's plain conv backend (minivq/conv.py) instead of the default fast one."""
    from minivq import use_backend
    with use_backend("plain"):
        return step(batch)


def minivq_sample_and_decode(model, vq_params, prior_params, rng):
    from minivq.sampling import sample_grids
    indices = sample_grids(minivq_prior_model(), prior_params, SAMPLES, *GRID, rng)
    return model.decode_indices(vq_params, indices)


def minivq_encode(model, params, images):
    from minivq.codes import encode_dataset
    return encode_dataset(lambda x: model.encode(params, x), images, ENCODE_BATCH)


def as_taps(convs):
    """(kernel, C_in, C_out, pixels) -> (taps = kernel^2, C_in, C_out, pixels)."""
    return [(k * k, c_in, c_out, pixels) for k, c_in, c_out, pixels in convs]


# Rows per GEMM of the floor's forward and input grads: with B=128-500 operands, 1,024-row
# pieces ran 5-15% faster than whole GEMMs here (cache; the fast backend chunks likewise).
FLOOR_ROWS = 1024


def gemm_floor(layers, batch, backward, calls=1):
    """A runner doing only the matmuls of im2col convolution for `layers` (taps, C_in, C_out,
    pixels), on operands made once: per layer the forward cols @ W, (B*pixels, taps*C_in) @
    (taps*C_in, C_out), and with backward the weight grad cols^T @ g and the input grad g @ W^T
    (not for the first layer, which reads the data), forward and input grad in FLOOR_ROWS-row pieces;
    `calls` times (batches of an epoch).

    No gather, padding, bias, activation, Adam or Python around it: the time im2col
    convolution with numpy's BLAS cannot go below (the 'GEMMs' line under the table).
    """
    rng = onp.random.default_rng(0)
    largest = max(batch * pixels * max(taps * c_in, c_out) for taps, c_in, c_out, pixels in layers)
    buffers = [rng.standard_normal(largest, dtype=onp.float32) for _ in range(2)]
    operands, flops = [], 0
    for number, (taps, c_in, c_out, pixels) in enumerate(layers):
        rows, depth = batch * pixels, taps * c_in
        cols = buffers[0][:rows * depth].reshape(rows, depth)
        g = buffers[1][:rows * c_out].reshape(rows, c_out)
        w = rng.standard_normal((depth, c_out), dtype=onp.float32)
        operands.append((cols, w, g, backward and number > 0))
        flops += 2 * rows * depth * c_out * (1 + backward + (backward and number > 0)) * calls

    def run():
        for _ in range(calls):
            for cols, w, g, input_grad in operands:
                for start in range(0, len(cols), FLOOR_ROWS):
                    cols[start:start + FLOOR_ROWS] @ w       # forward
                    if input_grad:
                        g[start:start + FLOOR_ROWS] @ w.T    # input grad (col2im form)
                if backward:
                    cols.T @ g                               # weight grad
    run.gflop = flops / 1e9                                  # the multiply-adds above, x 2
    return run


# -------------------------------------------------------------------------- torch side

def import_torch():
    """(torch, bench.torch_reference) with THREADS threads, or (None, None) if torch is missing."""
    try:
        import torch
    except ImportError:
        return None, None
    torch.set_num_threads(THREADS)
    from bench import torch_reference
    return torch, torch_reference


def nchw(torch, x):
    """(B, H, W, C) numpy -> contiguous (B, C, H, W) torch tensor."""
    return torch.from_numpy(onp.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def conv_layers(tree):
    """The {'w', 'b'} dicts of a minivq params tree, in layer order (lists in order)."""
    if isinstance(tree, dict):
        return [tree] if "w" in tree else []
    return [layer for child in tree for layer in conv_layers(child)]


def copy_weights(torch, module, layers, table=None):
    """Load minivq conv layers (HWIO) into module's convs (OIHW, transposed: (in, out, kh, kw)).

    Both layouts map by w.transpose(3, 2, 0, 1), since minivq stores a transposed conv's
    weight as (kh, kw, C_out, C_in). ValueError if the architectures differ.
    """
    convs = [m for m in module.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    if len(convs) != len(layers):
        raise ValueError(f"minivq has {len(layers)} conv layers, torch {len(convs)}")
    with torch.no_grad():
        for conv, layer in zip(convs, layers):
            w = torch.from_numpy(onp.ascontiguousarray(layer["w"].transpose(3, 2, 0, 1)))
            if w.shape != conv.weight.shape or layer["b"].shape != tuple(conv.bias.shape):
                raise ValueError(f"minivq layer {layer['w'].shape} does not match torch {conv}")
            conv.weight.copy_(w)
            conv.bias.copy_(torch.from_numpy(layer["b"]))


def torch_vqvae_like(torch, ref, params):
    model = ref.VQVAE()
    copy_weights(torch, model.encoder, conv_layers(params["encoder"]))
    copy_weights(torch, model.decoder, conv_layers(params["decoder"]))
    with torch.no_grad():
        model.codebook.copy_(torch.from_numpy(params["quantizer"]["codebook"]))
    return model


def torch_prior_like(torch, ref, params):
    model = ref.PixelCNN()
    copy_weights(torch, model, conv_layers([params["body"], params["head"]]))
    with torch.no_grad():
        model.embedding.weight.copy_(torch.from_numpy(params["input"]["table"]))
    return model


# ----------------------------------------------------------------------------- timing

def time_interleaved(runners, repeats, warmup, pause, reduce=statistics.median):
    """Median (or `reduce`) seconds of each runner; one call of each per repeat, the order
    flipped every repeat.

    Before every timed call: sleeps `pause` seconds, then makes one untimed call. After a
    BLAS call OpenBLAS keeps its worker threads spinning for 2^28 cycles (~0.1 s here;
    OPENBLAS_THREAD_TIMEOUT), and torch's OpenMP pool likewise, which would steal a core
    from the other framework's call that follows at once; after the pause those threads
    sleep, and the untimed call wakes the framework's own pool, so the timed call runs
    warm, as in a training loop (torch's small convs took twice as long straight after a
    pause as warm; see bench_conv.py).
    """
    for _ in range(warmup):
        for run in runners.values():
            run()
    times = {name: [] for name in runners}
    names = list(runners)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            time.sleep(pause)
            runners[name]()
            start = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - start)
    return {name: reduce(t) for name, t in times.items()}


def matmul_gflops(n=2048, repeats=5):
    """numpy float32 (n, n) @ (n, n): 2 n^3 flops; best of `repeats` after one warm-up."""
    a, b = onp.random.default_rng(0).standard_normal((2, n, n), dtype=onp.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cycling(batches):
    """A function returning the next batch of the list on every call, round and round."""
    position = [0]

    def next_batch():
        batch = batches[position[0] % len(batches)]
        position[0] += 1
        return batch
    return next_batch


# ------------------------------------------------------------------------ row groups

def bench_train_steps(kind, args, torch, ref, images):
    """Rows 'vqvae step B=..' or 'prior step B=..': minivq and torch, interleaved."""
    rows = []
    for batch in (64, 128):
        rng = onp.random.default_rng(0)
        if kind == "vqvae":
            model, params = minivq_vqvae(rng)
            loss_fn, gflop = model.loss_and_aux, vqvae_step_gflop(batch)
            picks = [rng.choice(len(images), batch, replace=False) for _ in range(4)]
            data = [images[p] for p in picks]                               # (B, 28, 28, 1)
        else:
            params = minivq_prior(rng)
            loss_fn, gflop = minivq_prior_model().loss, prior_step_gflop(batch)
            data = [rng.integers(0, NUM_CODES, (batch,) + GRID) for _ in range(4)]   # (B, 7, 7)
        next_minivq = cycling(data)
        minivq_step = minivq_train_step(loss_fn, params)
        runners = {"minivq": lambda: minivq_step(next_minivq())}
        layers = as_taps(ENCODER_CONVS + DECODER_CONVS) if kind == "vqvae" else PRIOR_GEMMS
        runners["gemms"] = gemm_floor(layers, batch, backward=True)
        next_plain, plain_step = cycling(data), minivq_train_step(loss_fn, params)
        runners["plain"] = lambda: plain_on(plain_step, next_plain())   # the plain backend, same model
        if torch is not None:
            torch.manual_seed(0)
            if kind == "vqvae":
                torch_model = torch_vqvae_like(torch, ref, params)
                torch_data = [nchw(torch, x) for x in data]
            else:
                torch_model = torch_prior_like(torch, ref, params)
                torch_data = [torch.from_numpy(x) for x in data]
            next_torch = cycling(torch_data)
            torch_step = ref.make_train_step(torch_model, LR)
            runners["torch"] = lambda: torch_step(next_torch())
        medians = time_interleaved(runners, args.steps, args.warmup, args.pause)
        rows.append((f"{kind} step B={batch}", medians, gflop, "ms"))
    return rows


def bench_sample(args, torch, ref):
    rng = onp.random.default_rng(0)
    model, vq_params = minivq_vqvae(rng)
    prior_params = minivq_prior(rng)
    runners = {"minivq": lambda: minivq_sample_and_decode(model, vq_params, prior_params, rng)}
    if torch is not None:
        torch_vqvae = torch_vqvae_like(torch, ref, vq_params)
        torch_prior = torch_prior_like(torch, ref, prior_params)
        generator = torch.Generator().manual_seed(0)

        def torch_run():
            with torch.no_grad():
                return torch_vqvae.decode(ref.sample_prior(torch_prior, SAMPLES, GRID, generator))
        runners["torch"] = torch_run
    medians = time_interleaved(runners, args.repeats, min(args.warmup, 1), args.pause)
    gflop = {"minivq": sample_gflop(cropped=True), "torch": sample_gflop()}
    return [(f"sample {SAMPLES} + decode", medians, gflop, "s")]


def bench_encode(args, torch, ref, images):
    images = onp.concatenate([images] * -(-ENCODE_IMAGES // len(images)))[:ENCODE_IMAGES]
    rng = onp.random.default_rng(0)
    model, params = minivq_vqvae(rng)
    runners = {"minivq": lambda: minivq_encode(model, params, images),
               "plain": lambda: plain_on(lambda x: minivq_encode(model, params, x), images),
               "gemms": gemm_floor(as_taps(ENCODER_CONVS), ENCODE_BATCH, backward=False,
                                   calls=ENCODE_IMAGES // ENCODE_BATCH)}
    if torch is not None:
        torch_model = torch_vqvae_like(torch, ref, params)
        torch_images = nchw(torch, images)
        runners["torch"] = lambda: ref.encode_dataset(torch_model, torch_images, ENCODE_BATCH)
    medians = time_interleaved(runners, args.repeats, min(args.warmup, 1), args.pause)
    return [(f"encode {ENCODE_IMAGES // 1000}k images", medians, encode_gflop(), "s")]


def memory_worker(framework, batch, steps):
    """Train the VQ-VAE for `steps` steps in this process; print 'baseline_mb peak_mb'."""
    images = load_mnist_embedded().x_train
    rng = onp.random.default_rng(0)
    data = [images[rng.choice(len(images), batch, replace=False)] for _ in range(4)]
    baseline = _status_mb("VmRSS")
    if framework == "minivq":
        model, params = minivq_vqvae(rng)
        step = minivq_train_step(model.loss_and_aux, params)
    else:
        torch, ref = import_torch()
        baseline = _status_mb("VmRSS")                  # torch's own import counted as baseline
        step = ref.make_train_step(ref.VQVAE(), LR)
        data = [nchw(torch, x) for x in data]
    for i in range(steps):
        step(data[i % len(data)])
    print(f"{baseline:.1f} {_status_mb('VmHWM'):.1f}")


def _status_mb(field):
    """VmRSS / VmHWM of this process from /proc/self/status, or ru_maxrss where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024       # kB -> MB
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # kB on Linux


def bench_memory(args, torch):
    """Peak RSS of VQ-VAE training at B=128, one fresh subprocess per framework."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    peaks, notes = {}, []
    for framework in ["minivq"] + (["torch"] if torch is not None else []):
        out = subprocess.run([sys.executable, "-m", "bench.bench_train", "--memory-worker", framework,
                              "--memory-steps", str(args.memory_steps)],
                             cwd=root, capture_output=True, text=True, check=True).stdout
        baseline, peak = (float(v) for v in out.split()[-2:])
        peaks[framework] = peak
        notes.append(f"{framework} {peak:.0f} MB ({baseline:.0f} MB before the model)")
    return [("peak RSS vqvae B=128", peaks, None, "MB")], "peak RSS: " + ", ".join(notes)


BUSY_REPEATS = 15


def bench_busy(args, images, batch=128):
    """Lines 'busy neighbour': a VQ-VAE step at B=128 beside one spinning process, with the
    thread count minivq.threads chooses by default, with 1 and with 2 BLAS threads.

    The three are timed interleaved in this process (each sets its count before its
    step), so the ratios hold within the run even on a loaded machine. The default is
    chosen as for a user without OPENBLAS_NUM_THREADS (this script sets that variable).
    """
    from minivq import threads
    if threads.blas_library() is None:
        return ["busy neighbour: skipped (numpy's OpenBLAS not found: its threads cannot be set)"]
    rng = onp.random.default_rng(0)
    model, params = minivq_vqvae(rng)
    data = [images[rng.choice(len(images), batch, replace=False)] for _ in range(4)]   # (B, 28, 28, 1)

    def with_threads(n):
        step, next_batch = minivq_train_step(model.loss_and_aux, params), cycling(data)
        return lambda: (threads.set_blas_threads(n), step(next_batch()))

    # A spinning neighbour makes single steps noisy: more repeats than the other rows.
    repeats = max(args.repeats, BUSY_REPEATS)
    before = threads.get_blas_threads()
    neighbour = subprocess.Popen([sys.executable, "-c", "while 1: pass"])
    try:
        time.sleep(0.5)                                  # the neighbour is up and spinning
        chosen, reason = threads.choose_threads(env={})
        names = {1: "1 thread", 2: "2 threads"}
        counts = {name: n for n, name in names.items()}
        # A default of 1 or 2 is that row's setting, so it gets that row's time: timed as a third
        # runner of the same setting it came out 1.14x of it in two runs (5 and 15 repeats).
        if chosen not in names:
            counts[f"default ({chosen})"] = chosen
        medians = time_interleaved({name: with_threads(n) for name, n in counts.items()},
                                   repeats, min(args.warmup, 1), args.pause)
    finally:
        neighbour.kill()
        neighbour.wait()
        threads.set_blas_threads(before)
    best = min(medians["1 thread"], medians["2 threads"])
    lines = [f"busy neighbour (one `while 1: pass` beside), vqvae step B={batch}, median of "
             f"{repeats}; the default chose {chosen} thread(s) from: {reason}"]
    lines += [f"  {name:<12} {seconds * 1e3:7.1f} ms  {seconds / best:.2f}x the better of 1 and 2 threads"
              for name, seconds in medians.items()]
    if chosen in names:
        lines.append(f"  default ({chosen}) = the '{names[chosen]}' setting: "
                     f"{medians[names[chosen]] / best:.2f}x the better of 1 and 2 threads")
    lines.append("  target: the default within 1.10x of the better of 1 and 2 threads")
    return lines


# ------------------------------------------------------------------------------ report

def check_same_models(torch, ref, images):
    """Lines showing both frameworks build the same models: parameter counts, equal losses."""
    from minivq.tree import tree_count
    rng = onp.random.default_rng(0)
    model, vq_params = minivq_vqvae(rng)
    prior_params = minivq_prior(rng)
    grids = rng.integers(0, NUM_CODES, (16,) + GRID)
    x = images[:16]
    lines = [f"parameters: vqvae minivq {tree_count(vq_params)}, prior minivq {tree_count(prior_params)}"]
    if torch is None:
        return lines
    torch_vqvae = torch_vqvae_like(torch, ref, vq_params)
    torch_prior = torch_prior_like(torch, ref, prior_params)
    lines[0] += (f"; torch {ref.count_parameters(torch_vqvae)} and "
                 f"{ref.count_parameters(torch_prior)}")
    with torch.no_grad():
        losses = [("vqvae", model.loss(vq_params, x), torch_vqvae.loss(nchw(torch, x)).item()),
                  ("prior", minivq_prior_model().loss(prior_params, grids),
                   torch_prior.loss(torch.from_numpy(grids)).item())]
    lines.append("same weights, same batch of 16: " + "; ".join(
        f"{name} loss minivq {float(a):.6f} torch {b:.6f}" for name, a, b in losses))
    return lines


def gradient_dtypes(images):
    """A line naming the dtype of the loss gradients that enter each float32 model.

    A float64 gradient makes every backward GEMM below it run in float64 (about twice
    the time) and is invisible in the parameter gradients, which autograd casts back.
    """
    from autograd import grad
    from minivq.autoencoder import mse
    from minivq.prior import cross_entropy
    from minivq.quantize import quantize
    rng = onp.random.default_rng(0)
    x = images[:4]                                                       # (4, 28, 28, 1) float32
    z_e = rng.standard_normal((4,) + GRID + (CODE_DIM,)).astype(onp.float32)
    codebook = rng.standard_normal((NUM_CODES, CODE_DIM)).astype(onp.float32)
    logits = rng.standard_normal((4,) + GRID + (NUM_CODES,)).astype(onp.float32)
    targets = rng.integers(0, NUM_CODES, (4,) + GRID)
    found = {"d mse/d recon": grad(lambda r: mse(r, x))(x + 0.5),
             "d vq_loss/d z_e": grad(lambda z: quantize(codebook, z).vq_loss)(z_e),
             "d cross_entropy/d logits": grad(lambda lg: cross_entropy(lg, targets))(logits)}
    return "gradient dtypes entering the float32 models: " + ", ".join(
        f"{name} {g.dtype}" + (" (!)" if g.dtype != onp.float32 else "") for name, g in found.items())


def format_table(rows, peak_gflops):
    """The result table; GFLOP is the reference (torch) work, GF/s each framework's own."""
    head = (f"{'row':<22} {'minivq':>10} {'torch':>10} {'ratio':>6} {'GFLOP':>7} "
            f"{'minivq GF/s':>11} {'torch GF/s':>10}")
    lines = [head, "-" * len(head)]
    scale, digits = {"ms": 1e3, "s": 1.0, "MB": 1.0}, {"ms": 1, "s": 2, "MB": 0}
    for name, values, gflop, unit in rows:
        work = gflop if isinstance(gflop, dict) or gflop is None else {"minivq": gflop, "torch": gflop}
        cells, rates = [], []
        for framework in ("minivq", "torch"):
            value = values.get(framework)
            cells.append("-" if value is None else f"{value * scale[unit]:.{digits[unit]}f} {unit}")
            rates.append("-" if value is None or work is None else f"{work[framework] / value:.0f}")
        ratio = values["minivq"] / values["torch"] if "torch" in values else None
        ratio_cell = "-" if ratio is None else f"{ratio:.2f}"
        gflop_cell = "-" if work is None else f"{work['torch']:.2f}"
        mark = " !" if ratio is not None and ratio > 1.5 else ""
        lines.append(f"{name:<22} {cells[0]:>10} {cells[1]:>10} {ratio_cell:>6} {gflop_cell:>7} "
                     f"{rates[0]:>11} {rates[1]:>10}{mark}")
    plain_rows = [(name, values, unit) for name, values, _, unit in rows if "plain" in values]
    for name, values, unit in plain_rows:
        lines.append(f"{name:<22} {values['plain'] * scale[unit]:>7.{digits[unit]}f} {unit} on the plain backend, "
                     f"plain/fast {values['plain'] / values['minivq']:.2f}")
    for name, values, _, unit in rows:
        if "gemms" in values and "torch" in values:
            lines.append(f"{name:<22} {values['gemms'] * scale[unit]:>7.{digits[unit]}f} {unit} the conv GEMMs alone, "
                         f"{values['gemms'] / values['torch']:.2f}x torch (floor), "
                         f"{values['gemms'] / values['minivq']:.0%} of minivq's time")
    if any("gemms" in values for _, values, _, _ in rows):
        lines.append("GEMMs alone: the matmuls of im2col convolution on ready operands (bench_train.gemm_floor), "
                     "timed interleaved: no im2col convolution with numpy's BLAS goes below it")
    if plain_rows:
        lines.append("plain backend: minivq/conv.py instead of minivq/fast_conv.py (minivq.use_backend('plain')), "
                     "timed interleaved with the columns above")
    lines.append(f"numpy float32 matmul (2048x2048, best of 5, same run): {peak_gflops:.0f} GFLOP/s")
    if any(isinstance(gflop, dict) for _, _, gflop, _ in rows):
        lines.append(f"sample: minivq runs each cell's pass on the rows up to that cell only "
                     f"({sample_gflop(cropped=True):.1f} GFLOP instead of {sample_gflop():.1f}); "
                     f"its GF/s counts the work it does")
    return lines


def cpu_seconds():
    """(seconds all CPUs were busy per /proc/stat, or None; this process and its children's CPU seconds)."""
    own = os.times()
    own = own.user + own.system + own.children_user + own.children_system
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None, own
    busy = sum(fields[:8]) - fields[3] - fields[4]          # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK"), own


def other_load(start, wall):
    """Average number of cores other processes kept busy since `start` (from cpu_seconds)."""
    (busy0, own0), (busy1, own1) = start, cpu_seconds()
    return None if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0) - (own1 - own0)) / wall


GROUPS = ("vqvae", "prior", "sample", "encode", "memory", "busy")


def main(steps=20, warmup=3, repeats=5, memory_steps=10, pause=0.15, only=None):
    args = argparse.Namespace(steps=steps, warmup=warmup, repeats=repeats,
                              memory_steps=memory_steps, pause=pause)
    groups = GROUPS if only is None else (only,)
    torch, ref = import_torch()
    images = load_mnist_embedded().x_train                          # (4500, 28, 28, 1) float32
    print(f"minivq vs {'PyTorch ' + torch.__version__ if torch else 'nothing (torch not installed)'}"
          f"; float32; numpy {onp.__version__}; {THREADS} thread(s) each (OPENBLAS_NUM_THREADS)")
    if torch is None:
        print("torch is not installed: timing minivq only (pip install -e '.[bench]' for the comparison)")
    print(f"medians over {steps} steps after {warmup} warm-up (training), {repeats} repeats (sample, "
          f"encode); minivq and torch alternate every repeat, so load from other jobs hits both alike")
    for line in check_same_models(torch, ref, images) + [gradient_dtypes(images)]:
        print(line)
    start, start_wall = cpu_seconds(), time.perf_counter()
    rows, notes = [], []
    for group in groups:
        if group in ("vqvae", "prior"):
            rows += bench_train_steps(group, args, torch, ref, images)
        elif group == "sample":
            rows += bench_sample(args, torch, ref)
        elif group == "encode":
            rows += bench_encode(args, torch, ref, images)
        elif group == "busy":
            notes += bench_busy(args, images)
        else:
            memory_rows, note = bench_memory(args, torch)
            rows += memory_rows
            notes.append(note)
        print(f"  done: {group}", flush=True)
    print()
    for line in format_table(rows, matmul_gflops()) + notes:
        print(line)
    load = other_load(start, time.perf_counter() - start_wall)
    if load is not None:
        busy = ": timings are inflated (with 2+ threads minivq most: it makes many short BLAS calls)"
        print(f"other processes kept {load:.1f} of {os.cpu_count()} cores busy during the run on average"
              + (busy if load > 0.2 else ""))
    print("target: every ratio <= 1.0, none above 1.5 (marked !); peak RSS under 1 GB")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per row (median)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of sample and encode")
    parser.add_argument("--memory-steps", type=int, default=10, help="training steps of the memory run")
    parser.add_argument("--pause", type=float, default=0.15,
                        help="seconds of sleep before each timed call (lets BLAS threads settle)")
    parser.add_argument("--only", choices=GROUPS, help="run one row group only")
    parser.add_argument("--memory-worker", choices=("minivq", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        memory_worker(args.memory_worker, 128, args.memory_steps)
    else:
        main(args.steps, args.warmup, args.repeats, args.memory_steps, args.pause, args.only)
