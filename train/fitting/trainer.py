"""Train one variant on one fold over in-memory features; checkpoint every epoch; resume exactly."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from sklearn.cluster import KMeans

from fgm_common.options import resolve_device
from train.fitting.config import TrainConfig
from train.fitting.blend import BLENDS
from train.fitting.checkpoint import classifier_inputs, load_checkpoint, save_checkpoint
from train.fitting.data import FeatureSet
from train.fitting.losses import PriorState, compute_losses
from train.parts.model import FGMCLIP, build_model
from train.parts.model_config import ModelConfig
from train.fitting.splits import Fold
from train.fitting.variant import Variant


def model_config(fs: FeatureSet, cfg: TrainConfig, variant: Variant) -> ModelConfig:
    """ModelConfig whose sizes come from the loaded store, with the variant's overrides."""
    mcfg = ModelConfig(**fs.dims, n_classes=len(fs.classes), hidden=cfg.hidden, motion_dim=cfg.motion_dim,
                       **variant.model)
    if mcfg.blend not in BLENDS:
        raise ValueError(f"blend={mcfg.blend!r} is not one of {sorted(BLENDS)}")
    return mcfg


@dataclass
class FoldRun:
    """A trained model for one fold and what it took."""

    model: FGMCLIP
    state: PriorState
    history: list[dict]
    train_seconds: float
    data_wait_share: float
    checkpoint: Path


class Trainer:
    """Fits `model` on `fold.train` of `fs`; never reads `fold.val` itself (evaluation is separate).

    A `monitor` given to `fit` may score the model after each epoch (fgm-train's validation curves);
    its figures go into the epoch's history record and nothing here reads them back: training runs a
    fixed cfg.epochs, the last epoch is the model, and head-blend weights come from inner folds of
    fold.train (train/fitting/blend.py). The monitor runs with every RNG forked and the model's mode
    restored, so a run with one trains exactly as a run without.
    """

    def __init__(self, fs: FeatureSet, fold: Fold, cfg: TrainConfig, model: FGMCLIP, checkpoint: Path,
                 extra: dict | None = None, train_classes: list[int] | None = None):
        self.fs, self.fold, self.cfg = fs, fold, cfg
        # Zero-shot protocol: the loss only ever sees the training classes' logits.
        self.class_mask = None if train_classes is None else torch.isin(
            torch.arange(len(fs.classes)), torch.as_tensor(train_classes))
        self.device = torch.device(resolve_device(cfg.device))
        self.model = model.to(self.device)
        self.state = PriorState.from_config(model.cfg).to(self.device)
        params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=max(cfg.epochs, 1))
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.checkpoint = checkpoint
        self.extra = extra or {}  # travels in the checkpoint: classes, texts, store config, variant
        self.epoch = 0
        self.history: list[dict] = []
        self.train_seconds = 0.0
        # h of every training video from its latest training step, for the per-epoch k-means (Eq. 13)
        self.row = {int(i): r for r, i in enumerate(fold.train)}
        self.h_bank = torch.zeros(len(fold.train), model.cfg.hidden)  # (Ntr, H)
        self.h_seen = torch.zeros(len(fold.train), dtype=torch.bool)

    # ---- checkpointing ---------------------------------------------------------------------
    def save(self, done: bool = False) -> None:
        """Atomic write (train.fitting.checkpoint): a kill during save leaves the previous checkpoint intact."""
        ckpt = {
            "done": done, "epoch": self.epoch,
            "model_config": self.model.cfg.to_dict(), "train_config": self.cfg.to_dict(),
            "fold": {"name": self.fold.name, "train": self.fold.train.tolist(), "val": self.fold.val.tolist()},
            "model": self.model.checkpoint_state(), "prior": self.state.state_dict(),
            "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "shuffle": self.gen.get_state()},
            "history": json.loads(json.dumps(self.history)), "train_seconds": self.train_seconds,
            "h_bank": self.h_bank, "h_seen": self.h_seen,
            **self.extra,
        }
        save_checkpoint(ckpt, self.checkpoint)

    def load(self) -> bool:
        """Restore everything from the checkpoint if one exists; True when it says training finished."""
        if not self.checkpoint.exists():
            return False
        ckpt = load_checkpoint(self.checkpoint, self.device, required=("model_config", "train_config", "fold", "model"))
        if ckpt["train_config"] != self.cfg.to_dict() or ckpt["model_config"] != self.model.cfg.to_dict():
            raise ValueError(f"{self.checkpoint} was made with other settings; use a new --out or drop --resume")
        if ckpt["fold"]["train"] != self.fold.train.tolist():
            raise ValueError(f"{self.checkpoint} was trained on another split of the data")
        self.model.load_checkpoint_state(ckpt["model"])
        self.state.load_state_dict(ckpt["prior"])
        self.opt.load_state_dict(ckpt["optimizer"])
        self.sched.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        self.gen.set_state(ckpt["rng"]["shuffle"].cpu())
        self.epoch, self.history, self.train_seconds = ckpt["epoch"], ckpt["history"], ckpt["train_seconds"]
        self.h_bank, self.h_seen = ckpt["h_bank"].cpu(), ckpt["h_seen"].cpu()
        return bool(ckpt["done"])

    # ---- training --------------------------------------------------------------------------
    def refresh_clusters(self) -> None:
        """Eq. 13: k-means over the training videos' h, once per epoch.

        The h are those of the previous epoch's own training steps (kept in `h_bank`), so clustering
        costs no extra pass over the data; before the first epoch has run there are no clusters and
        the cluster loss is 0. Training videos only.
        """
        cfg = self.model.cfg
        if cfg.w_cluster == 0 or not bool(self.h_seen.all()):
            return
        h = torch.nn.functional.normalize(self.h_bank, dim=-1).numpy()  # (Ntr, H)
        k = min(cfg.n_clusters, len(h))
        km = KMeans(n_clusters=k, n_init=3, random_state=self.cfg.seed + self.epoch).fit(h)
        self.state.set_clusters({int(i): int(c) for i, c in zip(self.fold.train, km.labels_)})

    def fit_probe(self) -> None:
        """Fit the model's visual probe (train/parts/probe.py) on the training videos' frozen features, once trained.

        Not under the zero-shot protocol: a probe scores only the classes it was fitted on, and there
        the validation classes are the ones training never saw.
        """
        probe = self.model.probe
        if probe is None or self.class_mask is not None:
            return
        frames = self.fs.tensors[self.model.cfg.visual_key][torch.as_tensor(self.fold.train)]  # (Ntr, T, Dv)
        probe.fit(frames.to(self.device), torch.as_tensor(self.fs.labels[self.fold.train]).to(self.device))

    def monitored(self, monitor: Callable[[FGMCLIP], dict[str, float]]) -> dict[str, float]:
        """monitor(model)'s figures, leaving the model's mode and every RNG as they were (see the class)."""
        cuda = [] if self.device.type != "cuda" else [
            torch.cuda.current_device() if self.device.index is None else self.device.index]
        was_training = self.model.training
        with torch.random.fork_rng(devices=cuda):
            figures = monitor(self.model)
        self.model.train(was_training)
        return figures

    def fit(self, resume: bool = False, on_epoch_end: Callable[[int, dict], None] | None = None,
            monitor: Callable[[FGMCLIP], dict[str, float]] | None = None) -> FoldRun:
        """Train to cfg.epochs (continuing from the checkpoint when resume), saving after every epoch.

        `monitor(model)`, when given, adds its figures to each epoch's record after the epoch's
        training time is taken (recorded, never read: see the class).
        """
        if resume and self.load():
            return FoldRun(self.model, self.state, self.history, self.train_seconds, float("nan"), self.checkpoint)
        train_idx = torch.as_tensor(self.fold.train)
        wait = step = 0.0
        while self.epoch < self.cfg.epochs:
            t0 = time.perf_counter()
            self.refresh_clusters()
            self.model.train(), self.state.train()
            sums: dict[str, float] = {}
            n_batches = 0
            order = train_idx[torch.randperm(len(train_idx), generator=self.gen)]
            for i in range(0, len(order), self.cfg.batch_size):
                t_data = time.perf_counter()
                batch = self.fs.batch(order[i : i + self.cfg.batch_size], self.device)
                t_step = time.perf_counter()
                out = self.model(batch)
                if self.class_mask is not None:
                    hide = ~self.class_mask.to(self.device)
                    out["heads"] = {k: z.masked_fill(hide, float("-inf")) for k, z in out["heads"].items()}
                    out["logits"] = out["logits"].masked_fill(hide, float("-inf"))
                losses = compute_losses(out, batch, self.state, self.model.cfg)
                self.opt.zero_grad(set_to_none=True)
                losses["total"].backward()
                self.opt.step()
                self.state.update(out, batch)
                rows = [self.row[int(i)] for i in batch["index"]]
                self.h_bank[rows] = out["h"].detach().float().cpu()
                self.h_seen[rows] = True
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                wait += t_step - t_data
                step += time.perf_counter() - t_step
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                n_batches += 1
            self.sched.step()
            self.epoch += 1
            self.train_seconds += time.perf_counter() - t0
            record = {"epoch": self.epoch, "lr": self.sched.get_last_lr()[0],
                      **{k: v / max(n_batches, 1) for k, v in sums.items()}}
            if monitor is not None:
                record.update(self.monitored(monitor))
            self.history.append(record)
            if self.epoch >= self.cfg.epochs:
                self.fit_probe()
            self.save(done=self.epoch >= self.cfg.epochs)
            if on_epoch_end:
                on_epoch_end(self.epoch, record)
        share = wait / max(wait + step, 1e-12)
        return FoldRun(self.model, self.state, self.history, self.train_seconds, share, self.checkpoint)


@torch.no_grad()
def predict_heads(model: FGMCLIP, fs: FeatureSet, idx: np.ndarray, device: torch.device,
                  batch_size: int = 64) -> dict[str, np.ndarray]:
    """Eval-mode logits (N, C) for dataset indices: "logits" (the prediction) and each head by name."""
    model.eval()
    out: dict[str, list[torch.Tensor]] = {}
    for i in range(0, len(idx), batch_size):
        res = model(fs.batch(idx[i : i + batch_size], device))
        for name, z in {"logits": res["logits"], **res["heads"]}.items():
            out.setdefault(name, []).append(z.float().cpu())
    return {name: torch.cat(zs).numpy() for name, zs in out.items()}


def predict_logits(model: FGMCLIP, fs: FeatureSet, idx: np.ndarray, device: torch.device,
                   batch_size: int = 64) -> np.ndarray:
    """Eval-mode logits (N, C) for dataset indices."""
    return predict_heads(model, fs, idx, device, batch_size)["logits"]


def new_model(fs: FeatureSet, cfg: TrainConfig, variant: Variant, clip_parts=None) -> FGMCLIP:
    """A fresh model for this fold, seeded so that every fold and resume starts identically."""
    torch.manual_seed(cfg.seed)
    mcfg = model_config(fs, cfg, variant)
    tail, prompt = clip_parts(variant, mcfg) if clip_parts else (None, None)
    return build_model(mcfg, fs.class_text, fs.scene_text, token_tail=tail, prompt_learner=prompt,
                       classifier_inputs=classifier_inputs(mcfg.classifier, clip_parts))
