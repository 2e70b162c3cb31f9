"""The paper's four validation metrics (accuracy, macro recall, macro F1, macro one-vs-rest AUC) and per-class figures."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support, recall_score, roc_auc_score

# The summary metrics every run reports, in table order (fractions in metrics.json).
METRICS = ("accuracy", "recall", "f1", "auc")


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def macro_auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Macro one-vs-rest AUC over the classes present in `labels` (others have no positives); NaN if < 2."""
    present = np.unique(labels)
    if len(present) < 2:
        return float("nan")
    aucs = [roc_auc_score(labels == c, probs[:, c]) for c in present]
    return float(np.mean(aucs))


def classification_metrics(labels: np.ndarray, logits: np.ndarray, classes: list[str]) -> dict:
    """labels (N,) int, logits (N, C) -> accuracy, recall, f1, auc (fractions), confusion matrix, per-class table."""
    probs = softmax(logits)
    pred = probs.argmax(1)
    all_classes = np.arange(len(classes))
    present = np.unique(labels)
    p, r, f, support = precision_recall_fscore_support(labels, pred, labels=all_classes, zero_division=0)
    return {
        "accuracy": float((pred == labels).mean()),
        # macro over the classes that occur in validation, so an absent class does not count as 0 recall
        "recall": float(recall_score(labels, pred, labels=present, average="macro", zero_division=0)),
        "f1": float(f1_score(labels, pred, labels=present, average="macro", zero_division=0)),
        "auc": macro_auc(labels, probs),
        "n": int(len(labels)),
        "confusion": confusion_matrix(labels, pred, labels=all_classes).tolist(),
        "per_class": {
            c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
            for i, c in enumerate(classes)
        },
    }


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value), ignoring NaN."""
    arr = np.asarray([v for v in values if v == v], dtype=float)
    if not len(arr):
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def among(labels: np.ndarray, logits: np.ndarray, keep: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
    """labels (N,), logits (N, C) -> both over the classes `keep` only, labels renumbered (N,), (N, len(keep)).

    The zero-shot protocol validates a choice among its held-out classes; `keep` None leaves both as given.
    """
    if keep is None:
        return labels, logits
    return np.array([keep.index(v) for v in labels]), logits[:, keep]


def accuracy(labels: np.ndarray, logits: np.ndarray) -> float:
    """Share of rows whose highest logit is the label: labels (N,), logits (N, C)."""
    return float((logits.argmax(1) == labels).mean())
