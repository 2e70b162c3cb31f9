"""The "people" synthetic task: a drawn person making one of six arm gestures, with a moving object elsewhere.

Built to check region motion tokens (issue 15) where they should matter: the class lives in the
arms of one person, who stands anywhere in the frame at any of a range of sizes, while a textured
disk moves through the frame on a path that has nothing to do with the class. Classes come in
pairs, as in the motion task:

- arms_sideways / arms_forward: both arms go from down to overhead and back, out to the sides (in
  the picture's plane) or forwards (towards the camera: the arms shorten, then rise), as in
  ud810_ps7: the same start and end poses, another trajectory.
- right_arm_raise / left_arm_raise and right_arm_wave / left_arm_wave: the second of each pair is
  the first's clip mirrored left to right, so only which side moves tells them apart.

"right" and "left" are sides of the screen. The figure is the one drawn in tests/extract's HOG
tests (head, torso, arms, legs; a head is an eighth of the body), which OpenCV's HOG people detector
finds when it is at least about half the frame high (docs/design-choices.md): the person is 55-70 %
of the frame's height here. extract/synth.py renders a clip of this task through `render_person_clip`.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

PEOPLE_TASK = "people"
SUB = 16  # cv2 drawing with shift=4 takes coordinates in 1/16 pixel; extract/synth.py draws with it too
ARM = 3.0  # arm length in body units (a body is 8 units high)


def disk(mask: np.ndarray, x: float, y: float, r: float) -> None:
    """Fill a disk of radius r px at (x, y) px into `mask` (H, W) uint8, antialiased, positions subpixel."""
    cv2.circle(mask, (round(x * SUB), round(y * SUB)), round(r * SUB), 255, -1, cv2.LINE_AA, 4)


def _raise(p: np.ndarray) -> np.ndarray:
    """(T,) phase in cycles -> (T,) in [0, 1]: down, up, down once per cycle, smoothly."""
    return (1 - np.cos(2 * np.pi * p)) / 2


# An arm's pose per frame: (T, 2) tip offsets from its shoulder in arm lengths, x outwards from the
# body's midline, y down (so (0, 1) hangs down).
Pose = Callable[[np.ndarray], np.ndarray]


def _sideways(p: np.ndarray) -> np.ndarray:
    """Swung in the picture's plane from hanging down (0) over the side to overhead (pi)."""
    a = np.pi * _raise(p)
    return np.stack([np.sin(a), np.cos(a)], 1)


def _forward(p: np.ndarray) -> np.ndarray:
    """Swung towards the camera and up: seen from the front, the tip runs straight up the arm's own line."""
    a = np.pi * _raise(p)
    return np.stack([0.12 * np.sin(a), np.cos(a)], 1)  # a little outward: shoulders are not a point


def _hanging(p: np.ndarray) -> np.ndarray:
    return np.tile([[0.08, 1.0]], (len(p), 1))


def _wave(p: np.ndarray) -> np.ndarray:
    """Raised out to the side and waved: the angle from hanging down swings 0.62 pi +- 0.14 pi, 3 waves a cycle."""
    a = np.pi * (0.62 + 0.14 * np.sin(2 * np.pi * 3 * p))
    return np.stack([np.sin(a), np.cos(a)], 1)


# class -> (screen-left arm's pose, screen-right arm's pose, mirrored)
GESTURES: dict[str, tuple[Pose, Pose, bool]] = {
    "arms_sideways": (_sideways, _sideways, False),
    "arms_forward": (_forward, _forward, False),
    "right_arm_raise": (_hanging, _sideways, False),
    "left_arm_raise": (_hanging, _sideways, True),
    "right_arm_wave": (_hanging, _wave, False),
    "left_arm_wave": (_hanging, _wave, True),
}

PEOPLE_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "arms_sideways": ("a person raising both arms out to the sides and over the head.",
                      "someone lifting both arms sideways above the head and lowering them."),
    "arms_forward": ("a person raising both arms forwards and over the head.",
                     "someone lifting both arms in front of them above the head and lowering them."),
    "right_arm_raise": ("a person raising the arm on the right of the picture out to the side.",
                        "someone lifting one arm sideways, on the right side of the frame."),
    "left_arm_raise": ("a person raising the arm on the left of the picture out to the side.",
                       "someone lifting one arm sideways, on the left side of the frame."),
    "right_arm_wave": ("a person waving the arm on the right of the picture.",
                       "someone waving one raised arm, on the right side of the frame."),
    "left_arm_wave": ("a person waving the arm on the left of the picture.",
                      "someone waving one raised arm, on the left side of the frame."),
}


def _texture(size: int, rng: np.random.Generator, lo: int, hi: int, blur: float) -> np.ndarray:
    """(size, size, 3) f32: blurred uniform noise in [lo, hi], tinted by a random colour."""
    grey = cv2.GaussianBlur(rng.uniform(lo, hi, (size, size)).astype(np.float32), (0, 0), blur)
    tint = rng.uniform(0.8, 1.2, 3).astype(np.float32)
    return np.clip(grey[:, :, None] * tint, 0, 255)


def _person_mask(mask: np.ndarray, cx: float, top: float, u: float, left: np.ndarray, right: np.ndarray) -> None:
    """Draw the figure into `mask` (H, W) uint8: head, torso, legs, and arms ending at the given tip offsets (2,)."""
    def at(dx: float, dy: float) -> tuple[int, int]:
        return round((cx + dx * u) * SUB), round((top + dy * u) * SUB)

    cv2.circle(mask, at(0, 0.5), round(0.5 * u * SUB), 255, -1, cv2.LINE_AA, 4)  # head
    cv2.ellipse(mask, at(0, 2.6), (round(0.8 * u * SUB), round(1.7 * u * SUB)), 0, 0, 360, 255, -1,
                cv2.LINE_AA, 4)  # torso
    for side in (-1, 1):
        cv2.line(mask, at(0.35 * side, 4.2), at(0.8 * side, 8), 255, max(1, round(0.45 * u)), cv2.LINE_AA, 4)  # leg
    for side, tip in ((-1, left), (1, right)):
        shoulder = (0.7 * side, 1.4)
        end = (shoulder[0] + side * ARM * tip[0], shoulder[1] + ARM * tip[1])
        cv2.line(mask, at(*shoulder), at(*end), 255, max(1, round(0.35 * u)), cv2.LINE_AA, 4)  # arm


def render_person_clip(label: str, rng: np.random.Generator, size: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """One clip of gesture `label`, n frames: (n, size, size, 3) uint8 RGB, (n, 2) f32 the person's centre in pixels."""
    left_pose, right_pose, mirrored = GESTURES[label]
    phase = rng.uniform() + rng.uniform(1.0, 2.0) * np.arange(n) / n  # (n,) in cycles
    u = rng.uniform(0.55, 0.70) * size / 8  # body unit in px
    top = rng.uniform(ARM * u - 1.4 * u + 2, size - 8 * u - 2)  # an arm overhead stays in the frame
    cx = rng.uniform((0.7 + ARM) * u + 2, size - (0.7 + ARM) * u - 2)
    ground = _texture(size, rng, 140, 235, 1.5)
    cloth = _texture(size, rng, 15, 90, 1.0)
    # the distractor: a textured disk crossing the frame on a straight line, bouncing off its edges
    radius = rng.uniform(0.10, 0.16) * size
    start, velocity = rng.uniform(radius, size - radius, 2), rng.uniform(-1, 1, 2) * rng.uniform(0.5, 1.5) * size / n
    stuff = _texture(size, rng, 0, 255, 2.0)
    sigma = np.float32(rng.uniform(0, 6))
    left, right = left_pose(phase), right_pose(phase)  # (n, 2) each
    span = size - 2 * radius  # the disk's centre is reflected into [radius, size - radius]
    frames = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        pos = start + velocity * t
        pos = radius + np.abs((pos - radius + span) % (2 * span) - span)
        thing = np.zeros((size, size), np.uint8)
        disk(thing, pos[0], pos[1], radius)
        person = np.zeros((size, size), np.uint8)
        _person_mask(person, cx, top, u, left[t], right[t])
        img = ground
        for mask, layer in ((thing, stuff), (person, cloth)):  # the person in front of the disk
            a = (mask.astype(np.float32) / 255)[:, :, None]
            img = img * (1 - a) + layer * a
        img = img + sigma * rng.standard_normal(img.shape, dtype=np.float32)
        frames[t] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    centre = np.tile(np.float32([[cx, top + 4 * u]]), (n, 1))
    if mirrored:
        frames, centre[:, 0] = frames[:, :, ::-1].copy(), size - 1 - centre[:, 0]
    return frames, centre
