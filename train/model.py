"""FGM-CLIP stage-two model: ModelConfig, FGMCLIP (batch dict -> outputs dict) and build_model."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import torch
from torch import nn

from train.adapter import EmbeddingAdapter
from train.align import ALIGNERS
from train.classifier import CLASSIFIERS
from train.context import ContextEncoder
from train.fusion import FUSIONS
from train.motion import MOTION_ENCODERS, TEMPORAL, MotionDecoder

# The attention modules over motion features (decoder, attention aligner, temporal transformer)
# all default to 4 heads; motion_dim must split evenly among them.
ATTENTION_HEADS = 4


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and loss weights; the six sizes come from the feature store, never constants."""

    clip_dim: int
    flow_grid: int
    flow_hist_dim: int
    n_classes: int
    n_frames: int
    n_flow: int
    hidden: int = 256
    motion_dim: int = 256
    motion_encoder: str = "flow"  # MOTION_ENCODERS
    temporal: str = "conv"  # TEMPORAL
    use_motion_decoder: bool = True
    aligner: str = "dtw"  # ALIGNERS
    fusion: str = "mvsm"  # FUSIONS
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

    def __post_init__(self):
        choices = {"motion_encoder": MOTION_ENCODERS, "temporal": TEMPORAL, "aligner": ALIGNERS,
                   "fusion": FUSIONS, "classifier": CLASSIFIERS}
        for name, registry in choices.items():
            if getattr(self, name) not in registry:
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {sorted(registry)}")
        sizes = ("clip_dim", "flow_grid", "flow_hist_dim", "n_classes", "n_frames", "n_flow", "hidden", "motion_dim")
        for name in sizes:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.motion_dim % ATTENTION_HEADS:
            raise ValueError(f"motion_dim must be a multiple of {ATTENTION_HEADS} (attention heads), got {self.motion_dim}")

    def to_dict(self) -> dict:
        """JSON-safe dict of every field."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Inverse of to_dict; unknown keys are an error so a newer checkpoint is never misread."""
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"checkpoint config has fields this fgm does not know: {sorted(unknown)}; upgrade fgm")
        return cls(**d)

    @property
    def n_clusters(self) -> int:
        return self.cluster_k or self.n_classes


class FGMCLIP(nn.Module):
    """Frozen-CLIP features + flow -> class logits: batch dict -> dict of tensors (see forward).

    Optional `token_tail` (TokenTailWithAdapters) adapts cached last-block tokens instead of the
    embedding adapter; optional `prompt_learner` (TextPromptLearner holding its token ids and
    class_of) supplies the class embeddings of the text classifier at every call.
    """

    def __init__(self, cfg: ModelConfig, class_text: torch.Tensor, scene_text: torch.Tensor | None,
                 token_tail: nn.Module | None = None, prompt_learner: nn.Module | None = None):
        super().__init__()
        d, dm, hid = cfg.clip_dim, cfg.motion_dim, cfg.hidden
        if tuple(class_text.shape) != (cfg.n_classes, d):
            raise ValueError(f"class_text must be (n_classes={cfg.n_classes}, clip_dim={d}), "
                             f"got {tuple(class_text.shape)}")
        if cfg.use_context and (scene_text is None or scene_text.shape[1] != d):
            raise ValueError(f"use_context needs scene_text of shape (K, clip_dim={d})")
        self.cfg = cfg
        # With a token tail the adapters live inside it; the embedding adapter would never run.
        use_embedding_adapter = cfg.use_adapter and token_tail is None
        self.adapter = EmbeddingAdapter(d, cfg.adapter_bottleneck) if use_embedding_adapter else nn.Identity()
        self.token_tail = token_tail
        max_len = max(cfg.n_frames, cfg.n_flow)
        self.motion = MOTION_ENCODERS[cfg.motion_encoder](d, cfg.flow_hist_dim, dm, cfg.temporal, max_len, cfg.dropout)
        self.decoder = MotionDecoder(dm, d, dropout=cfg.dropout) if cfg.use_motion_decoder else None
        self.v_proj = nn.Linear(d, dm)  # visual into motion space: Eq. 2 target, and the DTW cost
        self.aligner = ALIGNERS[cfg.aligner](dm, d, proj=self.v_proj)
        self.context = ContextEncoder(scene_text, hid, class_text) if cfg.use_context else None
        self.fusion = FUSIONS[cfg.fusion](d, dm, hid if cfg.use_context else 0, hid, cfg.dropout)
        self.classifier = CLASSIFIERS[cfg.classifier](hid, class_text)
        self.prompt_learner = prompt_learner

    def visual(self, batch: dict) -> torch.Tensor:
        """Adapted per-frame visual features v' (B, T, D)."""
        clip = batch["clip"]  # (B, T, D)
        if self.token_tail is None:
            return self.adapter(clip)
        if "tokens" not in batch:
            raise KeyError("this model adapts patch tokens; build the store with tokens (extract --tokens)")
        tokens = batch["tokens"]  # (B, T, L, W)
        b, t = tokens.shape[:2]
        return self.token_tail(tokens.flatten(0, 1)).view(b, t, -1)  # (B, T, D)

    def forward(self, batch: dict) -> dict:
        """batch: clip (B, T, D), flow (B, Tf, 2, G, G), flow_hist (B, Tf, Hh), [tokens] -> outputs.

        Returns logits (B, C), v (B, T, D), m (B, Tf, Dm), m_aligned (B, T, Dm), v_proj (B, T, Dm),
        scene_p (B, T, K) or None, scene_q (C, K) or None (each class's language scene prior),
        h_t (B, T, H), h (B, H).
        """
        if batch["clip"].shape[-1] != self.cfg.clip_dim:
            raise ValueError(f"clip features have dim {batch['clip'].shape[-1]}, the model expects {self.cfg.clip_dim}")
        v = self.visual(batch)  # (B, T, D)
        m = self.motion(batch)  # (B, Tf, Dm)
        if self.decoder is not None:
            m = self.decoder(m, v)
        v_proj = self.v_proj(v)  # (B, T, Dm)
        m_aligned = self.aligner(m, v)  # (B, T, Dm)
        c, scene_p = self.context(v) if self.context is not None else (None, None)  # (B, T, H), (B, T, K)
        h_t, h = self.fusion(v, m_aligned, c)  # (B, T, H), (B, H)
        class_emb = self.prompt_learner() if self.prompt_learner is not None else None  # (C, D)
        logits = self.classifier(h, class_emb)  # (B, C)
        return {
            "logits": logits, "v": v, "m": m, "m_aligned": m_aligned, "v_proj": v_proj,
            "scene_p": scene_p, "scene_q": self.context.class_prior if self.context is not None else None,
            "h_t": h_t, "h": h,
        }


def build_model(cfg: ModelConfig, class_text: torch.Tensor, scene_text: torch.Tensor | None,
                token_tail: nn.Module | None = None, prompt_learner: nn.Module | None = None) -> FGMCLIP:
    """The model for `cfg`, with class text (C, D) and scene bank (K, D) as fixed buffers."""
    return FGMCLIP(cfg, class_text, scene_text, token_tail=token_tail, prompt_learner=prompt_learner)
