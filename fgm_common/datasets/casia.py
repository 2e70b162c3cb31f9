"""CASIA Action Database (CBSR, Institute of Automation, CAS): view, persons, action from `<view>view_pNN_<action>_aN`.

Outdoor clips filmed at once by three cameras: angle view, horizontal view and top-down view. Single
persons do walk, run, bend, jump, crouch, faint, wander and punching a car (token `car`); pairs of
persons (`p01p02`) do interactions such as rob or fight. The name pattern was seen in a public
re-distribution (SPHAR, which only prefixes `casia_`); the publisher's own page could not be read.
Interactions are left out by default (a pair would put one person in two groups); pass
`interactions=True` to label them with their action token. No official split: grouped 70/30 by person.
"""

from __future__ import annotations

import re

from fgm_common.datasets.base import Annotation, register
from fgm_common.datasets.naming import components, excluded, fail, stem

# a view name with everything but letters removed -> view; 'top_down', 'Top Down View' read as topdown
VIEWS = {"angle": "angle", "horizontal": "horizontal", "topdown": "topdown", "top": "topdown"}
# action token in the file name -> class
SINGLE = {"walk": "walk", "run": "run", "bend": "bend", "jump": "jump", "crouch": "crouch",
          "faint": "faint", "wander": "wander", "car": "punch_car", "punchcar": "punch_car"}
CLASSES = tuple(sorted(set(SINGLE.values())))

_NAME = re.compile(r"^(?:casia_)?(?:(?P<view>[a-z_\-]+?)view_)?(?P<persons>(?:p\d+)+)_(?P<action>[a-z]+)"
                   r"(?:_a?(?P<take>\d+))?$", re.IGNORECASE)
_PERSON = re.compile(r"p\d+", re.IGNORECASE)

DESCRIPTIONS: dict[str, list[str]] = {
    "walk": [
        "a person walking across an outdoor square, filmed by a surveillance camera.",
        "a pedestrian walking steadily along a path outside.",
    ],
    "run": [
        "a person running across an outdoor square, filmed by a surveillance camera.",
        "someone running fast along a path outside.",
    ],
    "bend": [
        "a person stopping and bending down towards the ground outdoors.",
        "someone stooping over to pick something up from the ground.",
    ],
    "jump": [
        "a person jumping forward while moving across an outdoor square.",
        "someone hopping along a path with both feet leaving the ground.",
    ],
    "crouch": [
        "a person squatting down low on the ground and staying crouched.",
        "someone crouching down on the heels outdoors and then standing up.",
    ],
    "faint": [
        "a person suddenly collapsing and falling down onto the ground.",
        "someone fainting while walking and lying still on the ground.",
    ],
    "wander": [
        "a person wandering aimlessly back and forth in an outdoor area.",
        "someone loitering and pacing around without a clear direction.",
    ],
    "punch_car": [
        "a person punching and hitting a parked car.",
        "someone attacking a car with the fists, vandalising it.",
    ],
}


@register("casia")
class CASIADataset:
    """[<view>/]<view>view_pNN_<action>_aN.<ext>: label = action, group = person, view = angle/horizontal/topdown."""

    name = "casia"
    protocol = "auto"  # grouped 70/30 by person; cross-view also works (three views)
    classes = CLASSES

    def __init__(self, interactions: bool = False):
        self.interactions = interactions
        self.descriptions = dict(DESCRIPTIONS)

    def annotate(self, key: str, meta: dict) -> Annotation:
        m = _NAME.match(stem(key))
        if not m:
            raise fail(key, "a CASIA file name <view>view_p<NN>_<action>_a<N>, e.g. angleview_p01_walk_a1.avi")
        view = _view(m["view"], components(key)[:-1])
        if not view:
            raise fail(key, f"a camera view ({sorted(set(VIEWS.values()))}) in the file name "
                            "(angleview_...) or in a parent folder")
        persons = _PERSON.findall(m["persons"].lower())
        action = m["action"].lower()
        if len(persons) > 1:
            if not self.interactions:
                raise excluded(key, "a two-person interaction (construct the adapter with interactions=True "
                                    "to keep them)")
            return Annotation(action, group="".join(persons), view=view)
        if action not in SINGLE:
            raise fail(key, f"a single-person action token one of {sorted(SINGLE)}")
        return Annotation(SINGLE[action], group=persons[0], view=view)


def _view(token: str | None, folders: list[str]) -> str:
    """The view named in the file name, else the innermost folder that names one; '' when neither does."""
    for name in ([token] if token else []) + folders[::-1]:
        letters = re.sub(r"[^a-z]", "", name.lower()).removesuffix("view")
        if letters in VIEWS:
            return VIEWS[letters]
    return ""
