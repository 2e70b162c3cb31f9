"""i3DPost multi-view human action database (Gkalelis et al. 2009): 8 cameras around 8 actors, PNG frame folders.

The published layout could not be confirmed here. One public converter (MPOSE2021) reads it as
`<actor>/<subfolder>/<sequence code>/<camera>/00000.png` and maps (actor, sequence code) to the action
through its own table, so action names need not appear in the paths. This adapter therefore reads:
- the actor from a path part like `Actor1`, `actor_01`, `person3`, `man1`, `woman2`;
- the camera from a part like `cam1`, `camera_03`, `c5`, `view2`;
- the action from a path part naming one of the actions below (`Walk`, `jump_in_place`, `run-fall` ...),
  or, when `annotations` is given, from a CSV with columns actor,code,action that names the action of
  each sequence folder (`code`) of each actor (MPOSE2021 ships such a table as i3dpost_archives.csv).
No official split: grouped 70/30 by actor; cross-view works (8 cameras).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from fgm_common.datasets.base import Annotation, register
from fgm_common.datasets.naming import components, fail

# normalised spelling (letters only) -> class
ACTIONS = {
    "walk": "walk", "run": "run", "jump": "jump", "bend": "bend",
    "handwave": "hand_wave", "wave": "hand_wave",
    "jumpinplace": "jump_in_place", "pjump": "jump_in_place",
    "sitstandup": "sit_stand_up", "sitstand": "sit_stand_up",
    "runfall": "run_fall", "walksit": "walk_sit", "runjumpwalk": "run_jump_walk",
    "handshake": "handshake", "pull": "pull",
}
CLASSES = tuple(sorted(set(ACTIONS.values())))

# Tokens bounded by separators, anywhere in the path: 'Actor1/...', 'actor_01_walk_cam3.avi'.
_ACTOR = re.compile(r"(?<![a-z0-9])(actor|person|subject|man|woman)[_\- ]?(\d+)(?![a-z0-9])", re.IGNORECASE)
_CAMERA = re.compile(r"(?<![a-z0-9])(?:cam|camera|c|view)[_\- ]?(\d+)(?![a-z0-9])", re.IGNORECASE)
_EXT = re.compile(r"\.[A-Za-z0-9]{1,5}$")

DESCRIPTIONS: dict[str, list[str]] = {
    "walk": ["a person walking across a studio with a plain background.",
             "someone walking at a normal pace, filmed from several cameras around them."],
    "run": ["a person running across a studio with a plain background.",
            "someone running fast through a capture studio."],
    "jump": ["a person jumping forward across a studio floor.",
             "someone leaping forwards with both feet, in a multi-camera studio."],
    "bend": ["a person bending forward at the waist towards the floor and straightening up.",
             "someone stooping down with the upper body and standing up again."],
    "hand_wave": ["a person standing still and waving one hand.",
                  "someone raising an arm and waving it from side to side."],
    "jump_in_place": ["a person jumping up and down on the spot.",
                      "someone bouncing vertically in place without moving forward."],
    "sit_stand_up": ["a person sitting down on a chair and then standing up again.",
                     "someone lowering onto a seat and rising back to standing."],
    "run_fall": ["a person running and then falling down onto the floor.",
                 "someone tripping while running and ending on the ground."],
    "walk_sit": ["a person walking to a chair and sitting down on it.",
                 "someone walking across a studio and then taking a seat."],
    "run_jump_walk": ["a person running, jumping once and then walking on.",
                      "someone switching from a run to a jump and then to a walk."],
    "handshake": ["two people walking towards each other and shaking hands.",
                  "a pair of people greeting with a handshake."],
    "pull": ["one person pulling another person by the arm.",
             "someone grabbing a second person and pulling them along."],
}


@register("i3dpost")
class I3DPostDataset:
    """Actor, camera and action from path parts; optional actor,code,action CSV for coded sequence folders."""

    name = "i3dpost"
    protocol = "auto"  # grouped 70/30 by actor; cross-view also works
    classes = CLASSES
    descriptions = DESCRIPTIONS

    def __init__(self, annotations: str | Path | None = None):
        """`annotations`: CSV with header actor,code,action (any case); code = a sequence folder name."""
        self.codes = _read_codes(Path(annotations)) if annotations else {}

    def annotate(self, key: str, meta: dict) -> Annotation:
        parts = components(key)
        path = "/".join(parts)
        actor = next((_actor_id(m) for m in _ACTOR.finditer(path)), "")
        camera = next((f"cam{int(m[1])}" for m in reversed(list(_CAMERA.finditer(path)))), "")
        action = self._action(parts, actor)
        if not (actor and camera and action):
            missing = [n for n, v in (("actor (Actor1, person3 ...)", actor), ("camera (cam1, camera_3 ...)", camera),
                                      (f"action (one of {sorted(ACTIONS)}, or a code in the annotations CSV)",
                                       action)) if not v]
            raise fail(key, "i3DPost path parts naming an " + ", an ".join(missing))
        return Annotation(action, group=actor, view=camera)

    def _action(self, parts: list[str], actor: str) -> str:
        for p in parts:
            if (actor, p.lower()) in self.codes:
                return self.codes[(actor, p.lower())]
        # What is left of a part once actor, camera and extension are taken out: 'Actor_05_Walk-sit_cam4.avi'
        # -> 'walksit'. A whole remainder naming an action beats a single word in it (run-jump-walk is not run).
        rests = [_CAMERA.sub(" ", _ACTOR.sub(" ", _EXT.sub("", p))) for p in parts]
        for rest in rests:
            if _letters(rest) in ACTIONS:
                return ACTIONS[_letters(rest)]
        for rest in rests:
            found = {ACTIONS[w] for w in map(_letters, re.split(r"[_\-. ]+", rest)) if w in ACTIONS}
            if len(found) == 1:
                return found.pop()
        return ""


def _actor_id(m: re.Match | None) -> str:
    """A match of 'Actor_01' -> 'actor1'; '' for no match."""
    return f"{m[1].lower()}{int(m[2])}" if m else ""


def _letters(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower())


def _read_codes(path: Path) -> dict[tuple[str, str], str]:
    """CSV actor,code,action -> {(actor, code): class}; actors normalised like path parts (Actor1 -> actor1)."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for n, row in enumerate(rows, 2):
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        if not {"actor", "code", "action"} <= set(row):
            raise ValueError(f"{path}: expected a header with the columns actor,code,action")
        if _letters(row["action"]) not in ACTIONS:
            raise ValueError(f"{path}:{n}: unknown i3DPost action {row['action']!r}; known: {sorted(ACTIONS)}")
        actor = _actor_id(_ACTOR.fullmatch(row["actor"].strip())) or re.sub(r"[^a-z0-9]", "", row["actor"].lower())
        out[(actor, row["code"].lower())] = ACTIONS[_letters(row["action"])]
    return out
