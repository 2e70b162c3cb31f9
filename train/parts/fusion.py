"""Multimodal fusion (Eq. 9-10, Figure 2): (v, m~, c) per step -> (h_t (B, T, H), h (B, H))."""

from __future__ import annotations

import torch
from torch import nn


def _embed(in_dim: int, hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.LayerNorm(hidden))


class MVSM(nn.Module):
    """Motion-Visual Synergy Module: embed, scale, fuse (Eq. 9), 1x1 conv, mean over T (Eq. 10).

    Figure 2's "scaling" is read as: per-channel learned scales (init 1) times a gate
    2*sigmoid(G(e_other)) from the other modality (motion gates visual and vice versa). The gate
    layers start at zero, so at init the gate is exactly 1 and the module is a plain Eq. 9 fusion.
    `context_dim` 0 means no context input.
    """

    def __init__(self, visual_dim: int, motion_dim: int, context_dim: int, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.embed_v = _embed(visual_dim, hidden)
        self.embed_m = _embed(motion_dim, hidden)
        self.embed_c = _embed(context_dim, hidden) if context_dim else None
        self.scale_v = nn.Parameter(torch.ones(hidden))
        self.scale_m = nn.Parameter(torch.ones(hidden))
        self.scale_c = nn.Parameter(torch.ones(hidden)) if context_dim else None
        self.gate_v = nn.Linear(hidden, hidden)  # computed from motion, applied to visual
        self.gate_m = nn.Linear(hidden, hidden)  # computed from visual, applied to motion
        for gate in (self.gate_v, self.gate_m):
            nn.init.zeros_(gate.weight)
            nn.init.zeros_(gate.bias)
        n_in = 3 if context_dim else 2
        self.fuse = nn.Linear(n_in * hidden, hidden)  # W_f, b_f of Eq. 9
        self.drop = nn.Dropout(dropout)
        self.conv = nn.Conv1d(hidden, hidden, kernel_size=1)

    def forward(self, v: torch.Tensor, m: torch.Tensor,
                c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        ev, em = self.embed_v(v), self.embed_m(m)  # (B, T, H) each
        parts = [
            ev * self.scale_v * 2 * torch.sigmoid(self.gate_v(em)),
            em * self.scale_m * 2 * torch.sigmoid(self.gate_m(ev)),
        ]
        if self.embed_c is not None:
            if c is None:
                raise ValueError("this MVSM was built with context; pass c (B, T, Dc)")
            parts.append(self.embed_c(c) * self.scale_c)
        h_t = self.drop(torch.relu(self.fuse(torch.cat(parts, dim=-1))))  # (B, T, H), Eq. 9
        h_t = self.conv(h_t.transpose(1, 2)).transpose(1, 2)  # (B, T, H), Figure 2's last step
        return h_t, h_t.mean(dim=1)  # Eq. 10: (B, H)


class ConcatFusion(nn.Module):
    """No-fusion ablation: Linear([v; m~; c]) per step, mean over T; same returns as MVSM.

    A linear map commutes with the mean, so h equals Linear(mean_t [v; m~; c]) exactly.
    """

    def __init__(self, visual_dim: int, motion_dim: int, context_dim: int, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.use_context = bool(context_dim)
        self.out = nn.Linear(visual_dim + motion_dim + context_dim, hidden)

    def forward(self, v: torch.Tensor, m: torch.Tensor,
                c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [v, m] + ([c] if self.use_context else [])
        h_t = self.out(torch.cat(parts, dim=-1))  # (B, T, H)
        return h_t, h_t.mean(dim=1)  # (B, H)


FUSIONS = {"mvsm": MVSM, "concat": ConcatFusion}
