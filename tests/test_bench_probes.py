"""The algorithms the benchmark probes time must compute the right thing before their timings mean anything."""
import importlib.util
import pathlib

import numpy as onp
import pytest

from minivq.conv import conv2d

# bench/ is scripts, not an installed package: import the probe by path, from any directory
_PROBE = pathlib.Path(__file__).resolve().parent.parent / "bench" / "winograd_probe.py"
_spec = importlib.util.spec_from_file_location("winograd_probe", _PROBE)
winograd_probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(winograd_probe)


@pytest.mark.parametrize("height,width", [(7, 7), (5, 6), (1, 4)])
def test_winograd_probe_matches_conv2d(rng, height, width):
    # F(2x2, 3x3) with its buffers, on odd and even sizes (the last tile row/column cropped),
    # against minivq's 3x3 stride-1 padding-1 conv (itself checked against loops in test_conv).
    x = rng.standard_normal((2, height, width, 3))
    w = rng.standard_normal((3, 3, 3, 4))
    winograd = winograd_probe.Winograd(x.shape, w, onp.float64)
    onp.testing.assert_allclose(winograd(x), conv2d(x, w, 1, 1), rtol=1e-12, atol=1e-12)


def test_winograd_kernel_transform_is_lavin_gray():
    # G w G^T for a kernel of ones: the rows of G sum to 1, 1.5, 0.5, 1, so U = outer(those, those).
    u = winograd_probe.kernel_transform(onp.ones((3, 3, 1, 1)))
    row_sums = onp.array([1.0, 1.5, 0.5, 1.0])
    onp.testing.assert_allclose(u.reshape(4, 4), onp.outer(row_sums, row_sums), rtol=1e-15)


_BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench" / "bench_train.py"
_spec = importlib.util.spec_from_file_location("bench_train", _BENCH)
bench_train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_train)


def test_gemm_floor_does_the_work_the_table_counts():
    # The 'GEMMs alone' floor must do exactly the multiplies of the rows it is a floor for:
    # a VQ-VAE step (less the quantizer's distances) and encoding (forward only, 10k images).
    step = bench_train.gemm_floor(bench_train.as_taps(bench_train.ENCODER_CONVS + bench_train.DECODER_CONVS),
                                  2, backward=True)
    distances = 2 * 2 * bench_train.DISTANCES_MACS / 1e9             # batch 2, forward only
    assert step.gflop == pytest.approx(bench_train.vqvae_step_gflop(2) - distances, rel=1e-12)
    encode = bench_train.gemm_floor(bench_train.as_taps(bench_train.ENCODER_CONVS), 5, backward=False, calls=3)
    assert encode.gflop == pytest.approx(bench_train.encode_gflop(15) - 15 * 2 * bench_train.DISTANCES_MACS / 1e9)
    encode()                                                           # and it runs


def test_prior_gemm_taps_are_the_masks_cropped_kernels():
    # PRIOR_GEMMS counts what minivq multiplies: each masked kernel cropped to the rows and
    # columns its mask shows, as pixelcnn._mask_crop computes for the prior's own convs.
    from minivq.pixelcnn import _mask_crop, causal_mask, same_padding
    taps = []
    for kernel, mask_type in [(7, "A")] + 6 * [(3, "B")]:
        rows, cols, _ = _mask_crop(causal_mask(kernel, mask_type), kernel, same_padding(kernel))
        taps.append((rows.stop - rows.start) * (cols.stop - cols.start))
    assert [layer[0] for layer in bench_train.PRIOR_GEMMS[:7]] == taps == [28] + 6 * [6]
