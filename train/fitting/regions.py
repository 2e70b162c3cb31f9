"""A video's tracked boxes as K track slots per flow step (numpy), and the refusal of a store without boxes.

The store keeps, per sampled frame, the detector's top K boxes best first, each with a track id
(fgm_common/store/layout.py: BOX_ARRAYS). A model wants the same track in the same place at every
step, so `track_slots` ranks the video's tracks and gives slot s to track s for the whole video.
"""

from __future__ import annotations

import numpy as np

from fgm_common.config import ExtractConfig
from fgm_common.store import (BOX_CLASS, BOX_FLOW_HIST, BOX_SCORE, BOX_TRACK, BOX_VALID, BOXES, PERSON_CLASS,
                              StoreError)
from train.parts.regions import BOXES_HINT, REGION_BOX, REGION_HIST, REGION_PERSON, REGION_SEEN, REGION_VALID


def require_boxes(config: ExtractConfig, where: str, who: str, others: tuple[str, ...] = ()) -> None:
    """StoreError, saying what to do, unless the store (made with `config`, at `where`) has box arrays.

    `who` names what reads the boxes; `others`, the variants that could run without them.
    """
    if config.detect.enabled:
        return
    rest = f"; or run the others: --variants {','.join(others)}" if others else ""
    raise StoreError(f"{who} read(s) tracked boxes of people and objects (region motion tokens), which {where} "
                     f"does not hold: it was made without a detector. To train or predict with them, {BOXES_HINT}"
                     + rest)


def track_slots(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One video's box arrays at its flow steps -> K track slots: region_hist (Tf, K, Hh) f32,
    region_box (Tf, K, 4) f32 (cx, cy, w, h), region_valid and region_seen (Tf, K) bool, region_person (K,) f32.

    `arrays`: the store's BOX_ARRAYS, one row per flow step (boxes (Tf, K, 4) xyxy, box_score,
    box_class, box_valid, box_track (Tf, K), box_flow_hist (Tf, K, Hh)), the boxes being those of
    each pair's first frame. Tracks (by box_track id, valid boxes only) are ranked persons first
    (a track is a person when at least half of its boxes are), then by summed score over the steps,
    then by id; slot s holds track s's box at each step where it has one (its best-scored, should
    it have two; region_seen there). Between two of its boxes, the slot's box is interpolated
    linearly (cx, cy, w, h), valid but not seen, its histogram zero: a detector loses a person in
    the poses a gesture passes through (HOG with arms overhead), and those steps are where the
    gesture is. Before a track's first box and after its last the slot is invalid (all zeros): a
    person who has not come or has gone is not guessed. Tracks past the K-th are dropped.
    """
    xyxy, score, track, hist = arrays[BOXES], arrays[BOX_SCORE], arrays[BOX_TRACK], arrays[BOX_FLOW_HIST]
    tf, k = score.shape
    live = arrays[BOX_VALID].astype(bool) & (track >= 0)  # (Tf, K)

    def rank(t: int) -> tuple:
        mine = live & (track == t)  # (Tf, K)
        person = np.mean(arrays[BOX_CLASS][mine] == PERSON_CLASS) >= 0.5
        return (not person, -float(score[mine].sum()), t)

    ranked = sorted((int(t) for t in np.unique(track[live])), key=rank)[:k]
    cxcywh = np.concatenate([(xyxy[..., :2] + xyxy[..., 2:]) / 2, xyxy[..., 2:] - xyxy[..., :2]], -1)  # (Tf, K, 4)
    out = {REGION_HIST: np.zeros((tf, k, hist.shape[-1]), np.float32), REGION_BOX: np.zeros((tf, k, 4), np.float32),
           REGION_VALID: np.zeros((tf, k), bool), REGION_SEEN: np.zeros((tf, k), bool),
           REGION_PERSON: np.zeros(k, np.float32)}
    steps = np.arange(tf)
    for s, t in enumerate(ranked):
        mine = live & (track == t)  # (Tf, K)
        has = mine.any(1)  # (Tf,)
        pick = np.where(mine, score, -np.inf).argmax(1)  # (Tf,) the track's box at each step
        out[REGION_SEEN][:, s] = has
        out[REGION_BOX][has, s] = cxcywh[steps[has], pick[has]]
        out[REGION_HIST][has, s] = hist[steps[has], pick[has]]
        out[REGION_PERSON][s] = not rank(t)[0]
        seen = np.flatnonzero(has)  # (n,) a track has at least one box
        first, last = seen[0], seen[-1]
        gaps = first + np.flatnonzero(~has[first:last + 1])  # steps between its first and last box
        for c in range(4):
            out[REGION_BOX][gaps, s, c] = np.interp(gaps, seen, out[REGION_BOX][seen, s, c])
        out[REGION_VALID][first:last + 1, s] = True
    return out
