"""Tracks: boxes that keep overlapping keep their id; new boxes get new ids; IoU known answers."""

from __future__ import annotations

import numpy as np

from extract.detect import PERSON, Boxes
from extract.tracks import iou, link_tracks


def boxes(*xyxy: tuple[float, float, float, float]) -> Boxes:
    n = len(xyxy)
    return Boxes(np.asarray(xyxy, np.float32).reshape(n, 4), np.ones(n, np.float32), np.full(n, PERSON))


def test_iou_known_answers():
    a = np.array([[0.0, 0.0, 0.2, 0.2]])
    b = np.array([[0.0, 0.0, 0.2, 0.2], [0.1, 0.0, 0.3, 0.2], [0.5, 0.5, 0.6, 0.6]])
    np.testing.assert_allclose(iou(a, b), [[1.0, 1 / 3, 0.0]])  # half overlap: 0.02 / 0.06


def test_two_people_moving_right_keep_their_ids_in_any_order():
    frames = [boxes((0.1 + 0.02 * t, 0.2, 0.3 + 0.02 * t, 0.9), (0.6 - 0.02 * t, 0.2, 0.8 - 0.02 * t, 0.9))
              for t in range(5)]
    frames[3] = Boxes(frames[3].xyxy[::-1].copy(), frames[3].scores, frames[3].classes)  # listed the other way
    ids = link_tracks(frames)
    assert [list(i) for i in ids] == [[0, 1], [0, 1], [0, 1], [1, 0], [0, 1]]


def test_a_box_that_appears_elsewhere_starts_a_track_and_a_gap_ends_none():
    """Frames without a box (a detector's misses) do not end a track: the box back in its place keeps its id."""
    frames = [boxes((0.1, 0.1, 0.3, 0.5)), boxes((0.12, 0.1, 0.32, 0.5), (0.7, 0.1, 0.9, 0.5)),
              Boxes.empty(), Boxes.empty(), boxes((0.7, 0.1, 0.9, 0.5), (0.14, 0.1, 0.34, 0.5)),
              boxes((0.4, 0.1, 0.6, 0.5))]
    assert [list(i) for i in link_tracks(frames)] == [[0], [0, 1], [], [], [1, 0], [2]]


def test_a_track_takes_one_box_and_the_better_overlap_wins():
    """Two boxes over one track's place: the one overlapping it more continues it, the other starts a track."""
    frames = [boxes((0.1, 0.1, 0.3, 0.5)), boxes((0.15, 0.1, 0.35, 0.5), (0.11, 0.1, 0.31, 0.5))]
    assert [list(i) for i in link_tracks(frames)] == [[0], [1, 0]]
