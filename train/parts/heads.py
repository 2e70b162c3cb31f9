"""Per-stream heads, stream dropout and the head blend: each stream's own logits beside the fused ones.

Why (docs/design-choices.md, "Fusion that never loses to a stream"): trained only through the fused
head, a multimodal model under-trains the stream that is slower to fit and can overfit the other
(Wang, Tran and Feiszli, CVPR 2020; Du et al., ICML 2023). So each stream gets its own classifier
and its own cross-entropy, and the prediction blends the heads' log-probabilities with weights
fitted on held-out training videos (train/fitting/blend.py), so a stream that does not generalise
gets a weight near zero. Stream dropout (modality dropout: the fusion sometimes sees one stream
hidden) is here too, off in `full` and on in the `stream_dropout` variant.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Head names in the order of the blend-weight buffer; "fused" is the paper's classifier on h.
HEADS = ("fused", "motion", "visual")


def fused_only() -> torch.Tensor:
    """Blend weights (len(HEADS),) that predict with the fused head alone: the paper's prediction."""
    return torch.eye(len(HEADS))[0]


class StreamHead(nn.Module):
    """One stream's own classifier: x (B, T, Din) -> logits (B, C).

    Linear + LayerNorm, ReLU, dropout per step, mean over T, then `classifier` (a head of
    train.parts.classifier.CLASSIFIERS taking (B, H)), the same body as the flow_only baseline's fusion.
    """

    def __init__(self, in_dim: int, hidden: int, classifier: nn.Module, dropout: float = 0.1):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(in_dim, hidden), nn.LayerNorm(hidden))
        self.drop = nn.Dropout(dropout)
        self.classifier = classifier

    def forward(self, x: torch.Tensor, class_emb: torch.Tensor | None = None) -> torch.Tensor:
        h_t = self.drop(torch.relu(self.embed(x)))  # (B, T, H)
        return self.classifier(h_t.mean(dim=1), class_emb, h_t=h_t)  # (B, C)


def stream_dropout(v: torch.Tensor, m: torch.Tensor, p: float,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide one stream per video with probability p each (never both): v (B, T, Dv), m (B, T, Dm) -> same shapes.

    A hidden stream is zeroed, so the fusion must learn to classify from either stream alone as
    well as from both; call it in training only.
    """
    if p <= 0:
        return v, m
    if not 0 < p <= 0.5:
        raise ValueError(f"stream dropout must be in [0, 0.5] (one stream hidden at most), got {p}")
    u = torch.rand(v.shape[0], device=v.device, generator=generator)  # (B,)
    keep_v = (u >= p).to(v.dtype)[:, None, None]  # u < p: visual hidden
    keep_m = ((u < p) | (u >= 2 * p)).to(m.dtype)[:, None, None]  # p <= u < 2p: motion hidden
    return v * keep_v, m * keep_m


def blend_logits(heads: dict[str, torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """sum_k w_k log_softmax(z_k) over HEADS with weight > 0: {name: (B, C)}, weights (len(HEADS),) -> (B, C).

    Weights one-hot on "fused" return the fused logits unchanged (the paper's prediction, bit for
    bit). Heads of weight 0 are skipped, so a head masked to -inf (zero-shot protocol) adds no NaN.
    """
    w = weights.tolist()
    if w[0] == 1.0 and not any(w[1:]):
        return heads["fused"]
    used = [(wk, heads[name]) for name, wk in zip(HEADS, w) if wk > 0]
    if not used:
        raise ValueError("every blend weight is 0: no head would score the classes")
    return sum(wk * F.log_softmax(z, dim=-1) for wk, z in used)  # (B, C)
