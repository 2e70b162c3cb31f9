"""Variant: what one model to fit differs by from the full model; the named ones live in train.experiments.variants."""

from __future__ import annotations

from dataclasses import dataclass, field

from fgm_common.store import CLIP
from train.parts.regions import REGION_ENCODERS


@dataclass(frozen=True)
class Variant:
    """Model-config overrides plus the two parts that need the CLIP towers at train time."""

    name: str
    model: dict = field(default_factory=dict)  # ModelConfig field -> value
    token_adapters: bool = True  # adapters inside the last CLIP block, when the store has tokens
    prompt_ctx: int = 4  # learnable text context vectors (0 = off)
    description: str = ""
    kind: str = "model"  # "model", or a key of train.experiments.baselines.BASELINES (fitted without the Trainer)
    backbone: str = "clip"  # the frozen image backbone run per video at inference: clip, resnet50, none
    streams: tuple[str, ...] = ("motion", "visual")  # the input streams it reads (tables show each one's accuracy)

    @property
    def extra_arrays(self) -> tuple[str, ...]:
        """Store arrays beyond clip/flow/tokens that this variant reads, e.g. ("resnet50",)."""
        key = self.model.get("visual_key", CLIP)
        return () if key == CLIP else (key,)

    @property
    def needs_regions(self) -> bool:
        """Its motion encoder reads tracked boxes (train/parts/regions.py): only a store with boxes can train it."""
        return self.model.get("motion_encoder") in REGION_ENCODERS
