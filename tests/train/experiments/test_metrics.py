"""The four validation metrics on hand-computed cases, and mean ± std over seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from train.experiments.metrics import classification_metrics, macro_auc, mean_std, softmax

CLASSES2 = ["a", "b"]
CLASSES3 = ["a", "b", "c"]


def test_softmax_rows_sum_to_one_and_are_stable():
    p = softmax(np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]]))
    assert np.allclose(p, [[0.5, 0.5], [0.25, 0.75]])
    assert np.isfinite(p).all()


def test_perfect_logits_score_one():
    labels = np.array([0, 1, 2, 0, 1, 2])
    logits = 10 * np.eye(3)[labels]
    m = classification_metrics(labels, logits, CLASSES3)
    for key in ("accuracy", "recall", "f1", "auc"):
        assert m[key] == 1.0, key
    assert m["n"] == 6
    assert m["confusion"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    assert all(pc["precision"] == pc["recall"] == pc["f1"] == 1.0 for pc in m["per_class"].values())


def test_hand_computed_confusion():
    # predictions 0, 1, 1, 1 for labels 0, 0, 1, 1; p(class 0) ranks x0 > x3 > x1 > x2
    labels = np.array([0, 0, 1, 1])
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [0.0, 0.5]])
    m = classification_metrics(labels, logits, CLASSES2)
    assert m["confusion"] == [[1, 1], [0, 2]]
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["recall"] == pytest.approx((0.5 + 1.0) / 2)
    # F1 a: P 1, R 1/2 -> 2/3; F1 b: P 2/3, R 1 -> 4/5
    assert m["f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    # positives of a (x0, x1) against negatives (x2, x3): only x1 < x3 is misordered -> 3/4, same for b
    assert m["auc"] == pytest.approx(0.75)
    assert m["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)


def test_auc_is_rank_based_not_argmax_based():
    labels = np.array([0, 0, 1, 1])
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [0.0, 2.0]])  # x1 misclassified but ranked right
    m = classification_metrics(labels, logits, CLASSES2)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["auc"] == 1.0


def test_macro_is_over_present_classes_only():
    labels = np.array([0, 0, 1, 1])  # class c never occurs in validation
    perfect = classification_metrics(labels, 5 * np.eye(3)[labels], CLASSES3)
    assert perfect["recall"] == perfect["f1"] == perfect["auc"] == 1.0
    # one video of a predicted as the absent class c
    pred = np.array([0, 2, 1, 1])
    m = classification_metrics(labels, 5 * np.eye(3)[pred], CLASSES3)
    assert m["recall"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["f1"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert m["per_class"]["c"]["support"] == 0
    assert m["confusion"] == [[1, 0, 1], [0, 2, 0], [0, 0, 0]]


def test_auc_is_nan_with_one_class_present():
    labels = np.array([1, 1, 1])
    m = classification_metrics(labels, np.eye(3)[labels], CLASSES3)
    assert math.isnan(m["auc"])
    assert m["accuracy"] == 1.0
    assert math.isnan(macro_auc(labels, softmax(np.eye(3)[labels])))


def test_mean_std():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)  # sample std (ddof 1)
    assert mean_std([0.5]) == (0.5, 0.0)
    m, s = mean_std([1.0, float("nan"), 3.0])  # NaN ignored
    assert (m, s) == (2.0, pytest.approx(math.sqrt(2)))
    assert all(math.isnan(x) for x in mean_std([float("nan")]))
    assert all(math.isnan(x) for x in mean_std([]))
