"""Classification heads: h (B, H) [and per-step h_t (B, T, H)] -> logits (B, C); plus the CLIP zero-shot baseline.

Every head takes `forward(h, class_emb=None, h_t=None)`; heads that score the video as a whole ignore h_t.
"""

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

    def forward(self, h: torch.Tensor, class_emb: torch.Tensor | None = None,
                h_t: torch.Tensor | None = None) -> torch.Tensor:
        text = self.class_text if class_emb is None else F.normalize(class_emb, dim=-1)  # (C, D)
        z = F.normalize(self.proj(h), dim=-1)  # (B, D)
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp() * z @ text.T  # (B, C)


class LinearHead(nn.Module):
    """Plain linear classifier over h: (B, H) -> (B, C); class text only fixes C."""

    def __init__(self, hidden: int, class_text: torch.Tensor):
        super().__init__()
        self.fc = nn.Linear(hidden, class_text.shape[0])

    def forward(self, h: torch.Tensor, class_emb: torch.Tensor | None = None,
                h_t: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc(h)


class TokenInteractionClassifier(nn.Module):
    """Weighted token-wise interaction (DRL's WTI) of class-sentence tokens and frames: h_t (B, T, F) -> (B, C).

    For sentence s and video b, with unit text tokens t_i (real tokens only) and unit projected frames
    f_t, S_it = <t_i, f_t>; w = softmax_i(a(t_i)) over real tokens, v = softmax_t(b(f_t)) over frames;
    score = (sum_i w_i max_t S_it + sum_t v_t max_i S_it) / 2 in [-1, 1]. A class's score is the mean
    over its sentences, times a learned logit scale (as TextClassifier). `text_tokens` (S, L, D) and
    `text_mask` (S, L) are frozen CLIP outputs (`clip_parts.encode_text_tokens`); `class_of` (S,) maps
    sentences to classes (default: one sentence per class, S = C). `class_emb` is ignored: the score
    needs tokens, not one vector per class. The video-level `h` is ignored too: h_t carries it.
    """

    needs_text_tokens = True  # built with the class sentences' token features (train.fitting.checkpoint.classifier_inputs)

    def __init__(self, hidden: int, class_text: torch.Tensor, text_tokens: torch.Tensor | None = None,
                 text_mask: torch.Tensor | None = None, frame_dim: int | None = None,
                 class_of: torch.Tensor | None = None):
        super().__init__()
        if text_tokens is None or text_mask is None:
            raise ValueError("the token_interaction classifier needs the class sentences' token features: "
                             "pass ClipParts(...).interaction_inputs() (the store's CLIP text tower)")
        n_classes = class_text.shape[0]
        s, _, d = text_tokens.shape
        class_of = torch.arange(s) if class_of is None else class_of.long()
        if text_mask.shape != text_tokens.shape[:2] or class_of.shape != (s,):
            raise ValueError(f"text_mask must be (S, L)={tuple(text_tokens.shape[:2])} and class_of (S,)=({s},), "
                             f"got {tuple(text_mask.shape)} and {tuple(class_of.shape)}")
        if not bool(text_mask.any(dim=1).all()):
            raise ValueError("every sentence needs at least one real token in text_mask")
        counts = torch.bincount(class_of, minlength=n_classes)  # (C,)
        if counts.numel() != n_classes or not bool((counts > 0).all()):
            raise ValueError(f"class_of must give each of the {n_classes} classes at least one sentence")
        # Columns that are padding in every sentence never score: drop them to keep (B, S, L, T) small.
        length = int(text_mask.nonzero()[:, 1].max()) + 1
        self.register_buffer("text_tokens", F.normalize(text_tokens[:, :length].float(), dim=-1))  # (S, L, D)
        self.register_buffer("text_mask", text_mask[:, :length].bool())  # (S, L)
        self.register_buffer("class_of", class_of)  # (S,)
        self.register_buffer("class_count", counts.float())  # (C,)
        self.frame_proj = nn.Linear(frame_dim or hidden, d)
        self.text_weight = nn.Linear(d, 1)
        self.frame_weight = nn.Linear(d, 1)
        # Zero weight branches: training starts from plain means over real tokens and over frames.
        for lin in (self.text_weight, self.frame_weight):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.logit_scale = nn.Parameter(torch.tensor(INIT_LOGIT_SCALE))

    def sentence_scores(self, h_t: torch.Tensor) -> torch.Tensor:
        """WTI score of every video and sentence, before the logit scale: (B, T, F) -> (B, S) in [-1, 1]."""
        f = F.normalize(self.frame_proj(h_t), dim=-1)  # (B, T, D)
        tok, real = self.text_tokens, self.text_mask  # (S, L, D), (S, L)
        sim = torch.einsum("sld,btd->bslt", tok, f)  # (B, S, L, T)
        w = self.text_weight(tok).squeeze(-1).masked_fill(~real, float("-inf")).softmax(dim=-1)  # (S, L), 0 on padding
        v = self.frame_weight(f).squeeze(-1).softmax(dim=-1)  # (B, T)
        text_to_video = (w * sim.amax(dim=3)).sum(dim=2)  # (B, S); padding has w = 0
        # -inf, not a multiply by the mask: a zeroed padding token would win the max whenever every
        # real token of the sentence is negatively correlated with the frame.
        best_token = sim.masked_fill(~real[None, :, :, None], float("-inf")).amax(dim=2)  # (B, S, T)
        video_to_text = (v[:, None, :] * best_token).sum(dim=2)  # (B, S)
        return 0.5 * (text_to_video + video_to_text)

    def forward(self, h: torch.Tensor, class_emb: torch.Tensor | None = None,
                h_t: torch.Tensor | None = None) -> torch.Tensor:
        if h_t is None:
            raise ValueError("the token_interaction classifier scores frames: call it with the per-step "
                             "features, classifier(h, class_emb, h_t=h_t), h_t (B, T, H)")
        per_sentence = self.sentence_scores(h_t)  # (B, S)
        total = per_sentence.new_zeros(per_sentence.shape[0], self.class_count.shape[0])  # (B, C)
        per_class = total.index_add(1, self.class_of, per_sentence) / self.class_count  # (B, C) sentence mean
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp() * per_class


CLASSIFIERS = {"text": TextClassifier, "linear": LinearHead, "token_interaction": TokenInteractionClassifier}


def needs_text_tokens(name: str) -> bool:
    """True when classifier `name` is built with the class sentences' token features (from CLIP's text tower)."""
    return getattr(CLASSIFIERS[name], "needs_text_tokens", False)


def interaction_inputs_from_state(state: dict, prefix: str = "classifier.") -> dict[str, torch.Tensor]:
    """TokenInteractionClassifier's text inputs read back from a saved state dict, so a checkpoint rebuilds without CLIP.

    The stored buffers are already unit-length and trimmed; both steps are idempotent, so the rebuilt
    classifier loads the same state dict strictly.
    """
    return {name: state[prefix + name] for name in ("text_tokens", "text_mask", "class_of")}


def zero_shot_logits(v: torch.Tensor, class_text: torch.Tensor, scale: float = 100.0) -> torch.Tensor:
    """CLIP zero-shot: mean of normalised frame embeddings vs class text: (B, T, D), (C, D) -> (B, C)."""
    video = F.normalize(F.normalize(v, dim=-1).mean(dim=1), dim=-1)  # (B, D)
    return scale * video @ F.normalize(class_text, dim=-1).T
