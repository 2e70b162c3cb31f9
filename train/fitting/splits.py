"""Train/validation folds: the paper's stratified 70/30, grouped by actor, k-fold, leave-one-group-out, official, cross-view."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import (
    GroupShuffleSplit,
    LeaveOneGroupOut,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)


@dataclass(frozen=True)
class Fold:
    """Indices into the dataset; train and val never share an index (nor a group, for grouped protocols)."""

    name: str
    train: np.ndarray
    val: np.ndarray


@dataclass(frozen=True)
class SplitSpec:
    protocol: str = "auto"  # see PROTOCOLS
    val_fraction: float = 0.3
    folds: int = 5
    val_view: str = ""
    seed: int = 0


def _has_groups(groups: np.ndarray) -> bool:
    return bool(len(groups)) and all(groups) and len(set(groups)) > 1


def _stratified(labels, groups, splits, views, spec):
    idx = np.arange(len(labels))
    try:
        tr, va = train_test_split(idx, test_size=spec.val_fraction, stratify=labels, random_state=spec.seed)
    except ValueError as e:
        raise ValueError(f"stratified split impossible ({e}); every class needs at least 2 videos, and the "
                         "validation share at least one video per class (raise --val-fraction)") from e
    return [Fold("stratified", np.sort(tr), np.sort(va))]


def _group(labels, groups, splits, views, spec):
    if not _has_groups(groups):
        raise ValueError("a grouped split needs a group (actor) for every video; this dataset gives none")
    gss = GroupShuffleSplit(n_splits=1, test_size=spec.val_fraction, random_state=spec.seed)
    tr, va = next(gss.split(labels, labels, groups))
    return [Fold("group", tr, va)]


def _auto(labels, groups, splits, views, spec):
    fn = _group if _has_groups(groups) else _stratified
    return fn(labels, groups, splits, views, spec)


def _kfold(labels, groups, splits, views, spec):
    if _has_groups(groups):
        cv = StratifiedGroupKFold(n_splits=spec.folds, shuffle=True, random_state=spec.seed)
        parts = cv.split(labels, labels, groups)
    else:
        parts = StratifiedKFold(n_splits=spec.folds, shuffle=True, random_state=spec.seed).split(labels, labels)
    return [Fold(f"fold{i}", tr, va) for i, (tr, va) in enumerate(parts)]


def _logo(labels, groups, splits, views, spec):
    if not _has_groups(groups):
        raise ValueError("leave-one-group-out needs a group (actor) for every video; this dataset gives none")
    return [Fold(f"leave-out-{groups[va[0]]}", tr, va) for tr, va in LeaveOneGroupOut().split(labels, labels, groups)]


def _official(labels, groups, splits, views, spec):
    """The publisher's lists. With a test list: train on train+val, validate on test (KTH's protocol);
    without one: train on train, validate on val."""
    splits = np.asarray(splits)
    if (splits == "test").any():
        tr, va = np.flatnonzero(np.isin(splits, ("train", "val", "validation"))), np.flatnonzero(splits == "test")
    else:
        tr, va = np.flatnonzero(splits == "train"), np.flatnonzero(np.isin(splits, ("val", "validation")))
    if not len(tr) or not len(va):
        raise ValueError("this dataset has no official train and val/test lists for these videos; use --split auto")
    return [Fold("official", tr, va)]


def _cross_view(labels, groups, splits, views, spec):
    views = np.asarray(views)
    if not all(views):
        raise ValueError("a cross-view split needs a camera view for every video; this dataset gives none")
    held = [spec.val_view] if spec.val_view else sorted(set(views))
    return [Fold(f"view-{v}", np.flatnonzero(views != v), np.flatnonzero(views == v)) for v in held]


PROTOCOLS = {
    "auto": _auto,  # grouped 70/30 when actors are known, else the paper's stratified 70/30
    "stratified": _stratified,
    "group": _group,
    "kfold": _kfold,
    "logo": _logo,
    "official": _official,
    "cross-view": _cross_view,
}


def make_folds(spec: SplitSpec, labels, groups=None, splits=None, views=None) -> list[Fold]:
    """Folds for `spec.protocol`; raises ValueError with the reason when the data cannot support it."""
    if spec.protocol not in PROTOCOLS:
        raise ValueError(f"unknown split protocol {spec.protocol!r}; choose one of {sorted(PROTOCOLS)}")
    n = len(labels)
    groups = np.asarray(groups if groups is not None else [""] * n)
    splits = np.asarray(splits if splits is not None else [""] * n)
    views = np.asarray(views if views is not None else [""] * n)
    folds = PROTOCOLS[spec.protocol](np.asarray(labels), groups, splits, views, spec)
    for f in folds:
        if np.intersect1d(f.train, f.val).size:
            raise AssertionError(f"fold {f.name}: a video is in both train and val")
        if _has_groups(groups) and set(groups[f.train]) & set(groups[f.val]) and spec.protocol in ("group", "logo", "auto"):
            raise AssertionError(f"fold {f.name}: a group is in both train and val")
    return folds


def few_shot(fold: Fold, labels, shots: int, seed: int) -> Fold:
    """Keep `shots` training videos per class (seeded); validation unchanged. Fewer if a class has fewer."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(fold.train[labels[fold.train] == c])[:shots] for c in np.unique(labels[fold.train])]
    return Fold(f"{fold.name}-{shots}shot", np.sort(np.concatenate(keep)), fold.val)


def unseen_classes(fold: Fold, labels, unseen: list[int]) -> Fold:
    """Zero-shot protocol: train on the other classes' training videos, validate on the unseen classes' videos."""
    labels = np.asarray(labels)
    held = np.isin(labels, unseen)
    train, val = fold.train[~held[fold.train]], fold.val[held[fold.val]]
    if not len(val):
        raise ValueError("no validation video of the held-out classes in this fold")
    return Fold(f"{fold.name}-unseen", train, val)
