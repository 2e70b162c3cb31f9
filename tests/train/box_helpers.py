"""Fake but well-formed box arrays (fgm_common/store/layout.py BOX_ARRAYS) for the store with boxes in conftest.py."""

from __future__ import annotations

import numpy as np

from fgm_common.store import BOX_CLASS, BOX_FLOW_HIST, BOX_SCORE, BOX_TRACK, BOX_VALID, BOXES

# K of the store with boxes: not DetectConfig's default top_k, so a test can tell K read from the store.
BOX_SLOTS = 3


def fake_box_arrays(frames: int, pairs: int, k: int, hist_dim: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random but well-formed box arrays of one video (fgm_common/store/layout.py), best first per frame.

    Three tracks: 0 a person in every frame, 1 an object (class 2) missing from frame 1, 2 a person
    from frame 2 on; with k = 3 some frames hold fewer boxes than slots. Invalid slots are zero,
    class and track -1; box_flow_hist rows are the boxes of each pair's first frame.
    """
    tracks = [(0, 0, range(frames)), (1, 2, [f for f in range(frames) if f != 1]), (2, 0, range(2, frames))]
    out = {BOXES: np.zeros((frames, k, 4), np.float32), BOX_SCORE: np.zeros((frames, k), np.float32),
           BOX_CLASS: np.full((frames, k), -1, np.int16), BOX_VALID: np.zeros((frames, k), bool),
           BOX_TRACK: np.full((frames, k), -1, np.int32)}
    for f in range(frames):
        here = [(rng.random(), t, c) for t, c, seen in tracks if f in seen]
        for slot, (score, t, c) in enumerate(sorted(here, reverse=True)[:k]):  # best first
            x0, y0 = rng.uniform(0, 0.5, 2)
            out[BOXES][f, slot] = (x0, y0, x0 + rng.uniform(0.1, 0.5), y0 + rng.uniform(0.1, 0.5))
            out[BOX_SCORE][f, slot], out[BOX_CLASS][f, slot], out[BOX_TRACK][f, slot] = score, c, t
            out[BOX_VALID][f, slot] = True
    out[BOX_FLOW_HIST] = rng.random((pairs, k, hist_dim)).astype(np.float32) * out[BOX_VALID][:pairs, :, None]
    return out
