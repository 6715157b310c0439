"""Would Winograd's F(2x2, 3x3) make the 3x3 stride-1 convolutions faster in NumPy? A probe.

    python -m bench.winograd_probe [--batch 128] [--repeat 15]

The GEMMs of an im2col 3x3 convolution alone take 1.4x torch's whole convolution on the
decoder's 7x7 maps (bench_conv's "floor" column), so im2col cannot reach the conv bench's
1.5x target there. Winograd's minimal filtering (Lavin & Gray 2016, "Fast Algorithms for
Convolutional Neural Networks") needs fewer multiplies: each 2x2 output tile is

    Y = A^T [ (G w G^T) (.) (B^T d B) ] A           d: the 4x4 input tile, (.) elementwise

so the 16 elementwise products become 16 GEMMs (tiles x C) @ (C x F), 16 multiplies per 4
outputs instead of 36. On 7x7 outputs (4x4 tiles of 2x2, the last row and column wasted)
that is 256 against 441 per image and channel pair: 0.58x. The price is the transforms:
B^T d B on every tile (here in two separable passes, rows then columns), A^T M A on every
product. This script times the forward pass of both ways on the two 3x3 layers of the
conv bench, the Winograd one piece by piece with its buffers allocated once (its best
case), and checks that both give conv2d's answer. Forward only: the backward pass would
add two more transforms of the same size (dx through B, dw through A).

No torch needed: this compares two NumPy algorithms, timed alternately in one process.
"""
import argparse
import statistics
import time

import numpy as onp

from minivq.fast_conv import conv2d

# Lavin & Gray's F(2x2, 3x3) matrices: B^T (4x4) for the input tile, G (4x3) for the
# kernel, A^T (2x4) for the output; B^T and A^T are applied below as the adds they are.
G = onp.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def kernel_transform(w):
    """U[a, b] = (G w G^T)[a, b] per channel pair: (3, 3, C, F) -> (16, C, F)."""
    return onp.einsum("au,bv,uvcf->abcf", G, G, w).astype(w.dtype).reshape(16, *w.shape[2:])


def input_transform(x_pad, tiles, rows, out):
    """V = B^T d B for every 4x4 tile d of x_pad (B, 2T+2, 2T'+2, C), tile (i, j) at rows
    2i.., columns 2j..; B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]].
    rows: scratch (4, B, T, 2T'+2, C); out: (4, 4, B, T, T', C)."""
    t_h, t_w = tiles
    d0, d1, d2, d3 = (x_pad[:, k:k + 2 * t_h:2] for k in range(4))          # tile rows 0..3
    onp.subtract(d0, d2, out=rows[0]), onp.add(d1, d2, out=rows[1])
    onp.subtract(d2, d1, out=rows[2]), onp.subtract(d1, d3, out=rows[3])
    d0, d1, d2, d3 = (rows[:, :, :, k:k + 2 * t_w:2] for k in range(4))      # tile columns 0..3
    onp.subtract(d0, d2, out=out[:, 0]), onp.add(d1, d2, out=out[:, 1])
    onp.subtract(d2, d1, out=out[:, 2]), onp.subtract(d1, d3, out=out[:, 3])
    return out


def output_transform(products, sums, out):
    """Y = A^T M A for every tile, A^T = [[1,1,1,0],[0,1,-1,-1]]: (4, 4, ...) -> (2, 2, ...),
    rows first (into the scratch `sums`, (2, 4, ...)), then columns."""
    for m, s in ((products, sums), (sums.swapaxes(0, 1), out.swapaxes(0, 1))):
        onp.add(m[0], m[1], out=s[0]), onp.add(s[0], m[2], out=s[0])            # row 0: m0 + m1 + m2
        onp.subtract(m[1], m[2], out=s[1]), onp.subtract(s[1], m[3], out=s[1])  # row 1: m1 - m2 - m3
    return out


class Winograd:
    """A 3x3, stride 1, padding 1 convolution of (B, H, W, C) by F(2x2, 3x3), buffers made once."""

    def __init__(self, x_shape, w, dtype):
        batch, height, width, channels = x_shape
        self.tiles = (-(-height // 2), -(-width // 2))
        t_h, t_w = self.tiles
        self.u, self.shape = kernel_transform(w), (height, width)
        self.x_pad = onp.zeros((batch, 2 * t_h + 2, 2 * t_w + 2, channels), dtype)
        self.rows = onp.empty((4, batch, t_h, 2 * t_w + 2, channels), dtype)
        self.v = onp.empty((4, 4, batch, t_h, t_w, channels), dtype)
        self.m = onp.empty((16, batch * t_h * t_w, w.shape[3]), dtype)
        self.sums = onp.empty((2, 4, batch, t_h, t_w, w.shape[3]), dtype)
        self.y = onp.empty((2, 2, batch, t_h, t_w, w.shape[3]), dtype)

    def pad(self, x):
        self.x_pad[:, 1:1 + x.shape[1], 1:1 + x.shape[2]] = x

    def transform_input(self):
        input_transform(self.x_pad, self.tiles, self.rows, self.v)

    def multiply(self):
        onp.matmul(self.v.reshape(16, -1, self.v.shape[-1]), self.u, out=self.m)

    def transform_output(self):
        output_transform(self.m.reshape(4, 4, *self.y.shape[2:]), self.sums, self.y)

    def assemble(self):
        """(2, 2, B, T, T', F) -> (B, 2T, 2T', F), cropped to (B, H, W, F)."""
        batch, t_h, t_w, features = self.y.shape[2:]
        y = self.y.transpose(2, 3, 0, 4, 1, 5).reshape(batch, 2 * t_h, 2 * t_w, features)
        return onp.ascontiguousarray(y[:, :self.shape[0], :self.shape[1]])

    def __call__(self, x):
        self.pad(x), self.transform_input(), self.multiply(), self.transform_output()
        return self.assemble()


def main(batch=128, repeat=15):
    rng = onp.random.default_rng(0)
    print(f"forward only, float32, batch {batch}, median ms of {repeat} alternating repeats")
    for c_in, c_out in ((64, 64), (64, 32)):
        x = rng.standard_normal((batch, 7, 7, c_in), dtype=onp.float32)
        w = (rng.standard_normal((3, 3, c_in, c_out)) / 24).astype(onp.float32)
        wino = Winograd(x.shape, w, onp.float32)
        expected = conv2d(x, w, 1, 1)
        error = onp.abs(wino(x) - expected).max() / onp.abs(expected).max()
        assert error < 1e-5, f"Winograd result differs from conv2d by {error:.1e} (relative)"
        im2col_gemm = (rng.standard_normal((batch * 49, 9 * c_in), dtype=onp.float32),
                       w.reshape(9 * c_in, c_out))
        steps = {
            "im2col conv2d forward (minivq)": lambda: conv2d(x, w, 1, 1),
            "  its GEMM alone": lambda: onp.matmul(*im2col_gemm),
            "Winograd forward, sum of:": lambda: wino(x),
            "  pad": lambda: wino.pad(x),
            "  input transform B^T d B": wino.transform_input,
            "  16 GEMMs": wino.multiply,
            "  output transform A^T M A": wino.transform_output,
            "  tiles -> image": wino.assemble,
        }
        times = {name: [] for name in steps}
        for _ in range(repeat):
            for name, step in steps.items():
                step()                                   # untimed: warm caches and BLAS threads
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
        print(f"\n3x3 conv {c_in}->{c_out} on 7x7 (Winograd max relative error {error:.1e})")
        for name, seconds in times.items():
            print(f"  {name:<34} {statistics.median(seconds) * 1e3:7.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    main(args.batch, args.repeat)
