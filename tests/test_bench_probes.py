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
