"""Ablations and baselines by name: each registered function returns what differs from the full model.

`@register_variant` follows timm's `@register_model`: `VARIANTS["no_motion"]()` -> Variant. Every
variant reads the same feature store; none decodes a video. `kind` says how a variant is fitted:
"model" (an FGMCLIP trained by the Trainer) or a non-neural baseline of `train.experiments.baselines.BASELINES`.
`SWEEPS` names the variant lists `fgm-train --sweep` runs.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from train.fitting.variant import Variant
from train.parts.model_config import PAPER_FUSION  # single-stream baselines have one head: a stream head would repeat it


VARIANTS: dict[str, Callable[[], Variant]] = {}

# The `stream_dropout` variant's rate: per training video, the chance each stream is hidden from the fusion.
STREAM_DROPOUT = 0.25


def register_variant(fn: Callable[[], Variant]) -> Callable[[], Variant]:
    VARIANTS[fn.__name__] = fn
    return fn


def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose one of {sorted(VARIANTS)}")
    return VARIANTS[name]()


def model_variants() -> list[str]:
    """Names of the variants that are FGMCLIP models (trained by the Trainer), in registration order."""
    return [name for name, fn in VARIANTS.items() if fn().kind == "model"]


# Baselines train with cross-entropy only: the prior losses are FGM-CLIP's own contribution.
NO_PRIORS = {"w_align": 0.0, "w_motion": 0.0, "w_context": 0.0, "w_cluster": 0.0}


@register_variant
def full() -> Variant:
    return Variant("full", description="FGM-CLIP: flow motion encoder + decoder, DTW aligner, MVSM, context, all "
                                       "priors; stream heads, visual probe, head blend from held-out training videos")


@register_variant
def paper() -> Variant:
    return Variant("paper", dict(PAPER_FUSION),
                   description="FGM-CLIP trained as the paper writes it: the fused head alone, no stream heads, "
                               "no stream dropout, no blend")


@register_variant
def no_stream_heads() -> Variant:
    return Variant("no_stream_heads", {"stream_heads": False, "w_stream": 0.0, "blend": "fused", "isolate_streams": False,
                                       "visual_probe": False},
                   description="fusion ablation: no per-stream heads and no probe (so no blend)")


@register_variant
def stream_dropout() -> Variant:
    return Variant("stream_dropout", {"stream_dropout": STREAM_DROPOUT},
                   description=f"fusion variant: the fusion sees one stream hidden for {STREAM_DROPOUT:.0%} of the "
                               "training videos each (full's training before it was measured to cost the fused head)")


@register_variant
def joint_encoders() -> Variant:
    return Variant("joint_encoders", {"isolate_streams": False},
                   description="fusion ablation: the fused head and the priors train the stream encoders too")


@register_variant
def raw_visual() -> Variant:
    return Variant("raw_visual", {"standardize_visual": False},
                   description="fusion ablation: visual features reach fusion and head unstandardised")


@register_variant
def fused_head_only() -> Variant:
    return Variant("fused_head_only", {"blend": "fused"},
                   description="fusion ablation: stream heads trained, but the fused head alone predicts")


@register_variant
def stacked_blend() -> Variant:
    return Variant("stacked_blend", {"blend": "stack"},
                   description="fusion variant: a logistic-regression stacker over all heads' log-probabilities "
                               "where it beats the scalar blend on held-out training videos")


@register_variant
def no_visual_probe() -> Variant:
    return Variant("no_visual_probe", {"visual_probe": False},
                   description="fusion ablation: no linear probe on the frozen visual features in the blend")


@register_variant
def interp_aligner() -> Variant:
    return Variant("interp_aligner", {"aligner": "interp"}, description="time interpolation instead of DTW alignment")


@register_variant
def no_decoder() -> Variant:
    return Variant("no_decoder", {"use_motion_decoder": False}, description="no motion decoder (Figure 1b)")


@register_variant
def no_context() -> Variant:
    return Variant("no_context", {"use_context": False},
                   description="no scene context: neither its features in the fusion nor its prior")


@register_variant
def no_motion() -> Variant:
    return Variant("no_motion", {"motion_encoder": "visual_tcn"}, streams=("visual",),
                   description="paper ablation: motion encoder replaced by a TCN over the visual features")


@register_variant
def no_fusion() -> Variant:
    return Variant("no_fusion", {"fusion": "concat"}, description="paper ablation: MVSM replaced by concatenation")


@register_variant
def attention_aligner() -> Variant:
    return Variant("attention_aligner", {"aligner": "attention"}, description="attention instead of DTW alignment")


@register_variant
def no_clip() -> Variant:
    # scene texts live in CLIP space, so no context; no CLIP tokens or text context to adapt
    return Variant("no_clip", {"visual_key": "resnet50", "use_context": False}, token_adapters=False, prompt_ctx=0,
                   backbone="resnet50",
                   description="paper ablation: ResNet-50 frame features (store array 'resnet50') instead of CLIP; "
                               "no context; text classifier still in CLIP text space")


@register_variant
def no_priors() -> Variant:
    return Variant("no_priors", dict(NO_PRIORS), description="cross-entropy only")


@register_variant
def no_align_loss() -> Variant:
    return Variant("no_align_loss", {"w_align": 0.0}, description="prior off: visual-motion alignment loss (Eq. 2-3)")


@register_variant
def no_motion_prior() -> Variant:
    return Variant("no_motion_prior", {"w_motion": 0.0}, description="prior off: class-mean motion loss (Eq. 11)")


@register_variant
def no_context_prior() -> Variant:
    return Variant("no_context_prior", {"w_context": 0.0},
                   description="prior off: scene-context KL (Eq. 12); context features still fused")


@register_variant
def no_cluster_prior() -> Variant:
    return Variant("no_cluster_prior", {"w_cluster": 0.0}, description="prior off: cluster contrast (Eq. 13-14)")


@register_variant
def no_adapter() -> Variant:
    return Variant("no_adapter", {"use_adapter": False}, token_adapters=False, prompt_ctx=0,
                   description="frozen CLIP features, no adapters, fixed class texts")


@register_variant
def token_interaction() -> Variant:
    return Variant("token_interaction", {"classifier": "token_interaction"}, prompt_ctx=0,
                   description="weighted token-wise interaction of class-sentence tokens and fused frames, "
                               "as in Zhou et al.'s adaptive-weight cross-modal training (Connection Science 2024)")


@register_variant
def linear_head() -> Variant:
    return Variant("linear_head", {"classifier": "linear"}, prompt_ctx=0, description="linear head instead of text classifier")


# ---- baselines over the same store --------------------------------------------------------------
@register_variant
def zero_shot() -> Variant:
    return Variant("zero_shot", token_adapters=False, prompt_ctx=0, kind="zero_shot", streams=("visual",),
                   description="baseline: CLIP zero-shot, mean frame embedding vs class texts, no training")


@register_variant
def linear_probe() -> Variant:
    return Variant("linear_probe", token_adapters=False, prompt_ctx=0, kind="linear_probe", streams=("visual",),
                   description="baseline: logistic regression on time-pooled CLIP features, standardised on the "
                               "training fold")


@register_variant
def temporal_transformer() -> Variant:
    return Variant("temporal_transformer",
                   {"motion_encoder": "frame_transformer", "use_motion_decoder": False, "aligner": "interp",
                    "fusion": "motion_only", "use_context": False, "use_adapter": False, **NO_PRIORS, **PAPER_FUSION},
                   token_adapters=False, prompt_ctx=0, streams=("visual",),
                   description="baseline (ActionCLIP-style): transformer over CLIP frames, text classifier; no flow")


@register_variant
def flow_only() -> Variant:
    return Variant("flow_only",
                   {"use_motion_decoder": False, "aligner": "interp", "fusion": "motion_only", "use_context": False,
                    "use_adapter": False, **NO_PRIORS, **PAPER_FUSION},
                   token_adapters=False, prompt_ctx=0, backbone="none", streams=("motion",),
                   description="baseline: motion only; the flow stream's encoder and text classifier, no frame "
                               "features (backbone none), no priors")


# ---- region motion tokens (issue 15): only over a store with boxes (fgm-extract --detector) ----------------
# What a region variant changes in the model it extends (train/parts/regions.py REGION_ENCODERS).
REGIONS = {"motion_encoder": "flow_regions"}


@register_variant
def full_regions() -> Variant:
    return Variant("full_regions", dict(REGIONS),
                   description="full with region motion tokens: tracked people and objects (flow inside their boxes, "
                               "pairs) seen by the global motion through a Motion Interactor; needs a store with boxes")


@register_variant
def flow_regions_only() -> Variant:
    base = flow_only()
    return dataclasses.replace(base, name="flow_regions_only", model={**base.model, **REGIONS},
                               description="flow_only with region motion tokens; needs a store with boxes")


ABLATIONS = ("full", "no_clip", "no_motion", "no_fusion", "no_align_loss", "no_motion_prior", "no_context_prior",
             "no_cluster_prior", "no_priors", "attention_aligner", "no_adapter", "linear_head")
# What the stream-aware training adds to the paper's, one part at a time, with both single streams.
FUSION_SWEEP = ("full", "paper", "no_stream_heads", "joint_encoders", "stream_dropout", "raw_visual",
                "fused_head_only", "stacked_blend", "no_visual_probe", "flow_only", "no_motion")
BASELINE_SWEEP = ("full", "zero_shot", "linear_probe", "temporal_transformer", "flow_only")
# Each region variant beside its ablation (the same model without regions), over one store with boxes.
REGION_SWEEP = ("full", "full_regions", "flow_only", "flow_regions_only")
SWEEPS: dict[str, tuple[str, ...]] = {
    "ablations": ABLATIONS,  # Table 3/4 style: the paper's three ablations and ours
    "baselines": BASELINE_SWEEP,  # Table 1/2 style: FGM-CLIP against baselines over the same store
    "fusion": FUSION_SWEEP,  # docs/results.md: does fusion add to each stream?
    "regions": REGION_SWEEP,  # issue 15: do tracked people and objects help? Needs a store with boxes
    "all": tuple(dict.fromkeys(ABLATIONS + BASELINE_SWEEP + FUSION_SWEEP)),  # no region variant: they need boxes
}


def get_sweep(name: str) -> tuple[str, ...]:
    if name not in SWEEPS:
        raise ValueError(f"unknown sweep {name!r}; choose one of {sorted(SWEEPS)}")
    return SWEEPS[name]
