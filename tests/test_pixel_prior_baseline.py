"""bench/pixel_prior_baseline.py --quick: both priors train, the numbers add up, the figure is written."""
import importlib.util
import json
import math
import pathlib

import matplotlib.image

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "bench" / "pixel_prior_baseline.py"


def test_quick_run(tmp_path):
    spec = importlib.util.spec_from_file_location("pixel_prior_baseline", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    numbers = module.main(out=str(tmp_path), quick=True, progress=False)
    assert all(math.isfinite(value) for value in numbers.values())
    # K = 2 pixels: a few steps from the start stay near the uniform 1 bit per pixel
    assert 0.5 < numbers["pixel_bits_per_dim"] < 1.5
    # the whole model's bound is its prior's bits spread over 784 pixels plus the reconstruction's
    saved = json.loads((tmp_path / "results.json").read_text())
    assert math.isclose(saved["codes_binary_prior"], saved["codes_bits_per_code"] * 49 / 784, rel_tol=1e-9)
    for kind in ("binary", "grey"):
        assert math.isclose(saved[f"codes_{kind}_bits_per_dim"],
                            saved[f"codes_{kind}_prior"] + saved[f"codes_{kind}_reconstruction"], rel_tol=1e-9)
    assert numbers["pixel_step_seconds"] > 0 and numbers["code_step_seconds"] > 0
    image = matplotlib.image.imread(tmp_path / "samples.png")
    assert image.ndim == 3 and image.shape[0] > 50
