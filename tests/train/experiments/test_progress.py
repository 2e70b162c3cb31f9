"""The run's display: the sweep line's position and count, one epoch bar per training run, quiet log lines."""

from __future__ import annotations

import pytest

from fgm_common.console import console
from train.experiments.monitor import VAL_PREFIX
from train.experiments.progress import LOG_EVERY, SWEEP_ETA_WINDOW, TrainProgress, epoch_line


def rec(epoch: int) -> dict:
    return {"epoch": epoch, "lr": 1e-3, "total": 1.5, "ce": 1.25, VAL_PREFIX + "fused": 0.5}


def sweep(p: TrainProgress):
    return p.sweep_bar.tasks[0]


def test_sweep_position_moves_with_folds_and_outer_epochs():
    with TrainProgress(n_variants=3) as p:
        assert p.sweep_bar.speed_estimate_period == SWEEP_ETA_WINDOW
        p.variant(1, "full")
        p.fold(seed_i=0, n_seeds=2, fold_i=0, n_folds=2)  # each fold: a quarter of the variant
        assert sweep(p).completed == 0.0
        with p.run("full", 0, "stratified-inner0", epochs=4, outer=False) as tick:
            tick(4, rec(4))
        assert sweep(p).completed == 0.0  # an inner-fold model does not move the sweep
        with p.run("full", 0, "stratified", epochs=4, outer=True) as tick:
            [run] = p.runs.tasks  # this run's epochs
            tick(2, rec(2))
            assert sweep(p).completed == pytest.approx(0.125)
            assert run.completed == 2 and run.description == "full s0 stratified" and "val 50%" in run.fields["rate"]
        assert not p.runs.tasks  # the run's bar is gone when it ends
        p.fold(1, 2, 1, 2)
        assert sweep(p).completed == pytest.approx(0.75)
        assert "variant 1/3 full seed 2/2 fold 2/2" == sweep(p).description
        p.variant_done()
        p.variant(2, "no_motion")
        p.skip()  # finished in an earlier run
        assert (sweep(p).completed, sweep(p).total) == (1.0, 2)
        p.variant(3, "paper")
        assert sweep(p).description == "variant 3/3 paper"


def test_quiet_shows_no_bar_and_logs_every_few_epochs():
    with console.capture() as captured, TrainProgress(n_variants=1, quiet=True) as p:
        assert p.sweep_bar.disable and p.runs.disable
        p.variant(1, "full")
        p.fold(0, 1, 0, 1)
        epochs = LOG_EVERY + 3
        with p.run("full", 0, "stratified", epochs=epochs, outer=True) as tick:
            for e in range(1, epochs + 1):
                tick(e, rec(e))
    lines = [line for line in captured.get().splitlines() if line.strip()]
    assert [line.split(" epoch ")[1].split()[0] for line in lines] == [f"{LOG_EVERY}/{epochs}", f"{epochs}/{epochs}"]
    assert lines[0].startswith("full seed 0 stratified epoch") and f"{VAL_PREFIX}fused 0.5000" in lines[0]


def test_epoch_line():
    assert epoch_line(rec(1)) == "loss 1.500 ce 1.250 val 50%"
    assert epoch_line({"total": 2.0, "ce": 1.0}) == "loss 2.000 ce 1.000"
