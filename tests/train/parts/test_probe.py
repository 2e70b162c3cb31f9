"""The visual probe: its fit against scikit-learn's, absent classes, standardisation (in the model: test_model.py)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from train.parts.probe import ABSENT_CLASS_LOGIT, PROBE_C, ProbeHead, fit_softmax_probe, pooled


def test_fit_is_scikit_learns_logistic_regression():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(90) % 3
    x = torch.randn(90, 6, generator=gen) + torch.randn(3, 6, generator=gen)[y]  # overlapping classes
    weight, bias = fit_softmax_probe(x, y, 3)
    ours = torch.softmax(x @ weight.T + bias, dim=1).numpy()
    theirs = LogisticRegression(C=PROBE_C, tol=1e-10, max_iter=10_000).fit(x.numpy(), y.numpy()).predict_proba(x.numpy())
    assert np.abs(ours - theirs).max() < 1e-3


def test_a_class_absent_from_training_is_never_picked():
    x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    weight, bias = fit_softmax_probe(x, torch.tensor([0, 0, 2, 2]), n_classes=3)
    assert bias[1] == ABSENT_CLASS_LOGIT and not weight[1].any()
    z = x @ weight.T + bias  # (4, 3)
    assert z.argmax(1).tolist() == [0, 0, 2, 2]


def test_standardising_finds_looks_hidden_under_a_large_shared_component():
    # Random-weight CLIP frames share one large direction (mean pairwise cosine ~0.5); the looks differ
    # by offsets twenty times smaller, in a few channels, under per-frame noise.
    gen = torch.Generator().manual_seed(1)
    common, looks = 10 * torch.randn(32, generator=gen), 0.5 * torch.randn(3, 32, generator=gen)
    y = torch.arange(120) % 3
    frames = common + looks[y][:, None, :] + 0.3 * torch.randn(120, 8, 32, generator=gen)  # (N, T, D)
    probe = ProbeHead(32, 3)
    probe.fit(frames[:60], y[:60])
    train_stats = pooled(frames[:60])
    assert torch.allclose(probe.mean, train_stats.mean(0)) and probe.fitted  # statistics of the training videos
    assert (probe(frames[60:]).argmax(1) == y[60:]).float().mean() == 1.0
