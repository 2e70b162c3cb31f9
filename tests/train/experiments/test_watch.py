"""Watch: one training run's records reach the display and its own TensorBoard folder; val scoring only when asked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from train.experiments.experiment import Experiment
from train.experiments.progress import TrainProgress
from train.experiments.watch import Watch, watching
from train.fitting.splits import Fold

RECORD = {"epoch": 1, "lr": 1e-3, "total": 1.5, "ce": 1.0}


def test_each_run_its_own_tensorboard_folder(tmp_path):
    pytest.importorskip("tensorboard")
    with TrainProgress(n_variants=1, quiet=True) as progress:
        watch = Watch(progress, tensorboard=tmp_path)
        for fold in ("fold0-inner0", "fold0"):
            with watch.run("full", 3, fold, epochs=1, outer=fold == "fold0") as on_epoch:
                on_epoch(1, RECORD)
        assert progress.sweep_bar.tasks[0].completed == 1.0  # the whole-fold model's last epoch ends the fold
    runs = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("*/*/*"))
    assert runs == ["full/seed3/fold0", "full/seed3/fold0-inner0"]
    assert all(any(p.name.startswith("events.out.tfevents") for p in (tmp_path / r).iterdir()) for r in runs)


def test_without_tensorboard_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with watching(Experiment(store="unused", quiet=True), n_variants=1) as watch:
        with watch.run("full", 0, "fold0", epochs=1, outer=True) as on_epoch:
            on_epoch(1, RECORD)
    assert not list(tmp_path.iterdir())


def test_val_monitor_only_when_asked(fs):
    fold = Fold("f", np.arange(3), np.arange(3, len(fs)))
    with TrainProgress(n_variants=1, quiet=True) as progress:
        assert Watch(progress, val_curves=False).monitor(fs, fold, torch.device("cpu"), None) is None
        assert callable(Watch(progress, val_curves=True).monitor(fs, fold, torch.device("cpu"), None))
