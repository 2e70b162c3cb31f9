"""`fgm-train --tensorboard DIR`: each training run's epoch records as TensorBoard scalars, one run folder each.

Run folders are DIR/<variant>/seed<s>/<fold> (an inner fold of the head blend: <fold>-inner<i>).
Tags: loss/<term> (the weighted total and each term), val_accuracy/<head> (monitor.py) and lr, at
step = epoch. Only the epochs trained by this process are logged: a resumed run's earlier epochs
were logged by the process that trained them, and a finished one logs nothing.
"""

from __future__ import annotations

from pathlib import Path

from train.experiments.monitor import head_of, loss_keys, val_keys

INSTALL = "pip install 'fgm[tensorboard]'"


class TensorBoardMissing(RuntimeError):
    """--tensorboard was asked for and the tensorboard package is not installed."""


def summary_writer_class() -> type:
    """torch's SummaryWriter; TensorBoardMissing, saying what to install, when tensorboard is absent."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise TensorBoardMissing(f"--tensorboard needs the optional tensorboard package, which is not installed: "
                                 f"{INSTALL} (or leave out --tensorboard)") from e
    return SummaryWriter


def scalars(record: dict) -> dict[str, float]:
    """One epoch record -> {tag: value} (the module's tags)."""
    tags = {f"loss/{k}": record[k] for k in loss_keys([record])}
    tags.update({f"val_accuracy/{head_of(k)}": record[k] for k in val_keys([record])})
    if "lr" in record:
        tags["lr"] = record["lr"]
    return tags


class RunWriter:
    """The event file of one training run, opened at its first epoch (a finished run leaves no empty folder)."""

    def __init__(self, root: Path, variant: str, seed: int, fold: str):
        self.folder = Path(root) / variant / f"seed{seed}" / fold
        self.writer = None

    def log(self, record: dict) -> None:
        if self.writer is None:
            self.writer = summary_writer_class()(log_dir=str(self.folder))
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, float(value), global_step=int(record["epoch"]))
        self.writer.flush()  # a long run is watched while it trains

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
