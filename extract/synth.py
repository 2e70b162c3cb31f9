"""Synthetic fine-grained video set: per pair of classes the frames are the same, only their order differs.

Each class belongs to a pair. The first member renders a clip from a random path (circle, vertical
sawtooth, pendulum arc); the second member renders that same kind of clip and then reorders its
frames (time reversal, or a stride that turns one swing into several). So every order-free statistic
of a clip (any single frame, the unordered set of frames) has the same distribution for both members:
only motion tells them apart. docs/synth.md explains the classes and how the property is checked.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from rich.progress import track

# Pairs: the second of each pair is a reordering of the first's frames (see MOTIONS).
DEFAULT_CLASSES: tuple[str, ...] = ("circle_clockwise", "circle_counterclockwise", "rise_slow_fall_fast",
                                   "rise_fast_fall_slow", "swing_slow", "swing_fast")

CLASS_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "circle_clockwise": ("a shape travelling clockwise around a circle.",
                         "an object circling round and round in the clockwise direction."),
    "circle_counterclockwise": ("a shape travelling counterclockwise around a circle.",
                                "an object circling round and round in the anticlockwise direction."),
    "rise_slow_fall_fast": ("a shape rising slowly upward and then dropping back down quickly.",
                            "an object that creeps up and falls fast, over and over."),
    "rise_fast_fall_slow": ("a shape shooting up quickly and then sinking back down slowly.",
                            "an object that jumps up fast and drifts down gently, over and over."),
    "swing_slow": ("a shape swinging slowly like a pendulum, once back and forth.",
                   "an object on a slow pendulum swing."),
    "swing_fast": ("a shape swinging quickly like a pendulum, back and forth several times.",
                   "an object on a fast pendulum swing."),
}

# Container for each writable codec (PyPI OpenCV has no H.264 encoder, so no 'avc1').
CODEC_EXTENSIONS: dict[str, str] = {"mp4v": ".mp4", "MJPG": ".avi", "XVID": ".avi"}

# Fields that change a clip's bytes; a folder can be resumed only if these match.
RENDER_FIELDS = ("size", "fps", "min_frames", "max_frames", "seed", "codec")


@dataclass(frozen=True)
class SynthConfig:
    """What `write_dataset` makes; saved as OUT/synth_config.json beside the videos."""

    videos_per_class: int = 20
    classes: tuple[str, ...] = DEFAULT_CLASSES
    size: int = 112  # frames are size x size
    fps: float = 25.0
    min_frames: int = 40  # clip length is uniform in [min_frames, max_frames]
    max_frames: int = 90
    seed: int = 0
    codec: str = "mp4v"  # mp4 container; 'MJPG' or 'XVID' -> .avi

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))  # JSON gives a list back
        unknown = [c for c in self.classes if c not in MOTIONS]
        if unknown or not self.classes or len(set(self.classes)) < len(self.classes):
            raise ValueError(f"classes must be distinct names from {sorted(MOTIONS)}; unknown: {unknown}")
        if self.codec not in CODEC_EXTENSIONS:
            raise ValueError(f"codec {self.codec!r} cannot be written; use one of {sorted(CODEC_EXTENSIONS)}")
        if not 8 <= self.min_frames <= self.max_frames:
            raise ValueError("need 8 <= min_frames <= max_frames")
        if self.size < 32 or self.videos_per_class < 1 or self.fps <= 0:
            raise ValueError("need size >= 32, videos_per_class >= 1 and fps > 0")


# ---- motion: a path over the phase (in cycles), how many cycles, and a reordering of frames ----

def _circle(phase: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T,) phase -> (T, 2) xy on the unit circle; rising phase is clockwise on screen (y points down)."""
    a = 2 * np.pi * phase
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def _sawtooth(phase: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T,) phase -> (T, 2): up for 3/4 of each cycle, back down in the last 1/4 (y points down)."""
    f = phase % 1.0
    height = np.where(f < 0.75, f / 0.75, (1.0 - f) / 0.25)
    return np.stack([np.zeros_like(f), -height], axis=1)


def _pendulum(phase: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T,) phase -> (T, 2) on an arc below a pivot, swinging +-amplitude with a sine law."""
    theta = rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * phase)
    return np.stack([np.sin(theta), np.cos(theta)], axis=1)


def _keep(n: int) -> np.ndarray:
    return np.arange(n)


def _reverse(n: int) -> np.ndarray:
    """Time reversal: the second member of a pair plays the first member's clip backwards."""
    return np.arange(n)[::-1].copy()


def _stride(n: int) -> np.ndarray:
    """Frame t shows base frame (c*t mod n), c >= 3 coprime with n: c swings from a permutation of one."""
    c = next(c for c in range(3, n) if math.gcd(c, n) == 1)
    return (c * np.arange(n)) % n


@dataclass(frozen=True)
class Motion:
    """A class: base path, cycles per clip (drawn per clip), and how the rendered frames are reordered."""

    path: Callable[[np.ndarray, np.random.Generator], np.ndarray]
    cycles: Callable[[np.random.Generator], float]
    order: Callable[[int], np.ndarray]


MOTIONS: dict[str, Motion] = {
    "circle_clockwise": Motion(_circle, lambda r: r.uniform(1.0, 2.0), _keep),
    "circle_counterclockwise": Motion(_circle, lambda r: r.uniform(1.0, 2.0), _reverse),
    "rise_slow_fall_fast": Motion(_sawtooth, lambda r: r.uniform(1.5, 2.5), _keep),
    "rise_fast_fall_slow": Motion(_sawtooth, lambda r: r.uniform(1.5, 2.5), _reverse),
    "swing_slow": Motion(_pendulum, lambda r: 1.0, _keep),  # exactly one cycle: see _stride
    "swing_fast": Motion(_pendulum, lambda r: 1.0, _stride),
}


# ---- appearance: shape, colours, background, noise; drawn the same way for every class ----

_SUB = 16  # cv2 drawing with shift=4 takes coordinates in 1/16 pixel, so positions stay subpixel


def _disk(mask: np.ndarray, x: float, y: float, r: float, angle: float) -> None:
    cv2.circle(mask, (round(x * _SUB), round(y * _SUB)), round(r * _SUB), 255, -1, cv2.LINE_AA, 4)


def _polygon(n: int) -> Callable[[np.ndarray, float, float, float, float], None]:
    def draw(mask: np.ndarray, x: float, y: float, r: float, angle: float) -> None:
        a = angle + 2 * np.pi * np.arange(n) / n
        corners = np.stack([x + r * np.cos(a), y + r * np.sin(a)], axis=1)  # (n, 2)
        cv2.fillPoly(mask, [np.round(corners * _SUB).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return draw


# Each draws one anti-aliased filled shape of circumradius r into a uint8 mask.
SHAPES: dict[str, Callable[[np.ndarray, float, float, float, float], None]] = {
    "disk": _disk, "square": _polygon(4), "triangle": _polygon(3),
}


def _background(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) float32 texture (smooth blobs + grain) around a random base colour, and that colour."""
    base = rng.uniform(0, 255, 3)
    k = int(rng.integers(3, 9))
    blobs = cv2.resize(rng.normal(0, 1, (k, k, 3)).astype(np.float32), (size, size),
                       interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 1, (size, size, 1)).astype(np.float32)
    bg = base + rng.uniform(5, 30) * blobs + rng.uniform(0, 12) * grain
    return np.clip(bg, 0, 255).astype(np.float32), base


def _fit(points: np.ndarray, rng: np.random.Generator, size: int, margin: float) -> np.ndarray:
    """(T, 2) path in any units -> pixels: random extent and position, kept `margin` inside the frame."""
    lo, hi = points.min(0), points.max(0)
    extent = rng.uniform(0.6, 0.9) * (size - 2 * margin)
    xy = (points - lo) * (extent / max(float((hi - lo).max()), 1e-9))  # (T, 2)
    room = size - 2 * margin - xy.max(0)
    return xy + margin + rng.uniform(0, 1, 2) * room


def render_clip_with_track(
    label: str, rng: np.random.Generator, cfg: SynthConfig
) -> tuple[np.ndarray, np.ndarray]:
    """One clip of `label`: (T, H, W, 3) uint8 RGB frames and (T, 2) float xy of the shape's centre."""
    motion = MOTIONS[label]
    n = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))
    # Everything below is drawn identically for the two members of a pair; only `order` differs.
    phase = rng.uniform() + motion.cycles(rng) * np.arange(n) / n  # (T,) in cycles
    shape = list(SHAPES)[int(rng.integers(len(SHAPES)))]
    radius = rng.uniform(0.045, 0.08) * cfg.size
    angle = rng.uniform(0, 2 * np.pi)
    xy = _fit(motion.path(phase, rng), rng, cfg.size, 1.5 * radius + 2)  # (T, 2)
    bg, base = _background(cfg.size, rng)
    colour = rng.uniform(0, 255, 3)
    while np.linalg.norm(colour - base) < 120:  # keep the shape visible; at most ~45% of draws retry
        colour = rng.uniform(0, 255, 3)
    sigma = rng.uniform(0, 10)
    frames = np.empty((n, cfg.size, cfg.size, 3), np.uint8)
    mask = np.empty((cfg.size, cfg.size), np.uint8)
    for t in range(n):
        mask[:] = 0
        SHAPES[shape](mask, xy[t, 0], xy[t, 1], radius, angle)
        a = (mask.astype(np.float32) / 255.0)[:, :, None]  # (H, W, 1) coverage
        img = bg * (1 - a) + colour.astype(np.float32) * a
        img += np.float32(sigma) * rng.standard_normal(img.shape, dtype=np.float32)
        frames[t] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    order = motion.order(n)
    return frames[order], xy[order]


def render_clip(label: str, rng: np.random.Generator, cfg: SynthConfig) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB frames of one clip of `label`, T in [cfg.min_frames, cfg.max_frames]."""
    return render_clip_with_track(label, rng, cfg)[0]


def clip_rng(seed: int, label: str, index: int) -> np.random.Generator:
    """The generator for clip `index` of `label`: independent of which other classes are written."""
    return np.random.default_rng([seed, zlib.crc32(label.encode()), index])


def clip_path(out: Path, cfg: SynthConfig, label: str, index: int) -> Path:
    """OUT/<label>/<label>_<index:04d>.mp4 (or .avi for the MJPG and XVID codecs)."""
    return Path(out) / label / f"{label}_{index:04d}{CODEC_EXTENSIONS[cfg.codec]}"


def _write_video(path: Path, frames: np.ndarray, cfg: SynthConfig) -> None:
    """Write (T, H, W, 3) RGB frames; a temporary name then rename, so an existing file is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.stem + ".part" + path.suffix)
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(part), cv2.VideoWriter_fourcc(*cfg.codec), cfg.fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV could not open a {cfg.codec} writer for {part}; try codec 'MJPG'")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    os.replace(part, path)


def _check_resumable(out: Path, cfg: SynthConfig) -> None:
    """Refuse to add to a folder whose existing clips were rendered with other settings."""
    saved = out / "synth_config.json"
    if not saved.exists():
        return
    old = json.loads(saved.read_text(encoding="utf-8"))
    new = dataclasses.asdict(cfg)
    diff = {k: (old.get(k), new[k]) for k in RENDER_FIELDS if old.get(k) != new[k]}
    if diff:
        raise FileExistsError(
            f"{out} holds a set made with other settings (old, new): {diff}; "
            "write to another folder or delete this one"
        )


def write_dataset(out: Path, cfg: SynthConfig, progress: bool = True) -> list[Path]:
    """Write OUT/<class>/<class>_<i:04d>.mp4, descriptions.json and synth_config.json; returns the video paths.

    Resumable: videos already present are kept (clip i of a class depends only on seed, class and i).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_resumable(out, cfg)
    (out / "synth_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2), encoding="utf-8")
    descriptions = {c: list(CLASS_DESCRIPTIONS[c]) for c in cfg.classes}
    (out / "descriptions.json").write_text(json.dumps(descriptions, indent=2), encoding="utf-8")
    jobs = [(label, i) for label in cfg.classes for i in range(cfg.videos_per_class)]
    paths = []
    for label, i in track(jobs, description="rendering clips", disable=not progress):
        path = clip_path(out, cfg, label, i)
        if not path.exists():
            _write_video(path, render_clip(label, clip_rng(cfg.seed, label, i), cfg), cfg)
        paths.append(path)
    return paths
