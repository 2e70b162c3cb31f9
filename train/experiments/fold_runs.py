"""One variant on one fold: train an FGMCLIP (its head blend first, when it has one) or fit a baseline; validation logits back."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from fgm_common.console import console
from fgm_common.store import FeatureStore
from train.experiments.baselines import BASELINES, baseline_costs, fit_predict
from train.fitting.blend import BLENDS, Blend, BlendContext
from train.fitting.data import FeatureSet
from train.parts.heads import HEADS
from train.fitting.splits import Fold
from train.fitting.config import TrainConfig
from train.fitting.trainer import FoldRun, Trainer, model_config, new_model, predict_heads
from train.experiments.variants import Variant
from train.experiments.watch import Watch

if TYPE_CHECKING:
    from train.experiments.experiment import Experiment


@dataclass
class FoldOutcome:
    """One fold of one variant: validation logits (n_val, C) and what fitting them took."""

    logits: np.ndarray
    train_seconds: float
    data_wait_share: float  # NaN where no batches were loaded (baselines, a finished checkpoint)
    history: list[dict]
    costs: Callable[[], dict]  # cost figures (train.experiments.costs.head_costs keys), asked for the first fold only
    heads: dict[str, np.ndarray] = field(default_factory=dict)  # each head's validation logits (n_val, C)
    blend: dict[str, float] = field(default_factory=dict)  # each head's scalar blend weight
    stacked: bool = False  # the prediction came from the stacked blend, not from the scalar weights


def _fit(exp: Experiment, fs: FeatureSet, store: FeatureStore, variant: Variant, cfg: TrainConfig, fold: Fold,
         clip_parts, ckpt: Path, watch: Watch, device, blend: Blend | None = None) -> FoldRun:
    """Train (or resume) a fresh FGMCLIP on fold.train with the Trainer and its checkpoint, watched by `watch`.

    `blend` given: the model trained on the whole fold (inner-fold models have none), the one whose
    validation accuracy per epoch is recorded when the watch asks for it.
    """
    name = variant.name
    model = new_model(fs, cfg, variant, clip_parts)
    if blend is not None:
        model.blend_weights.copy_(torch.as_tensor(blend.weights, dtype=model.blend_weights.dtype))
        if blend.stack is not None:
            model.stacker.set(*(torch.as_tensor(a) for a in blend.stack))
    extra = {"classes": fs.classes, "class_text": fs.class_text, "scene_text": fs.scene_text,
             "class_sentences": fs.class_sentences, "extract_config": store.config.to_dict(),
             "clip_identity": json.loads(json.dumps(store.clip_identity)), "store_url": str(store.url),
             "variant": name, "dataset": exp.dataset}
    unseen = exp.unseen_idx(fs.classes)
    seen = [c for c in range(len(fs.classes)) if c not in unseen] if unseen else None
    trainer = Trainer(fs, fold, cfg, model, ckpt, extra, train_classes=seen)
    outer = blend is not None
    monitor = watch.monitor(fs, fold, device, exp.validated(fs.classes)) if outer else None
    with watch.run(name, cfg.seed, fold.name, cfg.epochs, outer) as on_epoch:
        return trainer.fit(resume=exp.resume, on_epoch_end=on_epoch, monitor=monitor)


def _model_fold(exp: Experiment, fs: FeatureSet, store: FeatureStore, variant: Variant, cfg: TrainConfig,
                fold: Fold, clip_parts, device, watch: Watch) -> FoldOutcome:
    """Blend weights from inner folds of fold.train (if the model blends), then train on all of fold.train.

    Checkpoints under OUT/<variant>/seed<s>/<fold>/ (the inner models' under .../inner<i>/).
    """
    ckpt_dir = exp.out / variant.name / f"seed{cfg.seed}" / fold.name
    blend_name = model_config(fs, cfg, variant).blend

    def fit_heads(inner: Fold, ckpt: Path) -> dict[str, np.ndarray]:
        run = _fit(exp, fs, store, variant, cfg, inner, clip_parts, ckpt, watch, device)
        return {k: z for k, z in predict_heads(run.model, fs, inner.val, device).items() if k != "logits"}

    blend = BLENDS[blend_name](BlendContext(fs.labels, fs.groups, fold, cfg.seed, fit_heads, ckpt_dir))
    if blend_name != "fused":
        share = blend.weights / blend.weights.sum()
        console.print(f"{variant.name} seed {cfg.seed} {fold.name}: head shares "
                      + ", ".join(f"{h} {w:.2f}" for h, w in zip(HEADS, share))
                      + f", temperature {blend.weights.sum():.2f}"
                      + (", prediction stacked" if blend.stack is not None else "")
                      + " (fitted on held-out training videos)")
    run = _fit(exp, fs, store, variant, cfg, fold, clip_parts, ckpt_dir / "checkpoint.pt", watch, device, blend=blend)
    from train.experiments.costs import head_costs

    out = predict_heads(run.model, fs, fold.val, device)
    logits = out.pop("logits")
    shares = {h: float(w) for h, w in zip(HEADS, run.model.blend_weights.tolist())}
    return FoldOutcome(logits, run.train_seconds, run.data_wait_share, run.history,
                       lambda: head_costs(run.model, fs, fold.val, device), heads=out, blend=shares,
                       stacked=run.model.stacker.fitted)


def _baseline_fold(exp: Experiment, fs: FeatureSet, store: FeatureStore, variant: Variant, cfg: TrainConfig,
                   fold: Fold, clip_parts, device, watch: Watch) -> FoldOutcome:
    """Fit a non-neural baseline on the fold (seconds: nothing to checkpoint; result.json is the resume point)."""
    logits, fitted, seconds = fit_predict(variant.kind, fs, fold, cfg)
    console.print(f"{variant.name} seed {cfg.seed} {fold.name}: {variant.kind} fitted on {len(fold.train)} videos "
                  f"in {seconds:.2f} s")
    return FoldOutcome(logits, seconds, float("nan"), [], lambda: baseline_costs(fitted, fs, fold.val))


# how each Variant.kind is fitted on one fold
FOLD_RUNNERS = {"model": _model_fold, **{kind: _baseline_fold for kind in BASELINES}}
