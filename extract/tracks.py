"""Boxes linked across frames into tracks: a track id per box, kept while the box overlaps its last place.

Greedy matching by intersection over union between consecutive frames: the best-overlapping pair
first, each box used once, pairs under `min_iou` never joined. A box left unmatched starts a new
track; a track not seen in a frame ends. Enough for the few people of an action clip, and what the
store's track arrays will be made with (issue 15).
"""

from __future__ import annotations

import numpy as np

from extract.detect import Boxes


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes a (N, 4) and b (M, 4), xyxy -> (N, M)."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)  # (N, M)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def link_tracks(frames: list[Boxes], min_iou: float = 0.3) -> list[np.ndarray]:
    """A track id (int64) per box of every frame, ids counted from 0 in order of first appearance."""
    ids: list[np.ndarray] = []
    next_id = 0
    prev: Boxes | None = None
    for boxes in frames:
        got = np.full(len(boxes), -1, np.int64)
        if prev is not None and len(prev) and len(boxes):
            overlap = iou(prev.xyxy, boxes.xyxy)  # (previous boxes, these boxes)
            for flat in np.argsort(-overlap, axis=None):
                i, j = np.unravel_index(flat, overlap.shape)
                if overlap[i, j] < min_iou:
                    break
                if got[j] == -1 and ids[-1][i] not in got:
                    got[j] = ids[-1][i]
        for j in np.flatnonzero(got == -1):
            got[j], next_id = next_id, next_id + 1
        ids.append(got)
        prev = boxes
    return ids
