"""curves_<variant>.png from a variant's epoch history: the series it plots (known answers) and a PNG that reads back."""

from __future__ import annotations

import math

import numpy as np
import pytest

from train.experiments.curves import always_zero, per_epoch, png_name, write_curves
from train.experiments.monitor import VAL_PREFIX


def record(epoch: int, total: float, cluster: float = 0.0, val: float | None = None) -> dict:
    rec = {"epoch": epoch, "lr": 1e-3, "total": total, "ce": total / 2, "stream": 0.0, "cluster": cluster}
    return rec if val is None else {**rec, VAL_PREFIX + "fused": val, VAL_PREFIX + "motion": val / 2}


def result(runs: int = 2, epochs: int = 5) -> dict:
    """A variant's result with `runs` seeds of one fold: losses falling, validation accuracy rising."""
    history = {f"seed{s}/stratified": [record(e, 2.0 / e + s, cluster=0.1 * (e > 1), val=0.2 * e / epochs + 0.1 * s)
                                       for e in range(1, epochs + 1)] for s in range(runs)}
    return {"history": history, "per_seed": {str(s): {"confusion": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}
                                             for s in range(runs)}}


def test_per_epoch_aligns_records_by_epoch_and_leaves_gaps():
    history = {"a": [record(1, 4.0), record(2, 3.0), record(3, 2.0, val=0.5)],
               "b": [record(2, 1.0), record(3, 0.5)]}  # b's first epoch is missing
    total = per_epoch(history, "total")
    assert total.shape == (2, 3)
    assert total[0].tolist() == [4.0, 3.0, 2.0]
    assert math.isnan(total[1, 0]) and total[1, 1:].tolist() == [1.0, 0.5]
    val = per_epoch(history, VAL_PREFIX + "fused")  # recorded in one epoch of one run only
    assert np.isnan(val).sum() == 5 and val[0, 2] == 0.5


def test_terms_off_in_every_run_are_found():
    history = result()["history"]
    series = {k: per_epoch(history, k) for k in ("total", "ce", "stream", "cluster")}
    assert always_zero(series) == ["stream"]  # cluster is 0 only in the first epoch


def test_png_reads_back(tmp_path):
    import matplotlib.image

    path = write_curves(result(), tmp_path, "full")
    assert path == tmp_path / png_name("full")
    image = matplotlib.image.imread(path)  # (H, W, 4) floats in [0, 1]
    height, width = image.shape[:2]
    assert height >= 200 and width >= 600  # four panels: total, ce, cluster, validation accuracy
    assert image[..., :3].std() > 0.05  # lines and text, not a blank canvas
    assert path.stat().st_size < 150_000


@pytest.mark.parametrize("runs", [1, 3])
def test_one_run_or_several(tmp_path, runs):
    assert write_curves(result(runs=runs, epochs=30), tmp_path, "v").is_file()


def test_a_variant_without_epochs_gets_no_png(tmp_path):
    assert write_curves({"history": {"seed0/stratified": []}}, tmp_path, "linear_probe") is None
    assert write_curves({}, tmp_path, "old_result") is None  # a result.json from before histories
    assert not list(tmp_path.iterdir())
