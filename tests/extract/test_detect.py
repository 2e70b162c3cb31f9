"""Detectors (`DETECTORS`): every one gives well-formed boxes; HOG's person box follows a person moving right."""

from __future__ import annotations

import numpy as np
import pytest

from extract.detect import DETECTORS, PERSON, make_detector
from extract.errors import DetectorWeightsError
from extract.sampling import uniform_indices
from extract.video import open_source
from tests.extract.weights_helpers import hub_offline_env


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_detector_gives_well_formed_boxes(name, monkeypatch):
    hub_offline_env(monkeypatch, True)  # a test never downloads
    try:
        detector = make_detector(name)
    except DetectorWeightsError as e:  # default weights not here offline, or the optional extra missing
        pytest.skip(str(e))
    for frame in (np.full((120, 160, 3), 128, np.uint8), np.random.default_rng(0).integers(0, 256, (240, 320, 3),
                                                                                          dtype=np.uint8)):
        found = detector(frame)
        k = len(found)
        assert k <= detector.top_k
        assert found.xyxy.shape == (k, 4) and found.scores.shape == found.classes.shape == (k,)
        assert found.xyxy.dtype == np.float32 and ((found.xyxy >= 0) & (found.xyxy <= 1)).all()
        assert (found.xyxy[:, 2:] >= found.xyxy[:, :2]).all()
        assert np.all(np.diff(found.scores) <= 0)  # best first
    assert len(detector(np.full((120, 160, 3), 128, np.uint8))) == 0  # nothing in a flat grey frame


def test_an_unknown_detector_names_the_choices():
    with pytest.raises(ValueError, match="hog"):
        make_detector("yolo-9000")


def test_hog_person_box_moves_right_with_the_person(shared_data):
    """Known answer on real people (KTH): the frame's content moved right by a tenth of its width moves
    the best person box's centre by about a tenth."""
    detector = make_detector("hog")
    moves = []
    for video in sorted((shared_data / "kth_few").rglob("*.avi")):
        source = open_source(video)
        for frame in source.iter_frames(uniform_indices(source.probe().n_frames, 8)):
            rgb = frame.rgb
            shift = rgb.shape[1] // 10
            moved = np.concatenate([np.repeat(rgb[:, :1], shift, 1), rgb[:, :-shift]], 1)  # edge column repeated
            before, after = detector(rgb), detector(moved)
            if len(before) and len(after):
                assert before.classes[0] == after.classes[0] == PERSON
                moves.append(after.xyxy[0, [0, 2]].mean() - before.xyxy[0, [0, 2]].mean())
    assert len(moves) >= 5, f"HOG found a person in both frames of only {len(moves)} KTH pairs"
    assert 0.07 < np.median(moves) < 0.13, moves
