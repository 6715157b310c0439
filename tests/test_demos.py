"""Smoke tests of the seven demos: each runs in quick mode, writes valid PNGs and finite numbers.

The demo files start with digits, so they are imported by path with importlib.
"""
import importlib.util
import math
import pathlib

import matplotlib.image
import pytest

DEMOS = pathlib.Path(__file__).resolve().parent.parent / "demos"

EXPECTED_FIGURES = {
    "01_autoencoder": ["reconstructions.png", "training_curves.png"],
    "02_flat_vqvae": ["reconstructions.png", "codebook_images.png", "random_rows.png",
                      "codebook_usage.png", "training_curves.png"],
    "03_grid_vqvae": ["reconstructions.png", "comparison.png", "code_grid.png",
                      "codebook_usage.png", "training_curves.png"],
    "04_independent_cells": ["samples.png", "code_grid.png", "cell_entropy.png"],
    "05_pixelcnn_prior": ["samples.png", "curves_codes.png", "curves_embedding.png"],
    "06_gradient_tour": ["receptive_fields.png"],
    "07_power_demand": ["sequences.png", "curves_vqvae.png", "curves_prior.png"],
}


def load_demo(name):
    """The demo module demos/<name>.py, imported by path."""
    spec = importlib.util.spec_from_file_location(f"demo_{name}", DEMOS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_demo(name, out):
    """main(quick=True) of one demo; checks its figures are PNGs and its numbers finite."""
    numbers = load_demo(name).main(quick=True, out=str(out))
    assert isinstance(numbers, dict) and numbers
    for key, value in numbers.items():
        assert math.isfinite(value), f"{name}: {key} = {value}"
    for figure in EXPECTED_FIGURES[name]:
        image = matplotlib.image.imread(out / figure)             # raises on a missing or broken PNG
        assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50, (figure, image.shape)
    return numbers


def test_every_demo_is_tested():
    assert sorted(p.stem for p in DEMOS.glob("[0-9]*.py")) == sorted(EXPECTED_FIGURES)


@pytest.mark.parametrize("name", sorted(set(EXPECTED_FIGURES) - {"06_gradient_tour", "07_power_demand"}))
def test_demo_quick_run(name, tmp_path):
    run_demo(name, tmp_path / name)


def test_gradient_tour(tmp_path):
    """The tour's claims: encoder gradient exactly 0 without straight-through, causality exact."""
    numbers = run_demo("06_gradient_tour", tmp_path)
    assert numbers["encoder_grad_without"] == 0.0
    assert numbers["encoder_grad_with"] > 0.0 and numbers["encoder_grad_commitment"] > 0.0
    assert numbers["straight_through_error"] == 0.0
    assert abs(numbers["z_q_finite_difference"]) < 1e-6      # z_q is piecewise constant in z_e
    assert numbers["plain_future_cells"] == 0.0 and numbers["gated_future_cells"] == 0.0
    assert numbers["plain_past_cells"] < numbers["gated_past_cells"]   # the plain net's blind spot
    for key, value in numbers.items():
        if key.endswith("_gap"):
            assert value < 1e-5, (key, value)


def test_power_demand_demo_decodes_to_the_archive_scale(tmp_path):
    """Demo 7 maps model values back to the z-normalised demand: held-out real days are
    no training day, so their nearest-day RMSE (about 0.1) lies well below the data's spread
    (1: every series has standard deviation 1) and well above what the [0, 1] model scale
    would give (the range is 6 wide, so about 0.02)."""
    numbers = run_demo("07_power_demand", tmp_path / "07")
    assert 0.05 < numbers["real_nearest_rmse"] < 1.0
    assert 0 <= numbers["PixelCNN_unseen_pairs"] <= 1
