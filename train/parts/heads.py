"""Per-stream heads, stream dropout, the head blend and the stacker: each stream's own logits beside the fused ones.

Why (docs/design-choices.md, "Fusion that never loses to a stream"): trained only through the fused
head, a multimodal model under-trains the stream that is slower to fit and can overfit the other
(Wang, Tran and Feiszli, CVPR 2020; Du et al., ICML 2023). So each stream gets its own classifier
and its own cross-entropy, and the prediction blends the heads' log-probabilities with weights
fitted on held-out training videos (train/fitting/blend.py), so a stream that does not generalise
gets a weight near zero; HeadStacker is the blend's finer form, one linear map over all heads'
log-probabilities. Stream dropout (modality dropout: the fusion sometimes sees one stream
hidden) is here too, off in `full` and on in the `stream_dropout` variant.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Head names in the order of the blend-weight buffer; "fused" is the paper's classifier on h, "probe"
# the linear probe on the frozen visual features (train/parts/probe.py), fitted after training.
HEADS = ("fused", "motion", "visual", "probe")
# The stream heads trained by their own cross-entropy (the probe is fitted, not trained).
STREAM_HEADS = ("motion", "visual")


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
    bit). Heads of weight 0 are skipped, so a head masked to -inf (zero-shot protocol) adds no NaN; so
    are heads the model does not have yet (the probe is fitted after the last epoch: training steps
    blend without it, and the training loss never reads the blend).
    """
    w = weights.tolist()
    if w[0] == 1.0 and not any(w[1:]):
        return heads["fused"]
    used = [(wk, heads[name]) for name, wk in zip(HEADS, w) if wk > 0 and name in heads]
    if not used:
        raise ValueError("every blend weight is 0: no head would score the classes")
    return sum(wk * F.log_softmax(z, dim=-1) for wk, z in used)  # (B, C)


class HeadStacker(nn.Module):
    """Stacked prediction: each head's log-probabilities -> class logits by one linear map, {name: (B, C)} -> (B, C).

    logits_c = bias_c + sum_k sum_c' weight[c, k, c'] log_softmax(z_k)_c' over HEADS. The scalar blend
    is the case weight[:, k] = w_k I; a full map can also learn which of a head's classes it tells
    apart (a look-only head names the look, not the motion: its evidence for a class is spread over
    the classes of that look). Fitted on held-out training videos (train/fitting/blend.py); buffers
    only, so no optimiser sees it and a checkpoint carries it. Unfitted (`fitted` False) until then.
    """

    def __init__(self, n_classes: int):
        super().__init__()
        self.register_buffer("weight", torch.zeros(n_classes, len(HEADS), n_classes))
        self.register_buffer("bias", torch.zeros(n_classes))
        self.register_buffer("is_fitted", torch.zeros((), dtype=torch.bool))

    @property
    def fitted(self) -> bool:
        return bool(self.is_fitted)

    @torch.no_grad()
    def set(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """weight (C, len(HEADS), C), bias (C,): the fitted map; a head it does not use has weight 0."""
        self.weight.copy_(weight)
        self.bias.copy_(bias)
        self.is_fitted.fill_(True)

    def forward(self, heads: dict[str, torch.Tensor]) -> torch.Tensor:
        used = self.weight.abs().sum(dim=(0, 2)) > 0  # (K,)
        missing = [name for name, u in zip(HEADS, used.tolist()) if u and name not in heads]
        if missing:
            raise ValueError(f"the stacked blend was fitted with heads {missing} that this model does not have now")
        ref = heads["fused"]
        x = torch.stack([F.log_softmax(heads[n], dim=-1) if n in heads else torch.zeros_like(ref)
                         for n in HEADS], dim=1)  # (B, K, C)
        return torch.einsum("bkd,ckd->bc", x, self.weight) + self.bias  # (B, C)
