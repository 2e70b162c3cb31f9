"""fgm-synth: determinism, shapes, files that decode, and the motion-only property measured on pixels."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from extract import synth_classes
from extract.synth import (
    DEFAULT_CLASSES, CLASS_DESCRIPTIONS, SynthConfig, clip_path, clip_rng, render_clip,
    render_clip_with_track, write_dataset,
)
from extract.synth_cli import app

SMALL = SynthConfig(size=64, min_frames=30, max_frames=60)
PAIRS = [DEFAULT_CLASSES[i:i + 2] for i in range(0, len(DEFAULT_CLASSES), 2)]
N_PER_CLASS = 40  # clips per class for the statistical tests; null accuracy measured sd ~0.05-0.06


def _centroids(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, 2) xy of the moving shape, found from pixels only.

    The background is the per-pixel median over time (the shape covers any pixel well under half the
    time); the shape is the blurred peak of the difference to it, refined by a local centroid.
    """
    n = len(frames)
    per_pixel = np.ascontiguousarray(frames.reshape(n, -1).T)  # (H*W*3, T)
    median = np.partition(per_pixel, n // 2, axis=1)[:, n // 2].reshape(frames.shape[1:])
    diff = np.abs(frames.astype(np.float32) - median).sum(-1)  # (T, H, W)
    blur = cv2.GaussianBlur(np.ascontiguousarray(diff.transpose(1, 2, 0)), (0, 0), 1.5)  # (H, W, T)
    b = np.pad(blur.transpose(2, 0, 1), ((0, 0), (6, 6), (6, 6)))  # (T, H+12, W+12)
    t = np.arange(len(b))
    y, x = np.unravel_index(b.reshape(len(b), -1).argmax(1), b.shape[1:])  # (T,), (T,)
    off = np.arange(-6, 7)
    win = b[t[:, None, None], (y[:, None] + off)[:, :, None], (x[:, None] + off)[:, None, :]]  # (T, 13, 13)
    w = np.maximum(win - 0.5 * win.max((1, 2), keepdims=True), 0)
    w /= w.sum((1, 2), keepdims=True)
    return np.stack([x - 6 + (w.sum(1) * off).sum(1), y - 6 + (w.sum(2) * off).sum(1)], axis=1)


def _set_features(frames: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Order-free clip statistics: colour moments and the distribution of shape positions."""
    f = frames[:, ::2, ::2].astype(np.float32)  # every other pixel: same statistics, quarter the work
    c = xy - xy.mean(0)
    spread = np.percentile(xy, 90, axis=0) - np.percentile(xy, 10, axis=0)
    return np.concatenate([
        f.mean((0, 1, 2)), f.std((1, 2)).mean(0),  # colour
        xy.mean(0), xy.std(0), spread, [np.corrcoef(c.T)[0, 1] if c.std(0).min() > 1e-6 else 0.0],
        [np.linalg.norm(c, axis=1).mean(), np.linalg.norm(c, axis=1).std()],
        xy.std(0) / (spread.max() + 1e-6), np.percentile(xy, [10, 50, 90], axis=0).ravel(),
    ])


def _order_rules(xy: np.ndarray) -> dict[str, float]:
    """Known-answer motion features; each needs the frame order."""
    c = xy - xy.mean(0)
    v = np.diff(xy, axis=0)  # (T-1, 2)
    cross = c[:-1, 0] * v[:, 1] - c[:-1, 1] * v[:, 0]  # > 0: clockwise on screen (y points down)
    vy = v[:, 1]
    spectrum = np.abs(np.fft.rfft(c[:, 0]))
    return {
        "angular": float(np.mean(cross / (np.linalg.norm(c[:-1], axis=1) ** 2 + 1e-6))),
        "vy_skew": float(np.mean(vy ** 3) / (np.mean(vy ** 2) ** 1.5 + 1e-9)),  # > 0: falls fast
        "cycles": int(spectrum[1:].argmax() + 1),  # dominant horizontal cycles per clip
    }


@pytest.fixture(scope="module")
def clips() -> dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Per class, N_PER_CLASS clips as (set features, frame-found centroids, true track)."""
    out = {}
    for label in DEFAULT_CLASSES:
        rows = []
        for i in range(N_PER_CLASS):
            frames, track = render_clip_with_track(label, clip_rng(7, label, i), SMALL)
            xy = _centroids(frames)
            rows.append((_set_features(frames, xy), xy, track))
        out[label] = rows
    return out


def _cv_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    return float(cross_val_score(model, x, y, cv=folds).mean())


def _pair_xy(clips, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.stack([r[0] for r in clips[a]] + [r[0] for r in clips[b]])
    return x, np.repeat([0, 1], [len(clips[a]), len(clips[b])])


# ---- determinism and shapes ----

def test_same_seed_same_bytes_other_seed_other_clip():
    for label in DEFAULT_CLASSES:
        a = render_clip(label, np.random.default_rng(3), SMALL)
        b = render_clip(label, np.random.default_rng(3), SMALL)
        c = render_clip(label, np.random.default_rng(4), SMALL)
        assert a.tobytes() == b.tobytes()
        assert a.shape != c.shape or not np.array_equal(a, c)


@pytest.mark.parametrize("label", DEFAULT_CLASSES)
def test_every_class_renders_a_moving_shape_inside_the_frame(label):
    cfg = SynthConfig(size=80, min_frames=20, max_frames=30)
    frames, track = render_clip_with_track(label, np.random.default_rng(1), cfg)
    assert frames.dtype == np.uint8 and frames.shape[1:] == (80, 80, 3)
    assert 20 <= len(frames) <= 30 and track.shape == (len(frames), 2)
    assert track.min() > 0 and track.max() < 80
    assert np.ptp(track, axis=0).max() > 20  # it moves, by a sizeable part of the frame
    assert label in CLASS_DESCRIPTIONS and 2 <= len(CLASS_DESCRIPTIONS[label]) <= 3


def test_pair_members_are_reorderings_of_the_same_frames():
    """Known answer: with one generator state, member two's frames are member one's, reordered."""
    for a, b in PAIRS:
        fa = render_clip(a, np.random.default_rng(11), SMALL)
        fb = render_clip(b, np.random.default_rng(11), SMALL)
        assert sorted(f.tobytes() for f in fa) == sorted(f.tobytes() for f in fb)
        assert not np.array_equal(fa, fb)
    cw = render_clip("circle_clockwise", np.random.default_rng(11), SMALL)
    ccw = render_clip("circle_counterclockwise", np.random.default_rng(11), SMALL)
    assert np.array_equal(cw[::-1], ccw)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="zigzag"):
        SynthConfig(classes=("circle_clockwise", "zigzag"))
    with pytest.raises(ValueError, match="distinct"):
        SynthConfig(classes=("swing_fast", "swing_fast"))
    assert SynthConfig(classes=["swing_fast"]).classes == ("swing_fast",)
    with pytest.raises(ValueError, match="codec"):
        SynthConfig(codec="avc1")


# ---- the motion-only property, measured on rendered pixels ----

def test_frame_found_centroids_follow_the_track(clips):
    err = np.concatenate([np.linalg.norm(xy - tr, axis=1) for rows in clips.values() for _, xy, tr in rows])
    assert np.median(err) < 0.5 and err.max() < 1.5


def test_unordered_frame_statistics_cannot_tell_a_pair_apart(clips):
    for a, b in PAIRS:
        x, y = _pair_xy(clips, a, b)
        acc = _cv_accuracy(x, y)
        assert acc < 0.70, f"{a} vs {b}: order-free features reach {acc:.2f}; appearance leaks the class"


def test_the_same_statistics_do_tell_different_paths_apart(clips):
    """Control: the features above are informative, so their failure on a pair means something."""
    for a, b in [("circle_clockwise", "swing_slow"), ("circle_counterclockwise", "rise_fast_fall_slow"),
                 ("rise_slow_fall_fast", "swing_fast")]:
        x, y = _pair_xy(clips, a, b)
        assert _cv_accuracy(x, y) > 0.95


def test_single_frames_cannot_tell_a_pair_apart(clips):
    """Per-frame samples (mean colour, shape position), cross-validated with whole clips held out."""
    for a, b in PAIRS:
        feats, labels, groups = [], [], []
        for k, label in enumerate((a, b)):
            for i, (f, xy, _) in enumerate(clips[label]):
                feats.append(np.column_stack([np.repeat(f[None, :3], len(xy), 0), xy]))
                labels += [k] * len(xy)
                groups += [k * N_PER_CLASS + i] * len(xy)
        x, y = np.concatenate(feats), np.array(labels)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        folds = StratifiedGroupKFold(5, shuffle=True, random_state=0)  # balanced folds, clips whole
        acc = cross_val_score(model, x, y, groups=np.array(groups), cv=folds).mean()
        assert acc < 0.65, f"{a} vs {b}: single frames reach {acc:.2f}"


def test_motion_separates_every_pair(clips):
    """Known answers from frame-found centroids: rotation sign, vertical-speed skew, swing count."""
    rules = {label: [_order_rules(xy) for _, xy, _ in rows] for label, rows in clips.items()}
    right = {
        "circle_clockwise": [r["angular"] > 0 for r in rules["circle_clockwise"]],
        "circle_counterclockwise": [r["angular"] < 0 for r in rules["circle_counterclockwise"]],
        "rise_slow_fall_fast": [r["vy_skew"] > 0 for r in rules["rise_slow_fall_fast"]],
        "rise_fast_fall_slow": [r["vy_skew"] < 0 for r in rules["rise_fast_fall_slow"]],
        "swing_slow": [r["cycles"] == 1 for r in rules["swing_slow"]],
        "swing_fast": [r["cycles"] >= 3 for r in rules["swing_fast"]],
    }
    for label, ok in right.items():
        assert all(ok), f"{label}: motion rule right on {np.mean(ok):.2f} of clips"


def test_a_planted_appearance_leak_is_caught(clips, monkeypatch):
    """The leak test can fail: give one member fewer turns (partial arcs) and it must be seen."""
    leaky = synth_classes.Motion(synth_classes._circle, lambda r: r.uniform(0.3, 0.6), synth_classes._reverse)
    monkeypatch.setitem(synth_classes.MOTIONS, "circle_counterclockwise", leaky)
    feats = [r[0] for r in clips["circle_clockwise"]]
    for i in range(N_PER_CLASS):
        frames, _ = render_clip_with_track("circle_counterclockwise", clip_rng(7, "leak", i), SMALL)
        feats.append(_set_features(frames, _centroids(frames)))
    assert _cv_accuracy(np.stack(feats), np.repeat([0, 1], N_PER_CLASS)) > 0.85


# ---- files ----

def test_write_dataset_is_resumable_and_refuses_other_settings(tmp_path):
    cfg = SynthConfig(videos_per_class=1, classes=("swing_slow", "swing_fast"), size=48,
                      min_frames=10, max_frames=12)
    paths = write_dataset(tmp_path, cfg, progress=False)
    stamps = [p.stat().st_mtime_ns for p in paths]
    more = write_dataset(tmp_path, SynthConfig(**{**cfg.__dict__, "videos_per_class": 2}), progress=False)
    assert more[0::2] == paths and [p.stat().st_mtime_ns for p in paths] == stamps
    assert len(more) == 4 and all(p.exists() for p in more)
    assert not list(tmp_path.rglob("*.part*"))
    with pytest.raises(FileExistsError, match="seed"):
        write_dataset(tmp_path, SynthConfig(**{**cfg.__dict__, "seed": 1}), progress=False)


def test_cli_writes_a_set_that_decodes(tmp_path):
    result = CliRunner().invoke(app, [str(tmp_path), "--videos-per-class", "2", "--size", "64"])
    assert result.exit_code == 0, result.output
    cfg = SynthConfig(videos_per_class=2, size=64)
    assert json.loads((tmp_path / "synth_config.json").read_text())["size"] == 64
    descriptions = json.loads((tmp_path / "descriptions.json").read_text())
    assert sorted(descriptions) == sorted(DEFAULT_CLASSES)
    for label in DEFAULT_CLASSES:
        assert len(list((tmp_path / label).glob("*.mp4"))) == 2
        for i in range(2):
            expected = render_clip(label, clip_rng(0, label, i), cfg)
            cap = cv2.VideoCapture(str(clip_path(tmp_path, cfg, label, i)))
            decoded = []
            ok, frame = cap.read()
            while ok:
                decoded.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                ok, frame = cap.read()
            cap.release()
            assert len(decoded) == len(expected)
            err = np.abs(np.stack(decoded).astype(int) - expected).mean()
            assert decoded[0].shape == (64, 64, 3) and err < 12, f"{label} {i}: mean abs error {err:.1f}"


def test_cli_help_explains_the_set_and_rejects_unknown_classes(tmp_path):
    runner = CliRunner()
    help_text = runner.invoke(app, ["--help"]).output
    assert "MOTION only" in help_text and "circle_clockwise" in help_text
    bad = runner.invoke(app, [str(tmp_path), "--classes", "circle_clockwise,zigzag"])
    assert bad.exit_code != 0


def test_rendering_in_worker_processes_writes_the_same_files(tmp_path):
    cfg = SynthConfig(videos_per_class=2, classes=("swing_slow", "swing_fast"), size=32, min_frames=8,
                      max_frames=10, seed=3)
    one = write_dataset(tmp_path / "one", cfg, progress=False)
    two = write_dataset(tmp_path / "two", cfg, progress=False, workers=2)
    assert [p.relative_to(tmp_path / "one") for p in one] == [p.relative_to(tmp_path / "two") for p in two]
    assert [p.read_bytes() for p in one] == [p.read_bytes() for p in two]
