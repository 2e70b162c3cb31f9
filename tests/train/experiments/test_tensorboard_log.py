"""--tensorboard: the tags of an epoch record, event files read back, and the refusal when tensorboard is absent."""

from __future__ import annotations

import sys

import pytest

from train.experiments.experiment import Experiment, run_experiment
from train.experiments.monitor import VAL_PREFIX
from train.experiments.tensorboard_log import INSTALL, RunWriter, TensorBoardMissing, scalars, summary_writer_class

RECORD = {"epoch": 2, "lr": 5e-4, "ce": 1.0, "total": 1.5, "align": 0.25, VAL_PREFIX + "fused": 0.5}


def test_scalars_of_a_record():
    assert scalars(RECORD) == {"loss/total": 1.5, "loss/ce": 1.0, "loss/align": 0.25,
                               "val_accuracy/fused": 0.5, "lr": 5e-4}


@pytest.fixture
def no_tensorboard(monkeypatch):
    """The tensorboard package as if not installed (None in sys.modules makes its import fail)."""
    for name in ("tensorboard", "torch.utils.tensorboard"):
        monkeypatch.setitem(sys.modules, name, None)


def test_missing_tensorboard_says_what_to_install(no_tensorboard):
    with pytest.raises(TensorBoardMissing, match="pip install 'fgm\\[tensorboard\\]'"):
        summary_writer_class()
    assert INSTALL == "pip install 'fgm[tensorboard]'"


def test_missing_tensorboard_is_refused_before_the_store_is_read(no_tensorboard, tmp_path):
    exp = Experiment(store=str(tmp_path / "no-such-store"), out=tmp_path / "run", tensorboard=tmp_path / "tb")
    with pytest.raises(TensorBoardMissing):  # not the StoreError that reading the store would raise
        run_experiment(exp)
    assert not (tmp_path / "run").exists() and not (tmp_path / "tb").exists()


def test_event_file_reads_back(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    writer = RunWriter(tmp_path, "full", 1, "fold0")
    assert not (tmp_path / "full").exists()  # nothing before the first epoch
    for epoch in (1, 2):
        writer.log({**RECORD, "epoch": epoch, "total": 1.5 / epoch})
    writer.close()
    events = EventAccumulator(str(tmp_path / "full" / "seed1" / "fold0")).Reload()
    assert set(events.Tags()["scalars"]) == set(scalars(RECORD))
    total = events.Scalars("loss/total")
    assert [(e.step, e.value) for e in total] == [(1, 1.5), (2, 0.75)]
    assert events.Scalars("val_accuracy/fused")[0].value == 0.5
