"""ModelConfig: the stage-two architecture and loss weights, checked against the parts' registries."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import InitVar, dataclass

from fgm_common.store import CLIP
from train.parts.align import ALIGNERS
from train.parts.classifier import CLASSIFIERS
from train.parts.fusion import FUSIONS
from train.parts.motion import MOTION_ENCODERS, TEMPORAL
from train.parts.regions import BOXES_HINT, REGION_ENCODERS
from train.parts.streams import STREAM_ENCODERS, STREAM_FUSIONS

# The attention modules over motion features (decoder, attention aligner, temporal transformer)
# all default to 4 heads; motion_dim must split evenly among them.
ATTENTION_HEADS = 4

# The parts' own registries plus the single-stream baselines' parts (train/parts/streams.py) and the
# encoders that read tracked boxes (train/parts/regions.py).
MOTION_CHOICES = {**MOTION_ENCODERS, **STREAM_ENCODERS, **REGION_ENCODERS}
FUSION_CHOICES = {**FUSIONS, **STREAM_FUSIONS}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and loss weights; the sizes come from the feature store, never constants.

    `clip_dim` is CLIP's joint image/text width: the class and scene texts live there, and so do the
    frame embeddings under `visual_key="clip"`. Another `visual_key` (e.g. "resnet50", the `no_clip`
    ablation) makes the model read that store array instead; its width `visual_dim` is taken from
    `extra_dims` ({array: width}, FeatureSet.dims) and kept, while the text classifier still projects
    h to `clip_dim`, the text space.
    """

    clip_dim: int
    flow_grid: int
    flow_hist_dim: int
    n_classes: int
    n_frames: int
    n_flow: int
    hidden: int = 256
    motion_dim: int = 256
    motion_encoder: str = "flow"  # MOTION_CHOICES
    temporal: str = "conv"  # TEMPORAL
    use_motion_decoder: bool = True
    aligner: str = "dtw"  # ALIGNERS
    fusion: str = "mvsm"  # FUSION_CHOICES
    use_context: bool = True
    classifier: str = "text"  # CLASSIFIERS
    use_adapter: bool = True
    adapter_bottleneck: int = 64
    dropout: float = 0.1
    w_align: float = 0.1
    w_motion: float = 0.1
    w_context: float = 0.05
    w_cluster: float = 0.05
    cluster_k: int = 0  # 0 = number of classes
    cluster_margin: float = 1.0
    # Stream-aware training (train/parts/heads.py, docs/design-choices.md); the `paper` variant turns it off.
    stream_heads: bool = True  # each stream's own classifier beside the fused one
    w_stream: float = 1.0  # weight of the stream heads' mean cross-entropy
    # per training video, chance the fusion sees only motion (and, again, only visual); 0 in full, as
    # each stream has its own head (docs/design-choices.md: measured to cost the fused head)
    stream_dropout: float = 0.0
    blend: str = "inner"  # how the heads make the prediction: train.fitting.blend.BLENDS (checked by fitting)
    standardize_visual: bool = True  # per-channel standardisation of v (training statistics) before fusion and head
    isolate_streams: bool = True  # stream encoders learn from their own heads only (stop-gradient from fusion)
    # a linear probe on the frozen visual features, fitted after training (train/parts/probe.py): a head
    # the blend weighs like the others (with blend="fused" it is reported, not used)
    visual_probe: bool = True
    visual_key: str = CLIP  # the store array the visual stream reads, (T, visual_dim) per video
    visual_dim: int = 0  # width of that array; 0 = clip_dim (the CLIP frame embeddings)
    # track slots per flow step (the store's detector top_k, FeatureSet.dims); kept only for a motion
    # encoder that reads them (REGION_ENCODERS), 0 otherwise, so a model's config is the same on any store
    n_regions: int = 0
    extra_dims: InitVar[dict | None] = None  # {array: width} of the extra arrays loaded; not stored

    def __post_init__(self, extra_dims: dict | None):
        if self.visual_key != CLIP and not self.visual_dim:
            if not extra_dims or self.visual_key not in extra_dims:
                raise ValueError(f"this model reads {self.visual_key!r} features, which were not loaded from the "
                                 f"store; extract them with `fgm-extract VIDEOS --out STORE --backbone "
                                 f"{self.visual_key}` and load them with load_features(extra=({self.visual_key!r},))")
            object.__setattr__(self, "visual_dim", int(extra_dims[self.visual_key]))
        if self.visual_key == CLIP and self.visual_dim not in (0, self.clip_dim):
            raise ValueError(f"visual_dim {self.visual_dim} differs from clip_dim {self.clip_dim} for CLIP features")
        choices = {"motion_encoder": MOTION_CHOICES, "temporal": TEMPORAL, "aligner": ALIGNERS,
                   "fusion": FUSION_CHOICES, "classifier": CLASSIFIERS}
        for name, registry in choices.items():
            if getattr(self, name) not in registry:
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {sorted(registry)}")
        if not self.needs_regions:
            object.__setattr__(self, "n_regions", 0)
        elif self.n_regions < 1:
            raise ValueError(f"motion_encoder={self.motion_encoder!r} reads tracked boxes, and none were loaded "
                             f"(n_regions=0): load them with load_features(..., regions=True); {BOXES_HINT}")
        sizes = ("clip_dim", "flow_grid", "flow_hist_dim", "n_classes", "n_frames", "n_flow", "hidden", "motion_dim")
        for name in sizes:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.motion_dim % ATTENTION_HEADS:
            raise ValueError(f"motion_dim must be a multiple of {ATTENTION_HEADS} (attention heads), got {self.motion_dim}")
        if self.blend != "fused" and not self.stream_heads:
            raise ValueError(f"blend={self.blend!r} weighs the stream heads against the fused one; it needs "
                             "stream_heads=True (or blend='fused')")
        if self.isolate_streams and not self.stream_heads:
            raise ValueError("isolate_streams leaves the stream encoders to their own heads; it needs stream_heads=True")
        if not 0 <= self.stream_dropout <= 0.5:
            raise ValueError(f"stream_dropout must be in [0, 0.5], got {self.stream_dropout}")
        if self.use_context and self.visual_key != CLIP:
            raise ValueError("the context prior compares frames with CLIP scene texts; it needs visual_key='clip' "
                             "(set use_context=False)")

    def to_dict(self) -> dict:
        """JSON-safe dict of every field."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Inverse of to_dict; unknown keys are an error so a newer checkpoint is never misread.

        Fields a checkpoint predates take the values that reproduce the model it was trained as.
        """
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"checkpoint config has fields this fgm does not know: {sorted(unknown)}; upgrade fgm")
        return cls(**{**PAPER_FUSION, **d})

    @property
    def n_clusters(self) -> int:
        return self.cluster_k or self.n_classes

    @property
    def visual_width(self) -> int:
        """Width of the visual features the model reads: visual_dim, or clip_dim for CLIP frames."""
        return self.visual_dim or self.clip_dim

    @property
    def needs_regions(self) -> bool:
        """The motion encoder reads the batch's tracked boxes (train/parts/regions.py REGION_KEYS)."""
        return self.motion_encoder in REGION_ENCODERS

    @property
    def uses_v_proj(self) -> bool:
        """v projected to motion space is needed by Eq. 2 and by the DTW / attention aligners' cost."""
        return self.w_align > 0 or self.aligner != "interp"


# The paper's fusion: raw visual features, the fused head alone, no stream dropout. Checkpoints
# written before stream-aware training were trained so; the `paper` and single-stream variants are too.
PAPER_FUSION = {"stream_heads": False, "w_stream": 0.0, "stream_dropout": 0.0, "blend": "fused",
                "standardize_visual": False, "isolate_streams": False, "visual_probe": False}
