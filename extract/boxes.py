"""One video's box arrays: a detector on every sampled frame, the flow inside each box, tracks across frames.

produce() feeds a BoxRecorder the frames in order (`frame`) and each flow field with the sampled
frame it starts from (`pair`); `arrays()` then gives the store's fixed-size box arrays
(fgm_common/store/layout.py). Slots past the boxes a frame has are invalid: zero boxes, class and
track -1, box_valid False, so every entry has the same K whatever it contains.
"""

from __future__ import annotations

import math

import numpy as np

from extract.detect import Boxes, Detector
from extract.flow import flow_histogram
from extract.tracks import link_tracks
from fgm_common.store import (BOX_CLASS, BOX_FLOW_HIST, BOX_SCORE, BOX_TRACK, BOX_TRACKS, BOX_VALID, BOXES,
                              PERSON_CLASS, PERSON_FRAMES)


def box_histograms(field: np.ndarray, xyxy: np.ndarray, bins: int) -> np.ndarray:
    """The flow histogram inside each box: field (h, w, 2) pixels, boxes (K, 4) normalised -> (K, 2 * bins) f32.

    Magnitudes stay in % of the whole frame's width (flow_histogram's unit), so a box's numbers
    compare with the frame's flow_hist. A box is widened to at least one flow pixel.
    """
    h, w = field.shape[:2]
    out = np.zeros((len(xyxy), 2 * bins), np.float32)
    for k, (x0, y0, x1, y1) in enumerate(xyxy):
        c0, r0 = min(int(x0 * w), w - 1), min(int(y0 * h), h - 1)
        c1, r1 = max(math.ceil(x1 * w), c0 + 1), max(math.ceil(y1 * h), r0 + 1)
        out[k] = flow_histogram(field[r0:r1, c0:c1], bins, frame_width=w)
    return out


def box_summary(arrays: dict[str, np.ndarray]) -> dict[str, int]:
    """The entry attrs of one video's box arrays: sampled frames holding a person box, distinct tracks stored."""
    valid = arrays[BOX_VALID]  # (T, K)
    person = valid & (arrays[BOX_CLASS] == PERSON_CLASS)  # (T, K)
    return {PERSON_FRAMES: int(person.any(1).sum()), BOX_TRACKS: int(np.unique(arrays[BOX_TRACK][valid]).size)}


class BoxRecorder:
    """Collects one video's boxes and box flow; `arrays()` -> the store's box arrays for its T frames and Tf pairs."""

    def __init__(self, detector: Detector, bins: int):
        self.detector, self.bins = detector, bins
        self.found: list[Boxes] = []  # one per sampled frame, in order
        self.hists: list[np.ndarray] = []  # one (k_t, 2 * bins) per flow pair, k_t = boxes of its first frame

    def frame(self, rgb: np.ndarray) -> None:
        """Detect in the next sampled frame (H, W, 3) uint8."""
        self.found.append(self.detector(rgb))

    def pair(self, field: np.ndarray, first: int) -> None:
        """The next flow field (h, w, 2), which starts at sampled frame `first` (already given to `frame`)."""
        self.hists.append(box_histograms(field, self.found[first].xyxy, self.bins))

    def arrays(self) -> dict[str, np.ndarray]:
        """{boxes (T, K, 4), box_score, box_class, box_valid, box_track (T, K), box_flow_hist (Tf, K, 2 * bins)}."""
        t, k = len(self.found), self.detector.top_k
        tracks = link_tracks(self.found)
        out = {BOXES: np.zeros((t, k, 4), np.float32), BOX_SCORE: np.zeros((t, k), np.float32),
               BOX_CLASS: np.full((t, k), -1, np.int16), BOX_VALID: np.zeros((t, k), bool),
               BOX_TRACK: np.full((t, k), -1, np.int32),
               BOX_FLOW_HIST: np.zeros((len(self.hists), k, 2 * self.bins), np.float32)}
        for i, (boxes, ids) in enumerate(zip(self.found, tracks)):
            n = min(len(boxes), k)
            out[BOXES][i, :n], out[BOX_SCORE][i, :n] = boxes.xyxy[:n], boxes.scores[:n]
            out[BOX_CLASS][i, :n], out[BOX_TRACK][i, :n] = boxes.classes[:n], ids[:n]
            out[BOX_VALID][i, :n] = True
        for i, hist in enumerate(self.hists):
            n = min(len(hist), k)
            out[BOX_FLOW_HIST][i, :n] = hist[:n]
        return out
