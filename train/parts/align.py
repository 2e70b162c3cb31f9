"""Temporal alignment of motion onto visual steps (Eq. 6-8): m (B, Tf, Dm), v (B, T, Dv) -> (B, T, Dm)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def interpolate_steps(m: torch.Tensor, steps: int) -> torch.Tensor:
    """Linear interpolation along time, end points kept: (B, Tf, D) -> (B, steps, D)."""
    if m.shape[1] == steps:
        return m
    if m.shape[1] == 1:
        return m.expand(-1, steps, -1)
    out = F.interpolate(m.transpose(1, 2), size=steps, mode="linear", align_corners=True)  # (B, D, steps)
    return out.transpose(1, 2)


class InterpAligner(nn.Module):
    """Trivial baseline: resample m onto the T visual steps; v is only read for T."""

    def __init__(self, motion_dim: int, visual_dim: int, proj: nn.Module | None = None):
        super().__init__()

    def forward(self, m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return interpolate_steps(m, v.shape[1])  # (B, T, Dm)


def dtw_weights(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-normalised DTW match matrix of each pair: a (B, T, D), b (B, Tf, D) -> W (B, T, Tf).

    W[n, t, j] = 1/k when step t of a is matched to k steps of b (j among them) on the optimal
    path. Computed on detached, L2-normalised features, so W carries no gradient (a path is discrete).
    """
    from tslearn.metrics import dtw_path  # imported here: numba compiles it on first use (~7 s)

    a_np = F.normalize(a.detach().float(), dim=-1).cpu().numpy().astype(np.float64)
    b_np = F.normalize(b.detach().float(), dim=-1).cpu().numpy().astype(np.float64)
    w = np.zeros((a.shape[0], a.shape[1], b.shape[1]), dtype=np.float32)
    for n in range(a.shape[0]):
        path, _ = dtw_path(a_np[n], b_np[n])
        rows, cols = np.asarray(path).T
        w[n, rows, cols] = 1.0
    w /= w.sum(axis=2, keepdims=True)  # every step of a lies on the path, so no row is empty
    return torch.from_numpy(w).to(device=a.device, dtype=a.dtype)


class DTWAligner(nn.Module):
    """Eq. 7: DTW between projected visual and motion; m~_t = mean of motion steps matched to t.

    `proj` (Dv -> Dm) may be shared with the model's v_proj: the DTW path is discrete and passes
    no gradient, so only the alignment loss (Eq. 2) can train the projection the cost uses.
    """

    def __init__(self, motion_dim: int, visual_dim: int, proj: nn.Module | None = None):
        super().__init__()
        self.proj = proj if proj is not None else nn.Linear(visual_dim, motion_dim)

    def forward(self, m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        w = dtw_weights(self.proj(v), m)  # (B, T, Tf), constant
        return torch.bmm(w, m)  # (B, T, Dm): gradients flow to the gathered motion features


class AttentionAligner(nn.Module):
    """Eq. 8: visual queries attend over motion keys/values, added to the interpolated motion."""

    def __init__(self, motion_dim: int, visual_dim: int, proj: nn.Module | None = None, heads: int = 4):
        super().__init__()
        self.proj = proj if proj is not None else nn.Linear(visual_dim, motion_dim)
        self.norm_q = nn.LayerNorm(motion_dim)
        self.norm_kv = nn.LayerNorm(motion_dim)
        self.attn = nn.MultiheadAttention(motion_dim, heads, batch_first=True)

    def forward(self, m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q = self.norm_q(self.proj(v))  # (B, T, Dm)
        kv = self.norm_kv(m)  # (B, Tf, Dm)
        attended = self.attn(q, kv, kv, need_weights=False)[0]  # (B, T, Dm)
        # Residual to the interpolation: before attention has learned anything, the output is
        # still a time-resampled copy of the motion rather than an arbitrary mixture.
        return interpolate_steps(m, v.shape[1]) + attended


ALIGNERS = {"dtw": DTWAligner, "attention": AttentionAligner, "interp": InterpAligner}
