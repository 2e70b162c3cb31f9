"""Contextual prior (Eq. 12): per-frame scene distribution over a text bank, and context features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# CLIP's trained logit scale saturates near 100, i.e. a temperature of 0.01.
SCENE_TAU = 0.01


def scene_distribution(x: torch.Tensor, scene_text: torch.Tensor, tau: float = SCENE_TAU) -> torch.Tensor:
    """softmax(cos(x, scene_text) / tau): x (..., D), scene_text (K, D) -> (..., K)."""
    sim = F.normalize(x, dim=-1) @ F.normalize(scene_text, dim=-1).T  # (..., K)
    return torch.softmax(sim / tau, dim=-1)


class ContextEncoder(nn.Module):
    """Eq. 12: v (B, T, D) -> (context c (B, T, Dc), scene distribution p (B, T, K)).

    The scene "recognition model" E_c is CLIP itself, zero-shot over the scene bank; only the
    linear map from p_t to c_t is learned. `class_prior` (C, K) is the expected scene distribution
    of each class from language alone, the target of the context loss.
    """

    def __init__(self, scene_text: torch.Tensor, out_dim: int, class_text: torch.Tensor | None = None,
                 tau: float = SCENE_TAU):
        super().__init__()
        self.tau = tau
        self.register_buffer("scene_text", F.normalize(scene_text.float(), dim=-1))  # (K, D)
        prior = None if class_text is None else scene_distribution(class_text.float(), self.scene_text, tau)
        self.register_buffer("class_prior", prior)  # (C, K) or None
        self.out = nn.Linear(scene_text.shape[0], out_dim)

    def forward(self, v: torch.Tensor, detach_context: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """detach_context: c is computed from p without its gradient, so what reads c cannot train v through it."""
        p = scene_distribution(v, self.scene_text, self.tau)  # (B, T, K)
        return self.out(p.detach() if detach_context else p), p  # (B, T, Dc), (B, T, K)
