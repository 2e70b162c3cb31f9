"""Validation accuracy per epoch, recorded for the pictures only; and which keys of a history record are which.

The rule that makes recording it safe (tests/train/experiments/test_monitor.py checks it): nothing
in stage two selects by validation. Every model trains a fixed number of epochs and the last epoch
is the model (no early stopping, no epoch choice); head-blend weights and the stacker are fitted on
held-out videos of the training fold (train/fitting/blend.py); no setting is tuned on the
validation fold. The monitor reads the model after each epoch in eval mode, under no_grad, with
every RNG forked (Trainer.monitored), and its figures go into the epoch's record, which only the
curves, TensorBoard and the progress line read.

Only heads trained by epochs are scored: the fused head (the `ce` term) and the stream heads. The
probe is fitted once after the last epoch, and the blended prediction needs it, so the prediction's
accuracy is the report's figure, not a curve.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from train.experiments.metrics import accuracy, among
from train.fitting.data import FeatureSet
from train.fitting.losses import LOSS_TERMS
from train.fitting.splits import Fold
from train.fitting.trainer import predict_heads
from train.parts.heads import STREAM_HEADS
from train.parts.model import FGMCLIP

# a history record: "epoch", "lr", "total" and each LOSS_TERMS term (the Trainer's), then VAL_PREFIX + head
VAL_PREFIX = "val_acc_"
EPOCH_HEADS = ("fused", *STREAM_HEADS)  # the heads that change from epoch to epoch


def loss_keys(records: list[dict]) -> list[str]:
    """The loss terms these records hold, the weighted total first, in LOSS_TERMS order."""
    return [k for k in ("total", *LOSS_TERMS) if any(k in r for r in records)]


def val_keys(records: list[dict]) -> list[str]:
    """The validation-accuracy keys these records hold, in EPOCH_HEADS order."""
    return [VAL_PREFIX + h for h in EPOCH_HEADS if any(VAL_PREFIX + h in r for r in records)]


def head_of(key: str) -> str:
    """'val_acc_fused' -> 'fused'."""
    return key.removeprefix(VAL_PREFIX)


def val_accuracy_monitor(fs: FeatureSet, fold: Fold, device: torch.device,
                         keep: list[int] | None) -> Callable[[FGMCLIP], dict[str, float]]:
    """A Trainer monitor: model -> {VAL_PREFIX + head: accuracy on fold.val} for the EPOCH_HEADS it has.

    `keep`: the classes validation chooses among (Experiment.validated; zero-shot: the held-out ones).
    """
    labels = np.asarray(fs.labels)[fold.val]  # (n_val,)

    def monitor(model: FGMCLIP) -> dict[str, float]:
        heads = predict_heads(model, fs, fold.val, device)  # {name: (n_val, C)}
        return {VAL_PREFIX + h: accuracy(*among(labels, heads[h], keep)) for h in EPOCH_HEADS if h in heads}

    return monitor
