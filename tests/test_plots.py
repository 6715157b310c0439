"""Tests for minivq.plots: exact tiling, PNGs that show their content, input checks."""
import matplotlib.image as mpimg
import numpy as onp
import pytest
from matplotlib import colormaps

from minivq import plots
from minivq.plots import (
    history_records,
    code_grid_map, codebook_usage, image_grid, reconstructions, sample_comparison,
    sequence_panels, tile_images, training_curves)


def read_png(path):
    """(rows, cols, 3) float RGB of a written PNG, after checking it is a real image."""
    pixels = mpimg.imread(str(path))
    assert pixels.ndim == 3 and pixels.shape[0] > 0 and pixels.shape[1] > 0
    return pixels[..., :3]


def assert_not_blank(pixels):
    """More than one colour: something besides the background was drawn."""
    assert len(onp.unique(pixels.reshape(-1, 3), axis=0)) > 1


def black_fraction(pixels):
    return float(onp.mean(onp.all(pixels < 1.0 / 255, axis=-1)))


def digits(rng, n=16, size=8, channels=1):
    """Random images in [0, 1] with a bright square: stand-ins for MNIST digits."""
    images = 0.2 * rng.random((n, size, size, channels))
    images[:, 2:6, 2:6] = 1.0
    return images


# ---------------------------------------------------------------- tile_images

def test_tile_images_hand_example():
    # three 2x2 images a, b, c; ncols=2, pad=1: a and b on the first row, c below a,
    # gaps and the empty fourth cell filled with pad_value 0.5
    a = [[0.0, 0.1], [0.2, 0.3]]
    b = [[1.0, 0.9], [0.8, 0.7]]
    c = [[0.4, 0.4], [0.6, 0.6]]
    images = onp.array([a, b, c])[..., None]              # (3, 2, 2) -> (3, 2, 2, 1)
    expected = onp.array([
        [0.0, 0.1, 0.5, 1.0, 0.9],
        [0.2, 0.3, 0.5, 0.8, 0.7],
        [0.5, 0.5, 0.5, 0.5, 0.5],
        [0.4, 0.4, 0.5, 0.5, 0.5],
        [0.6, 0.6, 0.5, 0.5, 0.5],
    ])[..., None]                                          # (5, 5) -> (5, 5, 1)
    onp.testing.assert_array_equal(tile_images(images, ncols=2, pad=1), expected)


@pytest.mark.parametrize("nrows, ncols, channels", [(1, 1, 1), (2, 3, 1), (3, 2, 3)])
def test_tile_images_matches_reshape_oracle(rng, nrows, ncols, channels):
    # with pad=0 and a full grid, tiling is a block reshape: (r, c, H, W, C) -> (rH, cW, C)
    images = rng.random((nrows * ncols, 4, 5, channels))
    oracle = (images.reshape(nrows, ncols, 4, 5, channels)
              .transpose(0, 2, 1, 3, 4)                   # (r, H, c, W, C)
              .reshape(nrows * 4, ncols * 5, channels))
    onp.testing.assert_array_equal(tile_images(images, ncols=ncols, pad=0), oracle)


def test_tile_images_shapes_default_columns_and_cap(rng):
    images = rng.random((10, 3, 3, 1))
    assert tile_images(images, None).shape == (3 * 3 + 2, 4 * 3 + 3, 1)   # 4 cols, 3 rows
    assert tile_images(images, ncols=50, pad=2).shape == (3, 10 * 3 + 9 * 2, 1)


# ---------------------------------------------------------------- figures are drawn

def test_image_grid_shows_the_images(tmp_path):
    dark = image_grid(onp.zeros((4, 8, 8, 1)), tmp_path / "a" / "b" / "dark.png")
    light = image_grid(onp.ones((4, 8, 8, 1)), tmp_path / "light.png", ncols=4)
    assert dark.is_file() and dark.parent.name == "b"
    # black pixels come only from the images: white figure, grey gaps, no axes
    assert black_fraction(read_png(dark)) > 0.1
    assert black_fraction(read_png(light)) == 0.0


def test_image_grid_rgb_colours_reach_the_png(tmp_path):
    red = onp.zeros((4, 8, 8, 3))
    red[..., 0] = 1.0
    pixels = read_png(image_grid(red, tmp_path / "red.png", title="red"))
    assert onp.mean(onp.all(pixels == [1.0, 0.0, 0.0], axis=-1)) > 0.1


def test_reconstructions(tmp_path, rng):
    originals = digits(rng)
    path = reconstructions(originals, onp.zeros_like(originals), tmp_path / "rec.png",
                           n=8, title="epoch 1")
    pixels = read_png(path)
    assert_not_blank(pixels)
    assert black_fraction(pixels) > 0.05                   # the all-black reconstructions


def test_history_records_renames_eval_metrics():
    # train.train's history: eval metrics become test_*, timings and code counts are dropped.
    history = {"train": [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.4}],
               "eval": [{"step": 2, "test_mse": 0.01, "perplexity": 30.0, "used_codes": 60, "seconds": 1.5},
                        {"step": 4, "test_bits": 3.1}]}
    assert history_records(history) == [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.4},
                                        {"step": 2, "test_mse": 0.01, "test_perplexity": 30.0},
                                        {"step": 4, "test_bits": 3.1}]


def test_training_curves_one_panel_per_present_metric(tmp_path):
    history = [{"step": s, "loss": 1.0 / (s + 1), "recon_mse": 0.1 / (s + 1)}
               for s in range(20)]
    history += [{"step": 9, "test_mse": 0.05}, {"step": 19, "test_mse": 0.03,
                                                 "test_bits": 1.2}]
    two = read_png(training_curves(history[:20], tmp_path / "two.png"))   # no perplexity
    four = read_png(training_curves(history, tmp_path / "four.png"))      # + test_mse, test_bits
    assert_not_blank(two)
    assert four.shape[0] == pytest.approx(2 * two.shape[0], abs=2)     # 2.2 in per panel
    assert four.shape[1] == two.shape[1]


def test_codebook_usage(tmp_path, rng):
    indices = rng.integers(0, 12, size=(5, 4, 4))
    pixels = read_png(codebook_usage(indices, 16, tmp_path / "usage.png"))
    assert_not_blank(pixels)
    bar = onp.array(colormaps["tab10"].colors[0])           # matplotlib's default C0 blue
    assert onp.any(onp.all(onp.abs(pixels - bar) < 1.5 / 255, axis=-1))


@pytest.mark.parametrize("grid, K", [((3, 3), 8), ((12, 12), 40)])
def test_code_grid_map_paints_each_code_in_its_colour(tmp_path, rng, grid, K):
    indices = rng.integers(0, K, size=grid)
    pixels = read_png(code_grid_map(digits(rng, n=1)[0], indices, K, tmp_path / "map.png"))
    flat = pixels.reshape(-1, 3)
    for k in onp.unique(indices):
        # K <= 10: entry k of tab10; K > 20: turbo sampled at K evenly spaced points
        colour = onp.array((colormaps["tab10"](int(k)) if K <= 10
                            else colormaps["turbo"](k / (K - 1)))[:3])
        assert onp.any(onp.all(onp.abs(flat - colour) < 1.5 / 255, axis=-1)), k


def test_sample_comparison(tmp_path, rng):
    panels = [("random codebook row", digits(rng, 16)),
              ("independent cells", digits(rng, 64)),
              ("PixelCNN prior", digits(rng, 64))]
    one = read_png(sample_comparison(panels[:1], tmp_path / "one.png"))
    three = read_png(sample_comparison(panels, tmp_path / "three.png"))
    assert_not_blank(three)
    assert three.shape[1] == pytest.approx(3 * one.shape[1], abs=2)    # side by side


def test_sample_comparison_writes_a_score_under_each_title(tmp_path, rng, monkeypatch):
    titles, save = [], plots._save

    def save_and_record_titles(fig, path):
        titles.append([ax.get_title() for ax in fig.axes])
        return save(fig, path)
    monkeypatch.setattr(plots, "_save", save_and_record_titles)
    panels = [("real", digits(rng, 16)), ("prior", digits(rng, 16))]
    plain = read_png(sample_comparison(panels, tmp_path / "plain.png"))
    scored = read_png(sample_comparison(panels, tmp_path / "scored.png",
                                        scores=["n 16: conf 0.98, >=0.9: 95%, div 3.32 bits", None]))
    assert titles == [["real", "prior"], ["real\nn 16: conf 0.98, >=0.9: 95%, div 3.32 bits", "prior"]]
    assert scored.shape[1] == plain.shape[1] and scored.shape[0] == plain.shape[0] + 30   # + 0.3 inch
    assert_not_blank(scored)
    with pytest.raises(ValueError, match="one line"):
        sample_comparison(panels, tmp_path / "bad.png", scores=["only one"])


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("images, match", [
    (onp.zeros((4, 8, 8)), "shape"),                        # channel axis missing
    (onp.zeros((4, 8, 8, 2)), "C = 1 or 3"),
    (onp.full((4, 8, 8, 1), 255.0), r"\[0, 1\]"),           # 0-255 pixels
    (onp.full((4, 8, 8, 1), onp.nan), "NaN"),
    (onp.zeros((0, 8, 8, 1)), "at least one"),
])
def test_bad_images_raise(tmp_path, images, match):
    with pytest.raises(ValueError, match=match):
        image_grid(images, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_bad_arguments_raise(tmp_path, rng):
    images = digits(rng, 4)
    with pytest.raises(ValueError, match="same shape"):
        reconstructions(images, images[:2], tmp_path / "r.png")
    with pytest.raises(ValueError, match="ncols"):
        tile_images(images, ncols=0)
    with pytest.raises(ValueError, match="'step'"):
        training_curves([{"loss": 1.0}], tmp_path / "t.png")
    with pytest.raises(ValueError, match="none of the metrics"):
        training_curves([{"step": 0, "lr": 1e-3}], tmp_path / "t.png")
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        codebook_usage(onp.array([0, 1, 4]), 4, tmp_path / "u.png")
    with pytest.raises(ValueError, match="integers"):
        codebook_usage(onp.array([0.0, 1.0]), 4, tmp_path / "u.png")
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        code_grid_map(images, onp.zeros((2, 2), dtype=int), 4, tmp_path / "m.png")
    with pytest.raises(ValueError, match=r"\(h, w\)"):
        code_grid_map(images[0], onp.zeros((1, 2, 2), dtype=int), 4, tmp_path / "m.png")
    with pytest.raises(ValueError, match="pair"):
        sample_comparison([images], tmp_path / "s.png")


# ---------------------------------------------------------------- sequence_panels

def has_colour(pixels, colour, tol=2.0 / 255):
    return bool(onp.any(onp.all(onp.abs(pixels - onp.asarray(colour)) < tol, axis=-1)))


def test_sequence_panels_draws_series_k_in_colour_k(tmp_path, rng):
    tab10 = colormaps["tab10"].colors
    series = onp.sin(onp.linspace(0, 6, 24))[None, :] + 0.1 * rng.random((5, 24))   # (N, L)
    as_rows = series[:, None, :, None]                                           # (N, 1, L, 1)
    path = sequence_panels([("real", series), ("recon", as_rows, as_rows + 0.1)], tmp_path / "s.png", n=3)
    pixels = read_png(path)
    assert all(has_colour(pixels, tab10[k]) for k in range(3))                   # the first n = 3 only
    assert not has_colour(pixels, tab10[3]) and not has_colour(pixels, tab10[4])
    wide = read_png(sequence_panels([("a", series)] * 3, tmp_path / "wide.png"))
    assert wide.shape[1] == 3 * read_png(sequence_panels([("a", series)], tmp_path / "one.png")).shape[1]


@pytest.mark.parametrize("panels, match", [
    ([], "non-empty"),
    ([("a",)], "title, sequences"),
    ([("a", onp.zeros((2, 3, 4, 5)))], "shape"),
    ([("a", onp.full((2, 4), onp.nan))], "NaN"),
    ([("a", onp.zeros((2, 4)), onp.zeros((2, 5)))], "references"),
])
def test_sequence_panels_bad_input_raises(tmp_path, panels, match):
    with pytest.raises(ValueError, match=match):
        sequence_panels(panels, tmp_path / "s.png")
