"""Head-blend weights from held-out training videos: an inner split of the training fold, never the validation fold.

`BLENDS` names how a model's heads (train/parts/heads.py) make its prediction:
- "fused": the fused head alone (the paper's classifier);
- "inner": a scalar blend fitted on out-of-fold predictions. The training fold is split into
  INNER_FOLDS folds (stratified, or by group when its videos have groups, so that "held out" means
  what the outer protocol means); on each, a model with the same settings is trained on the rest
  and its heads score the held-out videos, so every training video gets a held-out prediction.
  Weights w_k > 0 (a share per head times a temperature) minimise the negative log-likelihood of
  sum_k w_k log_softmax(z_k) over them. A stream that does not generalise gets a share near 0.
  The model trained on the whole fold then predicts with these weights.
- "stack": the same held-out predictions fit a multinomial logistic regression from all heads'
  log-probabilities to the class (heads.HeadStacker; Wolpert's stacked generalisation), L2 strength
  STACK_C. The scalar weights are fitted too: they are what the report shows, and the prediction
  when some class has no held-out video (the stacker could never name it) or when the stacker,
  refitted without one inner fold's predictions, scores that fold worse than the scalar blend does
  (`stack_check`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.special import log_softmax
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

from fgm_common.console import console
from train.parts.heads import HEADS, HeadStacker, blend_logits, fused_only
from train.parts.probe import fit_softmax_probe
from train.fitting.splits import Fold

# Inner folds over the training fold (each training video is held out once); the ridge on the head
# shares' logits; the temperature's upper bound.
INNER_FOLDS = 3
SHARE_RIDGE = 1e-3
MAX_WEIGHT = 10.0
# Below this many training videos no inner split is made: the fused head alone predicts.
MIN_INNER_VIDEOS = 4
# Inverse L2 strength of the stacker (as scikit-learn's C). Chosen among 0.1, 1 and 10 on the two
# development sets of docs/design-choices.md ("The appearance probe and the stacked blend").
STACK_C = 0.1


def inner_folds(fold: Fold, labels: np.ndarray, groups: np.ndarray, seed: int, k: int = INNER_FOLDS) -> list[Fold]:
    """k folds over fold.train alone (dataset indices), each training video held out once; fold.val is never touched.

    By group when the training videos carry at least two groups (whole persons held out, as in the
    outer protocol; fewer folds when there are fewer groups), else stratified by class (plain
    k-fold when a class has fewer than k videos).
    """
    train = np.asarray(fold.train)
    g, y = np.asarray(groups)[train], np.asarray(labels)[train]
    if all(g) and len(set(g)) >= 2:
        parts = GroupKFold(n_splits=min(k, len(set(g)))).split(train, groups=g)
    elif np.bincount(y).max() >= k and np.bincount(y)[np.unique(y)].min() >= k:
        parts = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(train, y)
    else:
        parts = KFold(n_splits=min(k, len(train)), shuffle=True, random_state=seed).split(train)
    return [Fold(f"{fold.name}-inner{i}", np.sort(train[tr]), np.sort(train[va])) for i, (tr, va) in enumerate(parts)]


def _log_probs(head_logits: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """The heads present, in HEADS order, and their log-probabilities (K, N, C) float64, floored at -1e4.

    The floor keeps a head masked to -inf (zero-shot protocol) from making an objective NaN.
    """
    names = [n for n in HEADS if n in head_logits]
    logp = np.stack([log_softmax(np.asarray(head_logits[n], dtype=np.float64), axis=1) for n in names])
    return names, np.maximum(logp, -1e4)


def fit_blend(head_logits: dict[str, np.ndarray], labels: np.ndarray) -> np.ndarray:
    """Weights (len(HEADS),) = tau * share minimising held-out NLL of sum_k w_k log_softmax(z_k); logits (N, C) each.

    The shares (a softmax over the heads present) compete: a head that predicts the held-out videos
    better takes share from the others, so on held-out videos that one head already gets right a
    noisy head is pushed out instead of kept by chance. tau in [1, MAX_WEIGHT] is a temperature; a
    small ridge on the shares' logits keeps equal shares where the videos say nothing. Heads absent
    from `head_logits` get weight 0.
    """
    names, logp = _log_probs(head_logits)  # (K, N, C)
    rows, y = np.arange(len(labels)), np.asarray(labels)

    def weights(x: np.ndarray) -> np.ndarray:
        share = np.exp(x[:-1] - x[:-1].max())
        return np.exp(x[-1]) * share / share.sum()  # (K,)

    def objective(x: np.ndarray) -> float:
        z = np.tensordot(weights(x), logp, axes=1)  # (N, C)
        return float(-log_softmax(z, axis=1)[rows, y].mean() + SHARE_RIDGE * (x[:-1] ** 2).sum())

    res = minimize(objective, np.zeros(len(names) + 1), method="L-BFGS-B",
                   bounds=[(-20.0, 20.0)] * len(names) + [(0.0, float(np.log(MAX_WEIGHT)))])
    fitted = dict(zip(names, weights(res.x)))
    return np.array([fitted.get(n, 0.0) for n in HEADS])


def fit_stack(head_logits: dict[str, np.ndarray], labels: np.ndarray, weights: np.ndarray,
              c: float = STACK_C) -> tuple[np.ndarray, np.ndarray]:
    """Stacker weight (C, len(HEADS), C) and bias (C,) from held-out logits {head: (N, C)}, labels (N,), scalar weights.

    Multinomial logistic regression on the heads' log-probabilities side by side (N, K * C), fitted
    as a correction to the scalar blend `weights` (len(HEADS),): the ridge pulls the map towards
    weight[:, k] = w_k I, so where the held-out videos say little the stacker predicts what the
    scalar blend does (a noise head keeps its near-zero weight). Heads absent get weight 0.
    """
    names, logp = _log_probs(head_logits)  # (K, N, C)
    n_classes = logp.shape[2]
    x = torch.as_tensor(np.concatenate(list(logp), axis=1))  # (N, K * C)
    base = np.concatenate([weights[HEADS.index(n)] * np.eye(n_classes) for n in names], axis=1)  # (C, K * C)
    offset = x @ torch.as_tensor(base).T  # (N, C): the scalar blend's logits
    w, b = fit_softmax_probe(x, torch.as_tensor(np.asarray(labels)), n_classes, c=c, offset=offset)
    full = base + w.double().numpy()  # (C, K * C)
    weight = np.zeros((n_classes, len(HEADS), n_classes), dtype=np.float32)
    for j, name in enumerate(names):
        weight[:, HEADS.index(name)] = full[:, j * n_classes:(j + 1) * n_classes]
    return weight, b.numpy()


@dataclass(frozen=True)
class Blend:
    """How one fold's model predicts: scalar head weights (len(HEADS),), and the stacker's (weight, bias) or None."""

    weights: np.ndarray
    stack: tuple[np.ndarray, np.ndarray] | None = None


@dataclass(frozen=True)
class BlendContext:
    """What a blend needs to weigh one fold's heads: the features, the fold, and how to train a model on a fold."""

    labels: np.ndarray
    groups: np.ndarray
    fold: Fold
    seed: int
    fit_heads: object  # (Fold, checkpoint Path) -> {head: (len(fold.val), C) logits}: trains on fold.train, scores fold.val
    checkpoint_dir: Path


def _fused_only(ctx: BlendContext) -> Blend:
    return Blend(fused_only().numpy())


def _held_out(ctx: BlendContext) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray] | None:
    """Each training video's held-out head logits {head: (Ntr, C)}, label and inner fold (Ntr,) each; None if too few."""
    if len(ctx.fold.train) < MIN_INNER_VIDEOS:
        console.print(f"[yellow]{ctx.fold.name}: {len(ctx.fold.train)} training videos are too few to hold some "
                      f"out (need {MIN_INNER_VIDEOS}); predicting with the fused head alone[/yellow]")
        return None
    held, logits = [], {}
    for i, inner in enumerate(inner_folds(ctx.fold, ctx.labels, ctx.groups, ctx.seed)):
        for head, z in ctx.fit_heads(inner, ctx.checkpoint_dir / f"inner{i}" / "checkpoint.pt").items():
            logits.setdefault(head, []).append(z)
        held.append(inner.val)
    part = np.concatenate([np.full(len(v), i) for i, v in enumerate(held)])
    return {h: np.concatenate(zs) for h, zs in logits.items()}, np.asarray(ctx.labels)[np.concatenate(held)], part


def _nll(z: np.ndarray, y: np.ndarray) -> float:
    return float(-log_softmax(z, axis=1)[np.arange(len(y)), y].mean())


def stack_check(head_logits: dict[str, np.ndarray], labels: np.ndarray, part: np.ndarray) -> tuple[float, float]:
    """Held-out NLL of (scalar blend, stacker), each fitted on all inner folds but one and scored on that one.

    The held-out predictions are all the blend has; this splits them once more by the inner fold
    they came from (by person, where the outer protocol is), so the stacker is used only where it
    predicts a fold it was not fitted on better than the scalar blend does.
    """
    n_classes = next(iter(head_logits.values())).shape[1]
    scalar = stacked = 0.0
    for i in np.unique(part):
        fit, out = part != i, part == i
        w = fit_blend({n: z[fit] for n, z in head_logits.items()}, labels[fit])
        stacker = HeadStacker(n_classes).double()  # float64, as the fits
        weight, bias = fit_stack({n: z[fit] for n, z in head_logits.items()}, labels[fit], w)
        stacker.set(torch.as_tensor(weight), torch.as_tensor(bias))
        held = {n: torch.as_tensor(np.asarray(z[out], dtype=np.float64)) for n, z in head_logits.items()}
        scalar += _nll(blend_logits(held, torch.as_tensor(w)).numpy(), labels[out]) * out.sum()
        stacked += _nll(stacker(held).numpy(), labels[out]) * out.sum()
    return scalar / len(labels), stacked / len(labels)


def _inner_split(ctx: BlendContext) -> Blend:
    found = _held_out(ctx)
    return _fused_only(ctx) if found is None else Blend(fit_blend(*found[:2]))


def _stacked(ctx: BlendContext) -> Blend:
    found = _held_out(ctx)
    if found is None:
        return _fused_only(ctx)
    logits, labels, part = found
    weights, n_classes = fit_blend(logits, labels), next(iter(logits.values())).shape[1]
    missing = n_classes - len(np.unique(labels))
    if missing:
        console.print(f"[yellow]{ctx.fold.name}: {missing} classes have no held-out training video, so a stacker "
                      "could never name them; predicting with the scalar blend[/yellow]")
        return Blend(weights)
    scalar_nll, stack_nll = stack_check(logits, labels, part)
    if stack_nll >= scalar_nll:
        console.print(f"{ctx.fold.name}: scalar blend kept (held-out NLL {scalar_nll:.3f}, stacker {stack_nll:.3f})")
        return Blend(weights)
    return Blend(weights, fit_stack(logits, labels, weights))


# name -> (BlendContext -> Blend)
BLENDS = {"fused": _fused_only, "inner": _inner_split, "stack": _stacked}
