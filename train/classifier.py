"""Classification heads: h (B, H) -> logits (B, C); plus the CLIP zero-shot baseline."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# CLIP's logit scale: initialised at 1/0.07 and capped at 100 so the softmax cannot saturate.
INIT_LOGIT_SCALE = math.log(1 / 0.07)
MAX_LOGIT_SCALE = math.log(100.0)


class TextClassifier(nn.Module):
    """Cosine similarity of projected h to class text embeddings, times a learned scale: (B, H) -> (B, C).

    `class_emb` (C, D) at call time (e.g. from a TextPromptLearner) replaces the stored buffer.
    """

    def __init__(self, hidden: int, class_text: torch.Tensor):
        super().__init__()
        self.proj = nn.Linear(hidden, class_text.shape[1])
        self.register_buffer("class_text", F.normalize(class_text.float(), dim=-1))  # (C, D)
        self.logit_scale = nn.Parameter(torch.tensor(INIT_LOGIT_SCALE))

    def forward(self, h: torch.Tensor, class_emb: torch.Tensor | None = None) -> torch.Tensor:
        text = self.class_text if class_emb is None else F.normalize(class_emb, dim=-1)  # (C, D)
        z = F.normalize(self.proj(h), dim=-1)  # (B, D)
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp() * z @ text.T  # (B, C)


class LinearHead(nn.Module):
    """Plain linear classifier over h: (B, H) -> (B, C); class text only fixes C."""

    def __init__(self, hidden: int, class_text: torch.Tensor):
        super().__init__()
        self.fc = nn.Linear(hidden, class_text.shape[0])

    def forward(self, h: torch.Tensor, class_emb: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc(h)


CLASSIFIERS = {"text": TextClassifier, "linear": LinearHead}


def zero_shot_logits(v: torch.Tensor, class_text: torch.Tensor, scale: float = 100.0) -> torch.Tensor:
    """CLIP zero-shot: mean of normalised frame embeddings vs class text: (B, T, D), (C, D) -> (B, C)."""
    video = F.normalize(F.normalize(v, dim=-1).mean(dim=1), dim=-1)  # (B, D)
    return scale * video @ F.normalize(class_text, dim=-1).T
