"""Weizmann "Actions as Space-Time Shapes" (Gorelick et al. 2007): label and actor from `actor_action.avi`.

The publisher ships one zip per action (bend.zip ... wave2.zip) of files `daria_jack.avi`; Lena
performs run, skip and walk twice (`lena_run1.avi`, `lena_run2.avi`). The usual protocol is
leave-one-actor-out over the 9 actors; there is no official train/test list.
"""

from __future__ import annotations

from fgm_common.datasets.base import Annotation, register
from fgm_common.datasets.naming import fail, stem

CLASSES = ("bend", "jack", "jump", "pjump", "run", "side", "skip", "walk", "wave1", "wave2")
ACTORS = ("daria", "denis", "eli", "ido", "ira", "lena", "lyova", "moshe", "shahar")
_REPEATED = ("run", "skip", "walk")  # the actions that carry a take number 1/2 for Lena

DESCRIPTIONS: dict[str, list[str]] = {
    "bend": [
        "a person bending forward at the waist to reach down towards the ground and standing up again.",
        "someone stooping over with straight legs, hands moving down to the feet.",
    ],
    "jack": [
        "a person doing jumping jacks, arms and legs spreading apart and closing together.",
        "someone jumping in place while clapping the hands above the head and spreading the legs.",
    ],
    "jump": [
        "a person jumping forward on both feet across the scene.",
        "someone hopping forwards with the feet together, travelling sideways through the frame.",
    ],
    "pjump": [
        "a person jumping up and down in place on both feet.",
        "someone bouncing vertically on the spot with the arms at the sides.",
    ],
    "run": [
        "a person running across the scene from one side to the other.",
        "someone running with fast strides past a fixed camera.",
    ],
    "side": [
        "a person galloping sideways across the scene, one foot chasing the other.",
        "someone moving sideways with side steps, legs opening and closing.",
    ],
    "skip": [
        "a person skipping across the scene, hopping on one foot then the other.",
        "someone skipping forward with a bouncy, rhythmic step.",
    ],
    "walk": [
        "a person walking across the scene at a normal pace.",
        "someone walking past the camera with the arms swinging.",
    ],
    "wave1": [
        "a person standing still and waving one hand above the head.",
        "someone raising a single arm and waving it from side to side.",
    ],
    "wave2": [
        "a person standing still and waving both hands above the head.",
        "someone raising both arms and waving them in wide arcs overhead.",
    ],
}


@register("weizmann")
class WeizmannDataset:
    """<actor>_<action>[1|2].avi: label = action, group = actor; protocol leave-one-actor-out."""

    name = "weizmann"
    protocol = "logo"  # leave one of the 9 actors out per fold
    classes = CLASSES
    descriptions = DESCRIPTIONS

    def annotate(self, key: str, meta: dict) -> Annotation:
        actor, _, action = stem(key).lower().partition("_")
        if action not in CLASSES and action[:-1] in _REPEATED and action[-1:] in ("1", "2"):
            action = action[:-1]  # lena_run2 -> run; wave1/wave2 are classes of their own
        if actor not in ACTORS or action not in CLASSES:
            raise fail(key, f"a Weizmann file name <actor>_<action>.avi with actor one of {ACTORS} "
                            f"and action one of {CLASSES}")
        return Annotation(action, group=actor)
