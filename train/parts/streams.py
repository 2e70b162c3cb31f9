"""Single-stream parts for the neural baselines: an ActionCLIP-style frame transformer and a one-input fusion.

Both plug into FGMCLIP's existing slots, so the baselines train, checkpoint and resume exactly like
FGM-CLIP: the frame transformer takes the motion-stream slot (as `visual_tcn` does for `no_motion`),
and `MotionOnlyFusion` passes only that slot's features on to the classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from fgm_common.store import CLIP
from train.parts.motion import TemporalTransformer


class FrameTransformerStream(nn.Module):
    """Motion-slot entry "frame_transformer": batch["clip"] (B, T, D) -> (B, T, Dm); flow is never read.

    ActionCLIP's "Transf" visual prompt over frozen frame embeddings: a linear map to Dm, learned
    positions and a pre-LN transformer encoder (residual inside every layer, so the output still
    carries the per-frame features).
    """

    def __init__(self, clip_dim: int, hist_dim: int, dim: int, temporal: str, max_len: int, dropout: float):
        super().__init__()
        self.inp = nn.Linear(clip_dim, dim)
        self.encoder = TemporalTransformer(dim, max_len, dropout)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.encoder(self.inp(batch[CLIP]))  # (B, T, Dm)


class MotionOnlyFusion(nn.Module):
    """Fusion entry "motion_only": only the motion-slot features reach h; v and c are not read.

    (v, m~ (B, T, Dm), c) -> (h_t (B, T, H), h (B, H)): Linear + LayerNorm, ReLU, dropout, mean over T.
    """

    def __init__(self, visual_dim: int, motion_dim: int, context_dim: int, hidden: int, dropout: float = 0.1):
        super().__init__()
        if context_dim:
            raise ValueError("the motion_only fusion has no context input; build it with use_context=False")
        self.embed = nn.Sequential(nn.Linear(motion_dim, hidden), nn.LayerNorm(hidden))
        self.drop = nn.Dropout(dropout)

    def forward(self, v: torch.Tensor, m: torch.Tensor,
                c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h_t = self.drop(torch.relu(self.embed(m)))  # (B, T, H)
        return h_t, h_t.mean(dim=1)  # (B, H)


STREAM_ENCODERS = {"frame_transformer": FrameTransformerStream}
STREAM_FUSIONS = {"motion_only": MotionOnlyFusion}
