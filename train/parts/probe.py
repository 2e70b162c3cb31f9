"""A linear probe on pooled frozen visual features: frames (B, T, D) -> logits (B, C), fitted by L-BFGS, not epochs.

Why (docs/design-choices.md, "The appearance probe and the stacked blend"): the stream heads are trained by Adam with
the rest of the model, a few hundred steps from a random start; on appearance, where frozen CLIP
features already separate the classes, that leaves a classifier far from the one the features
allow. Multinomial logistic regression on standardised, time-pooled features, fitted to its optimum
(CLIP's own linear-probe protocol, Radford et al. 2021), is convex, has one fixed regulariser and
needs no epochs. The `linear_probe` baseline is the same fit on its own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Inverse L2 strength, as scikit-learn's LogisticRegression(C=1): its default. CLIP's probes sweep it
# on a validation split; a training fold has none to spare, so it is fixed, never tuned here.
PROBE_C = 1.0
# Logit of a class the probe never saw in training: far below any real logit, finite.
ABSENT_CLASS_LOGIT = -1e4


def pooled(frames: torch.Tensor) -> torch.Tensor:
    """Time-pooled unit features: frames (N, T, D) -> (N, D), unit per frame, then the mean over T."""
    return F.normalize(frames.float(), dim=-1).mean(dim=1)


def fit_softmax_probe(x: torch.Tensor, y: torch.Tensor, n_classes: int, c: float = PROBE_C,
                      max_iter: int = 500, offset: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression x (N, D), y (N,) -> weight (C, D), bias (C,), float32.

    Minimises mean cross-entropy + ||W||^2 / (2 c N) (scikit-learn's objective, divided by c N; the
    bias is not penalised) by full-batch L-BFGS in float64 on the CPU, so the fit is the same on any
    device. `offset` (N, C), fixed logits added before the softmax, makes W a correction to a given
    model that the ridge shrinks towards it. Classes absent from y get bias ABSENT_CLASS_LOGIT: the
    probe can never pick them.
    """
    x64, y64 = x.detach().double().cpu(), y.detach().long().cpu()
    seen = torch.unique(y64)  # (Cs,)
    target = torch.searchsorted(seen, y64)  # labels renumbered among the seen classes
    w = torch.zeros(len(seen), x64.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(seen), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")
    ridge = 1.0 / (2.0 * c * len(x64))
    base = 0.0 if offset is None else offset.detach().double().cpu()[:, seen]  # (N, Cs)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x64 @ w.T + b + base, target) + ridge * (w ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():  # ProbeHead.fit runs under no_grad; the fit itself needs gradients
        opt.step(closure)
    weight = torch.zeros(n_classes, x64.shape[1])
    bias = torch.full((n_classes,), ABSENT_CLASS_LOGIT)
    weight[seen], bias[seen] = w.detach().float(), b.detach().float()
    return weight, bias  # (C, D), (C,)


class ProbeHead(nn.Module):
    """Linear probe on standardised pooled frames: (B, T, D) -> logits (B, C); set by `fit`, never by a gradient.

    Its state (the training fold's feature mean and std, the weights) is buffers, so an optimiser never
    sees it and a checkpoint carries it. `fitted` stays False until `fit` has run; an unfitted probe
    has no prediction to offer (the model then leaves it out of its heads).
    """

    def __init__(self, dim: int, n_classes: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("weight", torch.zeros(n_classes, dim))
        self.register_buffer("bias", torch.zeros(n_classes))
        self.register_buffer("is_fitted", torch.zeros((), dtype=torch.bool))

    @property
    def fitted(self) -> bool:
        return bool(self.is_fitted)

    def standardised(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, D): pooled, then standardised by the training fold's statistics."""
        return (pooled(frames) - self.mean) / self.std

    @torch.no_grad()
    def fit(self, frames: torch.Tensor, labels: torch.Tensor) -> None:
        """Fit on the training videos' frames (N, T, D) and labels (N,): statistics and weights from them alone."""
        x = pooled(frames)  # (N, D)
        self.mean.copy_(x.mean(dim=0))
        self.std.copy_(x.std(dim=0, correction=0).clamp_min(1e-6))  # a constant channel carries nothing
        weight, bias = fit_softmax_probe((x - self.mean).div(self.std), labels, self.weight.shape[0])
        self.weight.copy_(weight)
        self.bias.copy_(bias)
        self.is_fitted.fill_(True)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.standardised(frames) @ self.weight.T + self.bias  # (B, C)
