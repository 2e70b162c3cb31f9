"""The classes of the synthetic sets: per task, class name -> (motion, look), plus their descriptions.

A class is a motion (a path over the phase and a reordering of the rendered frames) and a look (how
the shape and the background are drawn). Three tasks:

- "motion": six classes in three pairs; the look is random per clip, so only motion separates them.
- "mixed": three fixed looks x {clockwise, counterclockwise}; only look and motion together separate
  all six.
- "people": a drawn person's arm gestures beside a moving object (extract/synth_people.py, which
  owns its classes; here they are only named, under the look "person").

Rendering is in extract/synth.py; docs/synth.md explains the sets and how their properties are checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from extract.synth_people import PEOPLE_DESCRIPTIONS, PEOPLE_TASK

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
    """A motion: base path, cycles per clip (drawn per clip), and how the rendered frames are reordered."""

    path: Callable[[np.ndarray, np.random.Generator], np.ndarray]
    cycles: Callable[[np.random.Generator], float]
    order: Callable[[int], np.ndarray]


# Pairs: the second of each pair is a reordering of the first's frames. The names double as the
# class names of the motion task.
MOTIONS: dict[str, Motion] = {
    "circle_clockwise": Motion(_circle, lambda r: r.uniform(1.0, 2.0), _keep),
    "circle_counterclockwise": Motion(_circle, lambda r: r.uniform(1.0, 2.0), _reverse),
    "rise_slow_fall_fast": Motion(_sawtooth, lambda r: r.uniform(1.5, 2.5), _keep),
    "rise_fast_fall_slow": Motion(_sawtooth, lambda r: r.uniform(1.5, 2.5), _reverse),
    "swing_slow": Motion(_pendulum, lambda r: 1.0, _keep),  # exactly one cycle: see _stride
    "swing_fast": Motion(_pendulum, lambda r: 1.0, _stride),
}

# What each motion does, completed by a look's noun phrase into a class description.
MOTION_PHRASES: dict[str, tuple[str, str]] = {
    "circle_clockwise": ("travelling clockwise around a circle.",
                         "circling round and round in the clockwise direction."),
    "circle_counterclockwise": ("travelling counterclockwise around a circle.",
                                "circling round and round in the anticlockwise direction."),
    "rise_slow_fall_fast": ("rising slowly upward and then dropping back down quickly.",
                            "that creeps up and falls fast, over and over."),
    "rise_fast_fall_slow": ("shooting up quickly and then sinking back down slowly.",
                            "that jumps up fast and drifts down gently, over and over."),
    "swing_slow": ("swinging slowly like a pendulum, once back and forth.",
                   "on a slow pendulum swing."),
    "swing_fast": ("swinging quickly like a pendulum, back and forth several times.",
                   "on a fast pendulum swing."),
}


# ---- look: which shape, how big, which colour, on which background ----

@dataclass(frozen=True)
class Look:
    """How a class's clips look: shape names (keys of synth.SHAPES), size, colour, background kind, nouns."""

    shapes: tuple[str, ...]  # one is drawn per clip, uniformly
    radius: tuple[float, float]  # circumradius as a fraction of the frame size, uniform per clip
    colour: tuple[float, float, float] | None  # fixed RGB, jittered per clip; None: random per clip
    background: str  # key of synth.BACKGROUNDS
    nouns: tuple[str, str]  # noun phrases for the two description sentences


# Per-clip jitter of a fixed look colour, in RGB units per channel (uniform in +-COLOUR_JITTER).
COLOUR_JITTER = 4.0

# Fixed looks differ in shape AND colour, are ~3.5x larger than the motion set's shapes so they dominate
# a frame, and sit on a greyish background so that their hue stands out. The size is what random-weight
# CLIP needs to tell them apart (docs/synth.md, "Choosing the look size").
LOOKS: dict[str, Look] = {
    "random": Look(("disk", "square", "triangle"), (0.045, 0.08), None, "colourful", ("a shape", "an object")),
    "red_disk": Look(("disk",), (0.20, 0.25), (215.0, 35.0, 35.0), "greyish", ("a red disk", "a red round shape")),
    "green_square": Look(("square",), (0.20, 0.25), (35.0, 185.0, 55.0), "greyish",
                         ("a green square", "a green four-cornered shape")),
    "blue_triangle": Look(("triangle",), (0.20, 0.25), (40.0, 75.0, 225.0), "greyish",
                          ("a blue triangle", "a blue three-cornered shape")),
}


# ---- tasks: class name -> (motion, look) ----

class ClassSpec(NamedTuple):
    """A class as keys into MOTIONS and LOOKS (looked up at render time, so tests can patch them)."""

    motion: str
    look: str


MIXED_LOOKS: tuple[str, ...] = ("red_disk", "green_square", "blue_triangle")
MIXED_MOTIONS: tuple[str, ...] = ("circle_clockwise", "circle_counterclockwise")

# Class names are unique across tasks, so one description table and clip_rng(seed, class, i) serve both.
TASKS: dict[str, dict[str, ClassSpec]] = {
    "motion": {name: ClassSpec(name, "random") for name in MOTIONS},
    "mixed": {f"{look}_{motion.removeprefix('circle_')}": ClassSpec(motion, look)
              for look in MIXED_LOOKS for motion in MIXED_MOTIONS},
    PEOPLE_TASK: {name: ClassSpec(name, "person") for name in PEOPLE_DESCRIPTIONS},
}

DEFAULT_TASK = "motion"
DEFAULT_CLASSES: tuple[str, ...] = tuple(TASKS["motion"])
MIXED_CLASSES: tuple[str, ...] = tuple(TASKS["mixed"])

CLASS_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    **{name: tuple(f"{noun} {phrase}" for noun, phrase in zip(LOOKS[spec.look].nouns, MOTION_PHRASES[spec.motion]))
       for task, classes in TASKS.items() if task != PEOPLE_TASK for name, spec in classes.items()},
    **PEOPLE_DESCRIPTIONS,
}
PEOPLE_CLASSES: tuple[str, ...] = tuple(TASKS[PEOPLE_TASK])


def task_classes(task: str) -> tuple[str, ...]:
    """All class names of `task`, in their pair order; ValueError for an unknown task."""
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {sorted(TASKS)}")
    return tuple(TASKS[task])


def check_classes(task: str, classes: tuple[str, ...]) -> None:
    """ValueError unless `classes` are distinct, non-empty names of `task` (naming the task of a stray one)."""
    known = task_classes(task)
    unknown = [c for c in classes if c not in TASKS[task]]
    if unknown or not classes or len(set(classes)) < len(classes):
        elsewhere = {c: t for c in unknown for t, names in TASKS.items() if c in names}
        hint = f" ({', '.join(f'{c} is a class of task {t!r}' for c, t in elsewhere.items())})" if elsewhere else ""
        raise ValueError(f"classes must be distinct names from {list(known)}; unknown: {unknown}{hint}")
