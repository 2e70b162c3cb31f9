"""How an experiment's training runs are watched: the live display, TensorBoard events, validation accuracy per epoch.

None of it changes a result: the display and the event files only read epoch records, and the
validation monitor follows the rule in train/experiments/monitor.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from train.experiments.monitor import val_accuracy_monitor
from train.experiments.progress import TrainProgress
from train.experiments.tensorboard_log import RunWriter, summary_writer_class
from train.fitting.data import FeatureSet
from train.fitting.splits import Fold

if TYPE_CHECKING:
    from train.experiments.experiment import Experiment


@dataclass
class Watch:
    """The experiment's display (entered by `watching`), its TensorBoard folder or None, and whether to score val."""

    progress: TrainProgress
    tensorboard: Path | None = None
    val_curves: bool = True

    @contextmanager
    def run(self, variant: str, seed: int, fold: str, epochs: int, outer: bool) -> Iterator[Callable[[int, dict], None]]:
        """One training run: yields on_epoch(epoch, record) for Trainer.fit, which shows and logs the record."""
        writer = RunWriter(self.tensorboard, variant, seed, fold) if self.tensorboard else None
        with self.progress.run(variant, seed, fold, epochs, outer) as show:
            def on_epoch(epoch: int, record: dict) -> None:
                show(epoch, record)
                if writer is not None:
                    writer.log(record)

            try:
                yield on_epoch
            finally:
                if writer is not None:
                    writer.close()

    def monitor(self, fs: FeatureSet, fold: Fold, device: torch.device, keep: list[int] | None):
        """The Trainer monitor for the model trained on the whole fold, or None when val curves are off."""
        return val_accuracy_monitor(fs, fold, device, keep) if self.val_curves else None


@contextmanager
def watching(exp: Experiment, n_variants: int) -> Iterator[Watch]:
    """The Watch of `exp` with its display live; refuses --tensorboard without tensorboard before any training."""
    if exp.tensorboard is not None:
        summary_writer_class()
    with TrainProgress(n_variants, exp.quiet) as progress:
        yield Watch(progress, exp.tensorboard, exp.val_curves)
