"""TrainConfig: how one model is fitted (optimiser, schedule, sizes); light to import, so commands read its defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """The paper's recipe by default: Adam, lr 1e-3, cosine annealing, 100 epochs."""

    variant: str = "full"
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    n_frames: int = 0  # 0 = the store's frame count
    hidden: int = 256
    motion_dim: int = 256
    # CLIP adapters of the full-model runs: adapters inside the last CLIP block over cached tokens
    # (when the store has tokens) and learnable text context. Each costs more than the rest of a
    # training step on a CPU (docs/method.md has the measurement); off, variants fall back to the
    # adapter on frame embeddings and fixed class texts.
    clip_adapters: bool = True

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
