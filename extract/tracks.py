"""Boxes linked across frames into tracks: a track id per box, kept while the box overlaps the track's last place.

Greedy matching by intersection over union of each box with every track's latest box: the
best-overlapping pair first, each box and track used once, pairs under `min_iou` never joined. A box
left unmatched starts a new track. A track outlives frames where it has no box: a detector misses a
person in runs of frames (HOG in a pose its pedestrian model does not know, such as arms overhead),
and ending the track there split one person into several tracks (docs/design-choices.md, "Tracks").
Enough for the few people of an action clip; `TRACKER` says in the store which rule linked its tracks.
"""

from __future__ import annotations

import numpy as np

from extract.detect import Boxes


MIN_IOU = 0.3
# Recorded beside the detector's identity (weights/detector-<name>.json): how box_track was made.
TRACKER = f"greedy IoU >= {MIN_IOU} against each track's latest box, tracks kept through frames without a box"


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes a (N, 4) and b (M, 4), xyxy -> (N, M)."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)  # (N, M)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def link_tracks(frames: list[Boxes], min_iou: float = MIN_IOU) -> list[np.ndarray]:
    """A track id (int64) per box of every frame, ids counted from 0 in order of first appearance."""
    ids: list[np.ndarray] = []
    last: list[np.ndarray] = []  # track id -> its latest box (4,)
    for boxes in frames:
        got = np.full(len(boxes), -1, np.int64)
        if last and len(boxes):
            overlap = iou(np.stack(last), boxes.xyxy)  # (tracks so far, these boxes)
            taken = np.zeros(len(last), bool)
            for flat in np.argsort(-overlap, axis=None, kind="stable"):
                t, j = np.unravel_index(flat, overlap.shape)
                if overlap[t, j] < min_iou:
                    break
                if got[j] == -1 and not taken[t]:
                    got[j], taken[t] = t, True
        for j in np.flatnonzero(got == -1):
            got[j] = len(last)
            last.append(boxes.xyxy[j])
        for j, t in enumerate(got):
            last[t] = boxes.xyxy[j]
        ids.append(got)
    return ids
