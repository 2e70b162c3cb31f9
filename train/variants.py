"""Ablation variants by name: each registered function returns what differs from the full model.

`@register_variant` follows timm's `@register_model`: `VARIANTS["no_motion"]()` -> Variant. Every
variant reads the same feature store; none decodes a video.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Variant:
    """Model-config overrides plus the two parts that need the CLIP towers at train time."""

    name: str
    model: dict = field(default_factory=dict)  # ModelConfig field -> value
    token_adapters: bool = True  # adapters inside the last CLIP block, when the store has tokens
    prompt_ctx: int = 4  # learnable text context vectors (0 = off)
    description: str = ""


VARIANTS: dict[str, Callable[[], Variant]] = {}


def register_variant(fn: Callable[[], Variant]) -> Callable[[], Variant]:
    VARIANTS[fn.__name__] = fn
    return fn


def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose one of {sorted(VARIANTS)}")
    return VARIANTS[name]()


@register_variant
def full() -> Variant:
    return Variant("full", description="FGM-CLIP: flow motion encoder + decoder, DTW aligner, MVSM, context, all priors")


@register_variant
def no_motion() -> Variant:
    return Variant("no_motion", {"motion_encoder": "visual_tcn"},
                   description="paper ablation: motion encoder replaced by a TCN over the visual features")


@register_variant
def no_fusion() -> Variant:
    return Variant("no_fusion", {"fusion": "concat"}, description="paper ablation: MVSM replaced by concatenation")


@register_variant
def attention_aligner() -> Variant:
    return Variant("attention_aligner", {"aligner": "attention"}, description="attention instead of DTW alignment")


@register_variant
def no_priors() -> Variant:
    return Variant("no_priors", {"w_align": 0.0, "w_motion": 0.0, "w_context": 0.0, "w_cluster": 0.0},
                   description="cross-entropy only")


@register_variant
def no_adapter() -> Variant:
    return Variant("no_adapter", {"use_adapter": False}, token_adapters=False, prompt_ctx=0,
                   description="frozen CLIP features, no adapters, fixed class texts")


@register_variant
def linear_head() -> Variant:
    return Variant("linear_head", {"classifier": "linear"}, prompt_ctx=0, description="linear head instead of text classifier")
