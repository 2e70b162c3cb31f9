"""Non-neural baselines over the same store: fitted on a fold's training videos, logits (n_val, C) on its validation.

`BASELINES = {kind: class}`; `fit_predict(kind, fs, fold, cfg)` fits one and returns the validation
logits and the fitted baseline, so every variant, trained or not, goes through the same metrics.
Costs (`baseline_costs`) use the keys of `train.experiments.costs.head_costs`:
- params: what was fitted (0 for zero-shot: the class texts are the store's CLIP text embeddings);
- GFLOPs per video: the matrix products only (C x D dot products), the way FlopCounterMode counts
  the neural heads; the O(T*D) normalisation and time mean are not counted, for either;
- inference ms per video at batch 1, on the features already in memory (extraction is apart).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from fgm_common.store import CLIP
from train.parts.classifier import zero_shot_logits
from train.parts.probe import ProbeHead
from train.fitting.data import FeatureSet
from train.fitting.splits import Fold

if TYPE_CHECKING:  # the trainer imports the model; baselines need only its config's seed
    from train.fitting.config import TrainConfig


class ZeroShot:
    """CLIP zero-shot: mean unit frame embedding vs the class texts, scale 100 (classifier.zero_shot_logits)."""

    trainable_params = 0

    def fit(self, fs: FeatureSet, idx: np.ndarray, cfg: TrainConfig) -> ZeroShot:
        self.class_text = fs.class_text  # (C, D): nothing is learned
        return self

    def predict(self, fs: FeatureSet, idx: np.ndarray) -> np.ndarray:
        return zero_shot_logits(fs.tensors[CLIP][idx].float(), self.class_text).numpy()  # (N, C)

    def gflops_per_video(self, fs: FeatureSet) -> float:
        c, d = self.class_text.shape
        return 2 * c * d / 1e9


class LinearProbe:
    """CLIP's linear probe alone: train.parts.probe.ProbeHead, logistic regression on standardised pooled frames."""

    def fit(self, fs: FeatureSet, idx: np.ndarray, cfg: TrainConfig) -> LinearProbe:
        frames = fs.tensors[CLIP][torch.as_tensor(idx)]  # (Ntr, T, D)
        self.probe = ProbeHead(frames.shape[-1], len(fs.classes))
        self.probe.fit(frames, torch.as_tensor(fs.labels[idx]))
        return self

    @property
    def trainable_params(self) -> int:
        return int(self.probe.weight.numel() + self.probe.bias.numel())

    @torch.no_grad()
    def predict(self, fs: FeatureSet, idx: np.ndarray) -> np.ndarray:
        return self.probe(fs.tensors[CLIP][torch.as_tensor(idx)]).numpy()  # (N, C)

    def gflops_per_video(self, fs: FeatureSet) -> float:
        return 2 * self.probe.weight.numel() / 1e9


BASELINES = {"zero_shot": ZeroShot, "linear_probe": LinearProbe}


def fit_predict(kind: str, fs: FeatureSet, fold: Fold, cfg: TrainConfig):
    """Fit baseline `kind` on fold.train -> (validation logits (n_val, C), fitted baseline, fit seconds)."""
    if kind not in BASELINES:
        raise ValueError(f"unknown baseline {kind!r}; choose one of {sorted(BASELINES)}")
    t0 = time.perf_counter()
    fitted = BASELINES[kind]().fit(fs, fold.train, cfg)
    seconds = time.perf_counter() - t0
    return fitted.predict(fs, fold.val), fitted, seconds


def baseline_costs(fitted, fs: FeatureSet, idx: np.ndarray, max_videos: int = 30) -> dict:
    """Cost figures of a fitted baseline, keyed like train.experiments.costs.head_costs (see the module docstring)."""
    fitted.predict(fs, idx[:1])  # warm-up
    times = []
    for i in idx[:max_videos]:
        t0 = time.perf_counter()
        fitted.predict(fs, np.array([i]))
        times.append(time.perf_counter() - t0)
    params = fitted.trainable_params / 1e6
    return {"head_params_trainable_M": params, "head_params_total_M": params,
            "head_gflops_per_video": fitted.gflops_per_video(fs), "infer_ms_head": 1000 * float(np.mean(times))}
