"""FGM-CLIP stage-two model: FGMCLIP (batch dict -> outputs dict) and build_model; its config: model_config.py."""

from __future__ import annotations

import torch
from torch import nn

from fgm_common.store import CLIP, TOKENS
from train.parts.adapter import EmbeddingAdapter
from train.parts.align import ALIGNERS
from train.parts.classifier import CLASSIFIERS
from train.parts.context import ContextEncoder
from train.parts.heads import HEADS, HeadStacker, StreamHead, blend_logits, fused_only, stream_dropout
from train.parts.model_config import FUSION_CHOICES, MOTION_CHOICES, ModelConfig
from train.parts.motion import MotionDecoder
from train.parts.probe import ProbeHead

# FGMCLIP's submodules built from the store's CLIP towers (token adapters, learnable text context).
CLIP_PART_MODULES = ("token_tail", "prompt_learner")


class FGMCLIP(nn.Module):
    """Frozen-CLIP features + flow -> class logits: batch dict -> dict of tensors (see forward).

    Optional `token_tail` (TokenTailWithAdapters) adapts cached last-block tokens instead of the
    embedding adapter; optional `prompt_learner` (TextPromptLearner holding its token ids and
    class_of) supplies the class embeddings of the text classifier at every call.
    """

    def __init__(self, cfg: ModelConfig, class_text: torch.Tensor, scene_text: torch.Tensor | None,
                 token_tail: nn.Module | None = None, prompt_learner: nn.Module | None = None,
                 classifier_inputs: dict | None = None):
        super().__init__()
        d, dv, dm, hid = cfg.clip_dim, cfg.visual_width, cfg.motion_dim, cfg.hidden
        if tuple(class_text.shape) != (cfg.n_classes, d):
            raise ValueError(f"class_text must be (n_classes={cfg.n_classes}, clip_dim={d}), "
                             f"got {tuple(class_text.shape)}")
        if cfg.use_context and (scene_text is None or scene_text.shape[1] != d):
            raise ValueError(f"use_context needs scene_text of shape (K, clip_dim={d})")
        self.cfg = cfg
        if token_tail is not None and cfg.visual_key != CLIP:
            raise ValueError("token adapters re-run CLIP's last block; they cannot adapt non-CLIP features")
        # With a token tail the adapters live inside it; the embedding adapter would never run.
        use_embedding_adapter = cfg.use_adapter and token_tail is None
        self.adapter = EmbeddingAdapter(dv, cfg.adapter_bottleneck) if use_embedding_adapter else nn.Identity()
        self.token_tail = token_tail
        max_len = max(cfg.n_frames, cfg.n_flow)
        # the visual-side motion entries (visual_tcn, frame_transformer) read the CLIP frames, width d
        self.motion = MOTION_CHOICES[cfg.motion_encoder](d, cfg.flow_hist_dim, dm, cfg.temporal, max_len, cfg.dropout)
        self.decoder = MotionDecoder(dm, dv, dropout=cfg.dropout) if cfg.use_motion_decoder else None
        # visual into motion space: Eq. 2 target, and the DTW cost; absent where neither is used
        self.v_proj = nn.Linear(dv, dm) if cfg.uses_v_proj else None
        self.aligner = ALIGNERS[cfg.aligner](dm, dv, proj=self.v_proj)
        self.context = ContextEncoder(scene_text, hid, class_text) if cfg.use_context else None
        self.fusion = FUSION_CHOICES[cfg.fusion](dv, dm, hid if cfg.use_context else 0, hid, cfg.dropout)
        # classifier_inputs: what a classifier needs beyond (hidden, class_text), e.g. class-sentence tokens
        self.classifier = CLASSIFIERS[cfg.classifier](hid, class_text, **(classifier_inputs or {}))
        self.prompt_learner = prompt_learner
        # Stream heads score a pooled vector; the token-interaction head needs sentence tokens, so they use text.
        head = CLASSIFIERS[cfg.classifier if cfg.classifier in ("text", "linear") else "text"]
        self.head_m = StreamHead(dm, hid, head(hid, class_text), cfg.dropout) if cfg.stream_heads else None
        self.head_v = StreamHead(dv, hid, head(hid, class_text), cfg.dropout) if cfg.stream_heads else None
        # Frame embeddings share a large common component (random CLIP: mean pairwise cosine ~0.5), so
        # the channels that tell videos apart are small beside it; running training-batch statistics
        # (BatchNorm without affine) put every channel on one scale before a layer learns from them.
        self.visual_norm = nn.BatchNorm1d(dv, affine=False) if cfg.standardize_visual else None
        # reads the store's frozen features, not v: an adapter trained on the training videos would let
        # the probe fit them more closely than it can fit unseen ones
        self.probe = ProbeHead(dv, cfg.n_classes) if cfg.visual_probe else None
        # (len(HEADS),) prediction weights; one-hot on "fused" until a blend sets them (train/fitting/blend.py)
        self.register_buffer("blend_weights", fused_only())
        # the stacked blend (blend="stack"); once fitted it makes the prediction instead of blend_weights
        self.stacker = HeadStacker(cfg.n_classes)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A checkpoint from before the head blend predicts with the fused head alone; one from before
        # the probe head gives it weight 0.
        weights = state_dict.setdefault(prefix + "blend_weights", fused_only())
        if len(weights) < len(HEADS):
            state_dict[prefix + "blend_weights"] = torch.cat([weights, weights.new_zeros(len(HEADS) - len(weights))])
        # one from before the stacked blend has none fitted
        for name, buf in self.stacker.named_buffers():
            state_dict.setdefault(f"{prefix}stacker.{name}", torch.zeros_like(buf))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def frozen_clip_keys(self) -> set[str]:
        """State-dict keys of the frozen CLIP copies inside the token tail and the prompt learner.

        They are the store's own CLIP weights, which a checkpoint names by hash (clip_identity) and
        which loading rebuilds from that CLIP, so a checkpoint need not carry them: with learnable
        text context they are most of its bytes, rewritten after every epoch (docs/design-choices.md).
        """
        return {f"{name}.{key}" for name in CLIP_PART_MODULES if getattr(self, name) is not None
                for key, p in getattr(self, name).named_parameters() if not p.requires_grad}

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """state_dict() without the frozen CLIP copies (frozen_clip_keys): what a checkpoint stores."""
        frozen = self.frozen_clip_keys()
        return {k: v for k, v in self.state_dict().items() if k not in frozen}

    def load_checkpoint_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load a checkpoint_state (or a full state_dict); the frozen CLIP copies keep the weights built here.

        Strict otherwise: any other missing or unexpected key is an error.
        """
        try:
            missing, unexpected = self.load_state_dict(state, strict=False)
        except RuntimeError as err:
            if "size mismatch" not in str(err):
                raise
            # a tensor of another shape: the parts that wrote it differ from these
            raise RuntimeError("checkpoint weights do not fit the shapes of this model, whose parts differ from the "
                               "ones that wrote it (an older fgm?): retrain, or load it with the fgm version that "
                               f"wrote it. {err}") from err
        missing = set(missing) - self.frozen_clip_keys()
        if missing or unexpected:
            raise RuntimeError(f"checkpoint weights do not match the model: missing {sorted(missing)}, "
                               f"unexpected {sorted(unexpected)}")

    def visual(self, batch: dict) -> torch.Tensor:
        """Adapted per-frame visual features v' (B, T, Dv): batch[visual_key], or CLIP's tail over the tokens."""
        key = self.cfg.visual_key
        if key not in batch:
            raise KeyError(f"this model reads {key!r} features and the batch has none; extract them with "
                           f"`fgm-extract VIDEOS --out STORE --backbone {key}`")
        if self.token_tail is None:
            return self.adapter(batch[key])  # (B, T, Dv)
        if TOKENS not in batch:
            raise KeyError("this model adapts patch tokens; build the store with tokens (extract --tokens)")
        tokens = batch[TOKENS]  # (B, T, L, W)
        b, t = tokens.shape[:2]
        return self.token_tail(tokens.flatten(0, 1)).view(b, t, -1)  # (B, T, D)

    def forward(self, batch: dict) -> dict:
        """batch: clip (B, T, D), flow (B, Tf, 2, G, G), flow_hist (B, Tf, Hh), [tokens], [visual_key] -> outputs.

        Returns logits (B, C) (the heads combined by the fitted `stacker`, else by `blend_weights`),
        heads {name: (B, C)} (the fused head, with stream_heads the motion and visual heads, and the
        probe once fitted), v (B, T, Dv), m (B, Tf, Dm), m_aligned (B, T, Dm), v_proj (B, T, Dm) or None
        (not built: no Eq. 2 and an interp aligner), scene_p (B, T, K) or None, scene_q (C, K) or None
        (each class's language scene prior), h_t (B, T, H), h (B, H).
        """
        key, width = self.cfg.visual_key, self.cfg.visual_width
        if key in batch and batch[key].shape[-1] != width:
            raise ValueError(f"{key} features have dim {batch[key].shape[-1]}, the model expects {width}")
        v = self.visual(batch)  # (B, T, Dv)
        m_own = self.motion(batch)  # (B, Tf, Dm): the motion stream before it sees the visual one
        # isolate_streams: the encoders learn from their own heads only, and what reads both streams
        # (decoder, aligner, fusion, Eq. 2) learns on top, so it cannot bend one stream towards the other
        v_f, m_f = (v.detach(), m_own.detach()) if self.cfg.isolate_streams else (v, m_own)
        m = self.decoder(m_f, v_f) if self.decoder is not None else m_f  # (B, Tf, Dm)
        v_proj = self.v_proj(v_f) if self.v_proj is not None else None  # (B, T, Dm)
        m_aligned = self.aligner(m, v_f)  # (B, T, Dm)
        # the context prior is what trains the adapter towards the class's scenes: scene_p reads v itself;
        # isolated, the context features c the fusion reads carry no gradient back into v (the fused
        # head would otherwise train the visual stream through the scene distribution)
        c, scene_p = (self.context(v, detach_context=self.cfg.isolate_streams) if self.context is not None
                      else (None, None))  # (B, T, H), (B, T, K)
        v_std = v if self.visual_norm is None else self.visual_norm(v.flatten(0, 1)).view_as(v)  # (B, T, Dv)
        v_in, m_in = (v_std.detach() if self.cfg.isolate_streams else v_std), m_aligned
        if self.training:
            # a hidden stream is zeroed after standardising: zero is then the training mean, not a far-off point
            v_in, m_in = stream_dropout(v_in, m_in, self.cfg.stream_dropout)
        h_t, h = self.fusion(v_in, m_in, c)  # (B, T, H), (B, H)
        class_emb = self.prompt_learner() if self.prompt_learner is not None else None  # (C, D)
        heads = {"fused": self.classifier(h, class_emb, h_t=h_t)}  # (B, C)
        if self.head_m is not None:
            heads["motion"] = self.head_m(m_own, class_emb)  # (B, C)
            heads["visual"] = self.head_v(v_std, class_emb)  # (B, C)
        if self.probe is not None and self.probe.fitted:
            heads["probe"] = self.probe(batch[key])  # (B, C)
        return {
            # training steps never read the prediction; and the probe, which the stacker reads, is fitted after them
            "logits": (self.stacker(heads) if self.stacker.fitted and not self.training
                       else blend_logits(heads, self.blend_weights)),
            "heads": heads, "v": v, "m": m,
            "m_aligned": m_aligned, "v_proj": v_proj,
            "scene_p": scene_p, "scene_q": self.context.class_prior if self.context is not None else None,
            "h_t": h_t, "h": h,
        }


def build_model(cfg: ModelConfig, class_text: torch.Tensor, scene_text: torch.Tensor | None,
                token_tail: nn.Module | None = None, prompt_learner: nn.Module | None = None,
                classifier_inputs: dict | None = None) -> FGMCLIP:
    """The model for `cfg`, with class text (C, D) and scene bank (K, D) as fixed buffers."""
    return FGMCLIP(cfg, class_text, scene_text, token_tail=token_tail, prompt_learner=prompt_learner,
                   classifier_inputs=classifier_inputs)
