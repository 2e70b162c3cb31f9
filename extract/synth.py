"""Synthetic fine-grained video sets: render clips of the classes in extract/synth_classes.py and write them.

Three tasks (SynthConfig.task); "people" is drawn by extract/synth_people.py, the other two here.
"motion": classes come in pairs whose clips share every frame and differ only in frame order (time
reversal, or a stride that turns one swing into several), with shape, colour and background random
per clip, so only motion tells a pair apart. "mixed": three fixed looks (shape and colour) x two
circling directions, so only look and motion together separate all six. docs/synth.md explains the
classes and how their properties are checked.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from rich.progress import track

from extract.synth_classes import (
    CLASS_DESCRIPTIONS, COLOUR_JITTER, DEFAULT_CLASSES, DEFAULT_TASK, LOOKS, MIXED_CLASSES, MOTIONS, PEOPLE_CLASSES,
    TASKS, ClassSpec, Look, Motion, check_classes, task_classes,
)
from extract.synth_people import PEOPLE_TASK, SUB, disk, render_person_clip  # SUB: positions stay subpixel

# Re-exported: other code imports the class definitions from here, as it did before they moved.
__all__ = [
    "CLASS_DESCRIPTIONS", "CODEC_EXTENSIONS", "DEFAULT_CLASSES", "DEFAULT_TASK", "LOOKS", "MIXED_CLASSES",
    "MOTIONS", "PEOPLE_CLASSES", "RENDER_FIELDS", "SHAPES", "TASKS", "BACKGROUNDS", "ClassSpec", "Look", "Motion",
    "SynthConfig", "clip_path", "clip_rng", "render_clip", "render_clip_with_track", "task_classes",
    "write_dataset",
]

# Container for each writable codec (PyPI OpenCV has no H.264 encoder, so no 'avc1').
CODEC_EXTENSIONS: dict[str, str] = {"mp4v": ".mp4", "MJPG": ".avi", "XVID": ".avi"}

# Fields that change a clip's bytes; a folder can be resumed only if these match.
RENDER_FIELDS = ("task", "size", "fps", "min_frames", "max_frames", "seed", "codec")


@dataclass(frozen=True)
class SynthConfig:
    """What `write_dataset` makes; saved as OUT/synth_config.json beside the videos."""

    videos_per_class: int = 20
    task: str = DEFAULT_TASK  # a key of TASKS: "motion", "mixed" or "people"
    classes: tuple[str, ...] | None = None  # None: all of the task's classes
    size: int = 112  # frames are size x size
    fps: float = 25.0
    min_frames: int = 40  # clip length is uniform in [min_frames, max_frames]
    max_frames: int = 90
    seed: int = 0
    codec: str = "mp4v"  # mp4 container; 'MJPG' or 'XVID' -> .avi

    def __post_init__(self) -> None:
        classes = task_classes(self.task) if self.classes is None else tuple(self.classes)  # JSON gives a list
        object.__setattr__(self, "classes", classes)
        check_classes(self.task, classes)
        if self.codec not in CODEC_EXTENSIONS:
            raise ValueError(f"codec {self.codec!r} cannot be written; use one of {sorted(CODEC_EXTENSIONS)}")
        if not 8 <= self.min_frames <= self.max_frames:
            raise ValueError("need 8 <= min_frames <= max_frames")
        if self.size < 32 or self.videos_per_class < 1 or self.fps <= 0:
            raise ValueError("need size >= 32, videos_per_class >= 1 and fps > 0")


# ---- appearance: shapes, backgrounds and colours, drawn as the class's Look says ----



def _disk(mask: np.ndarray, x: float, y: float, r: float, angle: float) -> None:
    disk(mask, x, y, r)  # a disk looks the same at any angle


def _polygon(n: int) -> Callable[[np.ndarray, float, float, float, float], None]:
    def draw(mask: np.ndarray, x: float, y: float, r: float, angle: float) -> None:
        a = angle + 2 * np.pi * np.arange(n) / n
        corners = np.stack([x + r * np.cos(a), y + r * np.sin(a)], axis=1)  # (n, 2)
        cv2.fillPoly(mask, [np.round(corners * SUB).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return draw


# Each draws one anti-aliased filled shape of circumradius r into a uint8 mask.
SHAPES: dict[str, Callable[[np.ndarray, float, float, float, float], None]] = {
    "disk": _disk, "square": _polygon(4), "triangle": _polygon(3),
}


def _texture(size: int, rng: np.random.Generator, base: np.ndarray, chroma: bool) -> np.ndarray:
    """(H, W, 3) float32: base colour + smooth blobs (per channel if `chroma`, else grey) + fine grain."""
    k = int(rng.integers(3, 9))
    blobs = cv2.resize(rng.normal(0, 1, (k, k, 3 if chroma else 1)).astype(np.float32), (size, size),
                       interpolation=cv2.INTER_CUBIC).reshape(size, size, -1)
    grain = rng.normal(0, 1, (size, size, 1)).astype(np.float32)
    bg = base + rng.uniform(5, 30) * blobs + rng.uniform(0, 12) * grain
    return np.clip(bg, 0, 255).astype(np.float32)


def _colourful_background(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) float32 texture around a random base colour, and that (3,) colour."""
    base = rng.uniform(0, 255, 3)
    return _texture(size, rng, base, chroma=True), base


def _greyish_background(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) float32 grey texture with a faint tint (<= 6 RGB units), and its (3,) base colour.

    Low saturation, so a fixed look's hue is the most colourful thing in the frame.
    """
    base = rng.uniform(50, 200) + rng.uniform(-6, 6, 3)
    return _texture(size, rng, base, chroma=False), base


# Each returns (H, W, 3) float32 background and its (3,) base colour; keyed by Look.background.
BACKGROUNDS: dict[str, Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "colourful": _colourful_background, "greyish": _greyish_background,
}


def _shape_colour(look: Look, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(3,) RGB: the look's fixed colour with a small jitter, or a random one far from the background."""
    if look.colour is not None:
        return np.asarray(look.colour) + rng.uniform(-COLOUR_JITTER, COLOUR_JITTER, 3)
    colour = rng.uniform(0, 255, 3)
    while np.linalg.norm(colour - base) < 120:  # keep the shape visible; at most ~45% of draws retry
        colour = rng.uniform(0, 255, 3)
    return colour


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
    """One clip of `label` (a class of cfg.task): (T, H, W, 3) uint8 RGB frames, (T, 2) float shape (or person) centres."""
    spec = TASKS[cfg.task][label]
    n = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))
    if cfg.task == PEOPLE_TASK:
        return render_person_clip(label, rng, cfg.size, n)
    motion, look = MOTIONS[spec.motion], LOOKS[spec.look]
    # Everything below is drawn identically for the two members of a pair; only `order` differs. For
    # one look, and for the looks of the mixed task alike (same draws), the path does not depend on it.
    phase = rng.uniform() + motion.cycles(rng) * np.arange(n) / n  # (T,) in cycles
    shape = look.shapes[int(rng.integers(len(look.shapes)))]
    radius = rng.uniform(*look.radius) * cfg.size
    angle = rng.uniform(0, 2 * np.pi)
    xy = _fit(motion.path(phase, rng), rng, cfg.size, 1.5 * radius + 2)  # (T, 2)
    bg, base = BACKGROUNDS[look.background](cfg.size, rng)
    colour = _shape_colour(look, base, rng)
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
    # Sets written before the task field existed are motion sets.
    old = {"task": "motion", **json.loads(saved.read_text(encoding="utf-8"))}
    new = dataclasses.asdict(cfg)
    diff = {k: (old.get(k), new[k]) for k in RENDER_FIELDS if old.get(k) != new[k]}
    if diff:
        raise FileExistsError(
            f"{out} holds a set made with other settings (old, new): {diff}; "
            "write to another folder or delete this one"
        )


def write_dataset(out: Path, cfg: SynthConfig, progress: bool = True, workers: int = 1) -> list[Path]:
    """Write OUT/<class>/<class>_<i:04d>.mp4, descriptions.json and synth_config.json; returns the video paths.

    Resumable: videos already present are kept (clip i of a class depends only on seed, class and i).
    `workers` > 1 renders in that many processes (the same bytes: each clip has its own seed).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_resumable(out, cfg)
    (out / "synth_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2), encoding="utf-8")
    descriptions = {c: list(CLASS_DESCRIPTIONS[c]) for c in cfg.classes}
    (out / "descriptions.json").write_text(json.dumps(descriptions, indent=2), encoding="utf-8")
    jobs = [(label, i) for label in cfg.classes for i in range(cfg.videos_per_class)]
    todo = [(out, cfg, label, i) for label, i in jobs if not clip_path(out, cfg, label, i).exists()]
    if workers > 1 and len(todo) > 1:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        # spawn, not fork: the caller may have threads running (the demo imports torch meanwhile)
        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=get_context("spawn")) as pool:
            made = pool.map(_make_clip, *zip(*todo))
            list(track(made, total=len(todo), description="rendering clips", disable=not progress))
    else:
        for job in track(todo, description="rendering clips", disable=not progress):
            _make_clip(*job)
    return [clip_path(out, cfg, label, i) for label, i in jobs]


def _make_clip(out: Path, cfg: SynthConfig, label: str, index: int) -> None:
    _write_video(clip_path(out, cfg, label, index), render_clip(label, clip_rng(cfg.seed, label, index), cfg), cfg)
