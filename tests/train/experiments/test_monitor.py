"""Validation accuracy per epoch is recorded and never selects: an experiment with it equals one without, loss for loss."""

from __future__ import annotations

import numpy as np
import pytest

from train.experiments.experiment import Experiment, run_experiment
from train.experiments.metrics import accuracy, among
from train.experiments.monitor import VAL_PREFIX, head_of, loss_keys, val_keys
from train.fitting.config import TrainConfig
from train.fitting.splits import SplitSpec
from train.fitting.losses import LOSS_TERMS

# full (head blend from inner folds: four training runs per fold) and a baseline, which has no epochs
VARIANTS = ("full", "linear_probe")
EPOCHS = 3


def experiment(store: str, out, val_curves: bool) -> Experiment:
    return Experiment(store=store, out=out, variants=VARIANTS, val_curves=val_curves, quiet=True,
                      train=TrainConfig(epochs=EPOCHS, batch_size=2, hidden=32, motion_dim=32, device="cpu",
                                        clip_adapters=False),
                      split=SplitSpec("stratified", val_fraction=0.5))


@pytest.fixture(scope="module")
def both(tiny_store, tmp_path_factory) -> tuple[dict, dict]:
    """The same experiment recorded (val curves on) and not."""
    root = tmp_path_factory.mktemp("monitor")
    return (run_experiment(experiment(tiny_store, root / "on", True)),
            run_experiment(experiment(tiny_store, root / "off", False)))


def test_recording_changes_no_result(both):
    on, off = both
    for name in VARIANTS:
        a, b = on["variants"][name], off["variants"][name]
        assert a["per_seed"]["0"].keys() == b["per_seed"]["0"].keys()
        for key, value in a["per_seed"]["0"].items():
            if key not in ("train_seconds", "data_wait_share"):  # wall times
                assert value == b["per_seed"]["0"][key], (name, key)  # metrics, confusion, heads, blend weights
    runs_on, runs_off = on["variants"]["full"]["history"], off["variants"]["full"]["history"]
    assert list(runs_on) == list(runs_off) == ["seed0/stratified"]
    for rec_on, rec_off in zip(runs_on["seed0/stratified"], runs_off["seed0/stratified"]):
        assert {k: v for k, v in rec_on.items() if not k.startswith(VAL_PREFIX)} == rec_off  # exact floats


def test_recorded_accuracy_is_per_epoch_per_trained_head(both):
    on, off = both
    records = on["variants"]["full"]["history"]["seed0/stratified"]
    assert [r["epoch"] for r in records] == list(range(1, EPOCHS + 1))
    assert val_keys(records) == [VAL_PREFIX + h for h in ("fused", "motion", "visual")]  # no probe: fitted after
    n_val = on["variants"]["full"]["per_seed"]["0"]["n"]
    for r in records:
        for key in val_keys(records):
            assert r[key] * n_val == pytest.approx(round(r[key] * n_val))  # a share of the validation videos
    # the last epoch's fused-head figure is the fused head's accuracy the report gives
    assert records[-1][VAL_PREFIX + "fused"] == on["variants"]["full"]["per_seed"]["0"]["heads"]["fused"]
    assert val_keys(off["variants"]["full"]["history"]["seed0/stratified"]) == []
    assert on["variants"]["linear_probe"]["history"] == {"seed0/stratified": []}


def test_record_keys():
    record = {"epoch": 1, "lr": 1e-3, "total": 2.0, "ce": 1.0, "align": 0.5, VAL_PREFIX + "visual": 0.5,
              VAL_PREFIX + "fused": 0.25}
    assert loss_keys([record]) == ["total", "ce", "align"]
    assert set(LOSS_TERMS) >= {"ce", "align"}
    assert val_keys([record]) == [VAL_PREFIX + "fused", VAL_PREFIX + "visual"]  # EPOCH_HEADS order
    assert head_of(VAL_PREFIX + "motion") == "motion"


def test_zero_shot_accuracy_chooses_among_the_held_out_classes():
    labels = np.array([1, 2, 2])
    logits = np.array([[9.0, 1.0, 0.0], [9.0, 0.0, 1.0], [9.0, 1.0, 0.0]])  # class 0 (seen) always highest
    assert accuracy(labels, logits) == 0.0
    y, z = among(labels, logits, [1, 2])
    assert y.tolist() == [0, 1, 1] and z.shape == (3, 2)
    assert accuracy(y, z) == pytest.approx(2 / 3)
