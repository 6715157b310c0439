"""Time forward + backward of minivq's fast conv primitives (minivq/fast_conv.py) against torch on the VQ-VAE's shapes.

    python -m bench.bench_conv [--batch 128] [--repeat 15] [--warmup 3] [--stat median|min] [--threads 2] [--pause 0.15]

For every shape: y = f(x, w), then both VJPs with a fixed upstream gradient, float32.
Next to it, "GEMMs": the three BLAS matmuls that step performs, alone, on ready-made
operands (no im2col, no padding, no Python): the floor for im2col convolution with
numpy's BLAS; "floor" is that time over torch's.
minivq calls the primitive and its registered VJP makers directly (what autograd runs,
without the zeros-and-add autograd spends on differentiating w.r.t. an input tuple); torch runs `torch.autograd.grad` on 2 threads, inputs converted to NCHW outside
the timed region. The two are timed alternately, the order flipped every repeat, so a noisy
neighbour hurts both; the table reports the median (or --stat min) over repeats after
warm-up, and the load average.

Each timed call is the second of a pair: sleep --pause seconds (default 0.15), one untimed
call, then the timed one. Both libraries leave their worker threads spinning after a
parallel call (OpenBLAS for 2^28 cycles, ~0.1 s; torch's OpenMP pool likewise): a call
right after the other library's shares its cores with those spinners (measured here: 64->32
k3 on 7x7 took 10.2 ms that way, 6.0 ms alone). After the pause the other library's threads
are asleep, and the untimed call wakes the own pool (torch's 1x1 conv took 9.8 ms straight
after a pause, 4.3 ms warm), so the timed call sees what a training loop sees. The loop is
bench_train.time_interleaved, shared by both scripts.

Prints numpy's float32 matmul GFLOP/s from the same run as a yardstick. `--threads` sets
torch's threads only; numpy's BLAS threads are fixed at start-up by OPENBLAS_NUM_THREADS
(on a busy machine, OPENBLAS_NUM_THREADS=1 with --threads 1 gives a steadier comparison).
"""
import argparse
import os
import statistics

import numpy as onp

from bench.bench_train import matmul_gflops, time_interleaved
from minivq.conv import conv_output_size, conv_transpose_output_size
from minivq.fast_conv import (conv2d, conv2d_vjp, conv_transpose2d, conv_transpose2d_vjp, phase_range,
                              scatter_is_cheaper, shared_dw_is_cheaper)

# (kind, C_in -> C_out as the layer sees it, kernel, stride, padding, input H=W)
SHAPES = [
    ("conv", 1, 32, 4, 2, 1, 28),
    ("conv", 32, 64, 4, 2, 1, 14),
    ("conv", 64, 64, 3, 1, 1, 7),
    ("conv", 64, 32, 3, 1, 1, 7),
    ("conv", 32, 64, 1, 1, 0, 7),
    ("convT", 64, 32, 4, 2, 1, 7),
    ("convT", 32, 1, 4, 2, 1, 14),
]


def make_minivq_step(kind, c_in, c_out, kernel, stride, padding, size, batch, rng):
    """A closure running forward + both VJPs of one minivq primitive on fixed float32 data."""
    x = rng.standard_normal((batch, size, size, c_in), dtype=onp.float32)
    if kind == "conv":
        w = rng.standard_normal((kernel, kernel, c_in, c_out), dtype=onp.float32)   # HWIO
        out = conv_output_size(size, kernel, stride, padding)
    else:
        w = rng.standard_normal((kernel, kernel, c_out, c_in), dtype=onp.float32)   # (kh, kw, C=out, F=in)
        out = conv_transpose_output_size(size, kernel, stride, padding)
    g = rng.standard_normal((batch, out, out, c_out), dtype=onp.float32)

    fn, vjp_maker = (conv2d, conv2d_vjp) if kind == "conv" else (conv_transpose2d, conv_transpose2d_vjp)

    def step():               # the joint VJP autograd runs when both arguments need gradients
        y = fn(x, w, stride, padding)
        return vjp_maker((0, 1), y, (x, w, stride, padding), {})(g)
    return step, (x, w, g)


def make_gemm_step(kind, c_in, c_out, kernel, stride, padding, size, batch, rng):
    """The three BLAS matmuls the minivq step performs, alone, on ready-made float32 operands:
    the floor that im2col convolution with numpy's BLAS cannot go below.

    Both primitives are the same conv2d read two ways: x (C channels, H x H) -> y (F, Ho x Ho).
    forward (M, k*k*C) @ (k*k*C, F), M = B*Ho*Ho. Input grad as fast_conv.scatter_is_cheaper
    chooses: (M, F) @ (F, k*k*C) (scatter path) or G @ W_phases, (B*Q*Q, t*t*F) @ (t*t*F, s*s*C),
    t = ceil(k/s), Q the blocks of s rows of x_pad that hold x (gather path; fast_conv.phase_range).
    Weight grad: a conv whose input grad takes the gather path gets it from the same rows G
    (the joint VJP), (t*t*F, B*Q*Q) @ (B*Q*Q, s*s*C), when that needs no more multiplies
    (fast_conv.shared_dw_is_cheaper); otherwise, and for the transposes, (k*k*C, M) @ (M, F).
    """
    if kind == "conv":
        channels, features, height = c_in, c_out, size
    else:
        channels, features, height = c_out, c_in, conv_transpose_output_size(size, kernel, stride, padding)
    out = conv_output_size(height, kernel, stride, padding)
    rows, taps = batch * out * out, kernel * kernel
    q_lo, q_hi, t = phase_range(height, kernel, stride, padding)    # the s x s blocks of x_pad dx computes
    q = q_hi - q_lo
    w_shape, x_shape = (kernel, kernel, channels, features), (batch, height, height, channels)
    shapes = [(rows, taps * channels, features), (taps * channels, rows, features)]
    if scatter_is_cheaper(w_shape, stride):
        shapes.append((rows, features, taps * channels))
    else:
        shapes.append((batch * q * q, t * t * features, stride * stride * channels))
        if kind == "conv" and shared_dw_is_cheaper(x_shape, w_shape, stride, (padding,) * 4):
            shapes[1] = (t * t * features, batch * q * q, stride * stride * channels)
    operands = [(rng.standard_normal((m, k), dtype=onp.float32), rng.standard_normal((k, n), dtype=onp.float32))
                for m, k, n in shapes]

    def step():
        return [a @ b for a, b in operands]
    return step


def make_torch_step(torch, kind, stride, padding, arrays):
    """The same computation in torch: NHWC -> NCHW, HWIO -> OIHW (transpose: (in, out, kh, kw))."""
    x, w, g = arrays
    x_t = torch.from_numpy(onp.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_()
    w_t = torch.from_numpy(onp.ascontiguousarray(w.transpose(3, 2, 0, 1))).requires_grad_()
    g_t = torch.from_numpy(onp.ascontiguousarray(g.transpose(0, 3, 1, 2)))
    fn = torch.nn.functional.conv2d if kind == "conv" else torch.nn.functional.conv_transpose2d

    def step():
        y_t = fn(x_t, w_t, stride=stride, padding=padding)
        return torch.autograd.grad(y_t, (x_t, w_t), g_t)
    return step


def main(batch=128, repeat=15, warmup=3, stat="median", threads=2, pause=0.15):
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
        print("torch is not installed: timing minivq only (pip install -e .[bench] for the comparison)")
    reduce = statistics.median if stat == "median" else min
    rng = onp.random.default_rng(0)
    print(f"numpy float32 matmul: {matmul_gflops(1024):.1f} GFLOP/s; batch {batch}, {stat} of {repeat} after "
          f"{warmup} warm-up; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'shape':<32} {'minivq ms':>10} {'GEMMs ms':>9} {'torch ms':>9} {'ratio':>6} {'floor':>6}")
    totals, ratios = onp.zeros(3), []
    for kind, c_in, c_out, kernel, stride, padding, size in SHAPES:
        step, arrays = make_minivq_step(kind, c_in, c_out, kernel, stride, padding, size, batch, rng)
        steps = [step, make_gemm_step(kind, c_in, c_out, kernel, stride, padding, size, batch, rng)]
        steps += [make_torch_step(torch, kind, stride, padding, arrays)] if torch else []
        seconds = time_interleaved(dict(enumerate(steps)), repeat, warmup, pause, reduce)
        ms = onp.array([seconds[i] for i in range(len(steps))]) * 1e3
        label = f"{kind} {c_in}->{c_out} k{kernel} s{stride} p{padding} {size}x{size}"
        totals[:len(ms)] += ms
        if torch:
            ratios.append(ms[0] / ms[2])
            print(f"{label:<32} {ms[0]:>10.2f} {ms[1]:>9.2f} {ms[2]:>9.2f} {ratios[-1]:>6.2f} {ms[1] / ms[2]:>6.2f}")
        else:
            print(f"{label:<32} {ms[0]:>10.2f} {ms[1]:>9.2f} {'-':>9} {'-':>6} {'-':>6}")
    if torch:
        print(f"{'total':<32} {totals[0]:>10.2f} {totals[1]:>9.2f} {totals[2]:>9.2f} "
              f"{totals[0] / totals[2]:>6.2f} {totals[1] / totals[2]:>6.2f}")
        print(f"summed ratio {totals[0] / totals[2]:.2f}, max ratio {max(ratios):.2f}; "
              f"floor = the GEMMs alone / torch")
    else:
        print(f"{'total':<32} {totals[0]:>10.2f} {totals[1]:>9.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--stat", choices=["median", "min"], default="median")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--pause", type=float, default=0.15, help="seconds slept before each timed call")
    args = parser.parse_args()
    main(args.batch, args.repeat, args.warmup, args.stat, args.threads, args.pause)
