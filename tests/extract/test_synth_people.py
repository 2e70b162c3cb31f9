"""fgm-synth --task people: arm gestures of a drawn person beside a moving disk; mirrored pairs; HOG finds the person."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from extract.detect import make_detector
from extract.sampling import uniform_indices
from extract.synth import CLASS_DESCRIPTIONS, PEOPLE_CLASSES, SynthConfig, clip_rng, render_clip_with_track
from extract.synth_cli import app
from extract.synth_people import render_person_clip

SIZE, N = 96, 30


def clip(label: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return render_person_clip(label, np.random.default_rng(seed), SIZE, N)


@pytest.mark.parametrize("label", PEOPLE_CLASSES)
def test_every_gesture_renders_the_same_clip_from_the_same_seed(label):
    frames, centre = clip(label)
    assert frames.shape == (N, SIZE, SIZE, 3) and frames.dtype == np.uint8 and centre.shape == (N, 2)
    assert np.array_equal(frames, clip(label)[0]) and not np.array_equal(frames, clip(label, 1)[0])
    assert len(CLASS_DESCRIPTIONS[label]) == 2
    assert np.abs(np.diff(frames.astype(np.int16), axis=0)).mean() > 1  # something moves


@pytest.mark.parametrize("side", ["raise", "wave"])
def test_a_left_clip_is_the_right_clip_mirrored(side):
    """Known answer: the same draws give the left member as the right member flipped left to right."""
    right, right_centre = clip(f"right_arm_{side}")
    left, left_centre = clip(f"left_arm_{side}")
    assert np.array_equal(left, right[:, :, ::-1])
    np.testing.assert_allclose(left_centre[:, 0], SIZE - 1 - right_centre[:, 0])


def test_sideways_and_forwards_differ_only_in_the_arms():
    """The same draws for both: every pixel that differs lies within an arm's reach of the person, above the hips."""
    sideways, centre = clip("arms_sideways")
    forward, _ = clip("arms_forward")
    t, rows, cols = np.nonzero(np.abs(sideways.astype(np.int16) - forward.astype(np.int16)).max(-1) > 0)
    assert len(t) > 0
    # body unit u <= 0.7 * SIZE / 8; an arm reaches 3.7 u sideways from the midline, down to 0.4 u below the centre
    assert np.abs(cols - centre[0, 0]).max() <= 0.33 * SIZE + 2
    assert rows.max() <= centre[0, 1] + 0.04 * SIZE + 2


def test_hog_finds_the_drawn_person():
    """The set exists to test region tokens: OpenCV's HOG must box the person, not the disk (2 clips a class, 8 frames)."""
    detector = make_detector("hog")
    on = total = 0
    for label in PEOPLE_CLASSES:
        for index in range(2):
            frames, centre = render_clip_with_track(label, clip_rng(0, label, index),
                                                    SynthConfig(task="people", size=160))
            for t in uniform_indices(len(frames), 8):
                found, total = detector(frames[t]), total + 1
                if len(found):
                    x0, y0, x1, y1 = found.xyxy[0] * 160
                    on += bool(x0 < centre[t, 0] < x1 and y0 < centre[t, 1] < y1)
    assert on >= 0.9 * total, f"the best box holds the person in {on} of {total} frames"


def test_cli_writes_a_people_set(tmp_path):
    result = CliRunner().invoke(app, [str(tmp_path / "p"), "--task", "people", "--videos-per-class", "1", "--size",
                                      "64", "--classes", "arms_sideways,left_arm_wave"])
    assert result.exit_code == 0, result.output
    assert sorted(p.parent.name for p in (tmp_path / "p").rglob("*.mp4")) == ["arms_sideways", "left_arm_wave"]
    descriptions = json.loads((tmp_path / "p" / "descriptions.json").read_text())
    assert descriptions["left_arm_wave"] == list(CLASS_DESCRIPTIONS["left_arm_wave"])
