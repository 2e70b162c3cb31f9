"""Track slots: known answers for ranking, gaps and invalid boxes; each pair's first frame; loading and refusal."""

from __future__ import annotations

import numpy as np
import pytest

from fgm_common.config import DetectConfig, ExtractConfig, FlowConfig
from fgm_common.datasets import get_dataset
from fgm_common.store import (BOX_CLASS, BOX_FLOW_HIST, BOX_SCORE, BOX_TRACK, BOX_VALID, BOXES, FRAME_HEIGHT,
                              FRAME_WIDTH, FeatureStore, StoreError)
from tests.train.box_helpers import BOX_SLOTS
from train.fitting.data import load_features, region_arrays
from train.fitting.regions import require_boxes, track_slots
from train.parts.regions import (REGION_ASPECT, REGION_BOX, REGION_HIST, REGION_KEYS, REGION_PERSON, REGION_SEEN,
                                  REGION_VALID)

HIST = 2  # histogram width of the hand-made arrays


def box_arrays(frames: list[list[tuple]], k: int) -> dict[str, np.ndarray]:
    """Store box arrays from frames of (track, class, score, xyxy[, valid]) rows, slot order as given.

    box_flow_hist[t, j] is 10 * t + j in every bin, so a test can tell which box a slot took.
    """
    tf = len(frames)
    which = (10 * np.arange(tf)[:, None] + np.arange(k)).astype(np.float32)  # (Tf, K)
    out = {BOXES: np.zeros((tf, k, 4), np.float32), BOX_SCORE: np.zeros((tf, k), np.float32),
           BOX_CLASS: np.full((tf, k), -1, np.int16), BOX_VALID: np.zeros((tf, k), bool),
           BOX_TRACK: np.full((tf, k), -1, np.int32),
           BOX_FLOW_HIST: np.repeat(which[..., None], HIST, -1)}
    for t, rows in enumerate(frames):
        for j, (track, cls, score, xyxy, *valid) in enumerate(rows):
            out[BOX_TRACK][t, j], out[BOX_CLASS][t, j], out[BOX_SCORE][t, j] = track, cls, score
            out[BOXES][t, j], out[BOX_VALID][t, j] = xyxy, valid[0] if valid else True
    return out


def test_two_tracks_one_with_a_gap():
    frames = [[(0, 0, 0.9, (0.0, 0.0, 0.2, 0.4)), (1, 0, 0.8, (0.5, 0.5, 0.7, 0.9))],
              [(0, 0, 0.9, (0.1, 0.0, 0.3, 0.4))],  # track 1 missing here
              [(1, 0, 0.95, (0.5, 0.5, 0.9, 0.9)), (0, 0, 0.7, (0.2, 0.0, 0.4, 0.4))]]  # order swapped
    got = track_slots(box_arrays(frames, k=2))
    assert set(got) == set(REGION_KEYS) - {REGION_ASPECT}  # the aspect is the entry's, added on loading
    # both persons; track 0 scores 2.5 in all, track 1 1.75: slot 0 is track 0
    assert got[REGION_SEEN].tolist() == [[True, True], [True, False], [True, True]]
    assert got[REGION_VALID].all()  # the gap is between two boxes of track 1: filled
    np.testing.assert_allclose(got[REGION_BOX][:, 0],
                               [[0.1, 0.2, 0.2, 0.4], [0.2, 0.2, 0.2, 0.4], [0.3, 0.2, 0.2, 0.4]], atol=1e-6)
    np.testing.assert_allclose(got[REGION_BOX][:, 1], [[0.6, 0.7, 0.2, 0.4], [0.65, 0.7, 0.3, 0.4],
                                                       [0.7, 0.7, 0.4, 0.4]], atol=1e-6)  # halfway in the gap
    assert got[REGION_HIST][:, 0, 0].tolist() == [0, 10, 21]  # the box of track 0 wherever it sits
    assert got[REGION_HIST][:, 1, 0].tolist() == [1, 0, 20]  # 0 in the gap: nothing was measured there
    assert got[REGION_PERSON].tolist() == [1.0, 1.0]
    assert got[REGION_HIST].dtype == got[REGION_BOX].dtype == np.float32 and got[REGION_VALID].dtype == bool


def test_a_track_is_interpolated_only_between_its_first_and_last_box():
    box = lambda x: (x, 0.2, x + 0.2, 0.6)  # noqa: E731
    frames = [[], [(4, 0, 0.9, box(0.1))], [], [], [(4, 0, 0.9, box(0.4))], []]
    got = track_slots(box_arrays(frames, k=1))
    assert got[REGION_SEEN][:, 0].tolist() == [False, True, False, False, True, False]
    assert got[REGION_VALID][:, 0].tolist() == [False, True, True, True, True, False]
    np.testing.assert_allclose(got[REGION_BOX][:, 0, 0], [0, 0.2, 0.3, 0.4, 0.5, 0], atol=1e-6)  # cx, linear
    assert not got[REGION_BOX][[0, 5]].any()


def test_persons_come_before_objects_and_invalid_boxes_are_ignored():
    box = (0.1, 0.1, 0.3, 0.5)
    frames = [[(5, 3, 0.99, box), (7, 0, 0.3, box)],
              [(5, 3, 0.99, box), (7, 0, 0.3, box, False)]]  # track 7's box here is marked invalid
    got = track_slots(box_arrays(frames, k=3))
    assert got[REGION_PERSON].tolist() == [1.0, 0.0, 0.0]  # the low-scored person first, then the object
    assert got[REGION_VALID].tolist() == [[True, True, False], [False, True, False]]
    assert got[REGION_HIST][:, :, 0].tolist() == [[1, 0, 0], [0, 10, 0]]
    assert not got[REGION_BOX][:, 2].any() and not got[REGION_HIST][:, 2].any()  # an empty slot is all zeros


def test_tracks_past_k_are_dropped_by_summed_score_then_id():
    box = (0.0, 0.0, 0.5, 0.5)
    frames = [[(1, 0, 0.6, box), (0, 0, 0.5, box)], [(2, 0, 0.6, box)]]
    got = track_slots(box_arrays(frames, k=2))  # three tracks, two slots: track 0 (0.5 in all) is dropped
    assert got[REGION_VALID].tolist() == [[True, False], [False, True]]  # tracks 1, 2 (equal: lower id first)
    assert got[REGION_HIST][:, :, 0].tolist() == [[0, 0], [0, 10]]
    empty = track_slots(box_arrays([[], []], k=2))
    assert not empty[REGION_VALID].any() and not empty[REGION_PERSON].any()


def test_each_flow_step_takes_its_pairs_first_frame(tmp_path):
    # sampled pairs: 3 frames, 2 pairs; pair t begins at frame t, so frame 2's box belongs to no pair
    config = ExtractConfig(num_frames=3, flow=FlowConfig(pairs="sampled", hist_bins=1),
                           detect=DetectConfig("hog", top_k=1))
    store = FeatureStore.create_or_open(str(tmp_path / "store"), config, {"note": "test"})
    arrays = box_arrays([[(0, 0, 0.9, (0.1 * f, 0.0, 0.1 * f + 0.2, 0.2))] for f in range(3)], k=1)
    arrays[BOX_FLOW_HIST] = arrays[BOX_FLOW_HIST][:2]  # one row per pair
    store.write_entry("v.mp4", arrays, {})
    got = region_arrays(store, "v.mp4", flow_steps=2)
    np.testing.assert_allclose(got[REGION_BOX][:, 0, 0], [0.1, 0.2])  # cx of frames 0 and 1
    upsampled = region_arrays(store, "v.mp4", flow_steps=4)  # steps repeat pairs, boxes follow their pair
    np.testing.assert_allclose(upsampled[REGION_BOX][:, 0, 0], [0.1, 0.1, 0.2, 0.2])
    assert upsampled[REGION_HIST][:, 0, 0].tolist() == [0, 0, 10, 10]


def test_load_features_reads_slots_with_k_from_the_store(box_store, box_fs, fs):
    n, tf = len(box_fs), box_fs.dims["n_flow"]
    hist = box_fs.dims["flow_hist_dim"]
    assert box_fs.dims["n_regions"] == BOX_SLOTS and fs.dims["n_regions"] == 0
    assert tuple(box_fs.tensors[REGION_HIST].shape) == (n, tf, BOX_SLOTS, hist)
    assert tuple(box_fs.tensors[REGION_BOX].shape) == (n, tf, BOX_SLOTS, 4)
    assert tuple(box_fs.tensors[REGION_PERSON].shape) == (n, BOX_SLOTS)
    metas = {e.key: e.meta for e in FeatureStore.open(box_store).entries()}
    want = [metas[k][FRAME_WIDTH] / metas[k][FRAME_HEIGHT] for k in box_fs.keys]  # each video's frame aspect
    np.testing.assert_allclose(box_fs.tensors[REGION_ASPECT].numpy(), want, rtol=1e-6)
    batch = box_fs.batch(np.arange(2))
    assert set(batch[REGION_VALID].unique().tolist()) == {0.0, 1.0}  # carried as float, some slots empty
    assert box_fs.keys == fs.keys and (box_fs.labels == fs.labels).all()


def test_a_store_without_boxes_is_refused_with_what_to_do(tiny_store):
    with pytest.raises(StoreError, match="--detector hog") as err:
        load_features(FeatureStore.open(tiny_store), get_dataset("folder"), regions=True)
    assert tiny_store in str(err.value) and "new store" in str(err.value)
    with pytest.raises(StoreError, match="--variants full,flow_only"):
        require_boxes(ExtractConfig(), "STORE", "variant(s) full_regions", ("full", "flow_only"))
    require_boxes(ExtractConfig(detect=DetectConfig("hog")), "STORE", "anyone")  # boxes: no refusal
