"""KTH human actions (Schuldt, Laptev, Caputo 2004): label, person and official split from `personXX_action_dY_uncomp`.

The publisher ships one zip per action (boxing.zip, ...) of files `person01_boxing_d1_uncomp.avi`; the
file name alone carries everything, so any folder layout (flat, or one folder per action) works.
"""

from __future__ import annotations

import re

from fgm_common.datasets.base import Annotation, register
from fgm_common.datasets.naming import fail, stem

CLASSES = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")

# The split of the original paper, as the dataset page (00sequences.txt) states it.
TRAIN_PERSONS = (11, 12, 13, 14, 15, 16, 17, 18)
VAL_PERSONS = (19, 20, 21, 23, 24, 25, 1, 4)
TEST_PERSONS = (22, 2, 3, 5, 6, 7, 8, 9, 10)
SPLIT_OF = {p: s for s, ps in (("train", TRAIN_PERSONS), ("val", VAL_PERSONS), ("test", TEST_PERSONS)) for p in ps}

_NAME = re.compile(r"^person(?P<person>\d{2})_(?P<action>[a-z]+)_d(?P<scenario>[1-4])(?:_uncomp)?$")

DESCRIPTIONS: dict[str, list[str]] = {
    "boxing": [
        "a person throwing punches into the air with both fists, standing in place.",
        "someone shadow boxing, arms jabbing forward one after the other.",
        "a man boxing in front of a plain background, fists raised near the face.",
    ],
    "handclapping": [
        "a person standing still and clapping both hands together in front of the chest.",
        "someone repeatedly bringing the palms together in a steady clapping rhythm.",
        "a man clapping his hands while his body and legs stay still.",
    ],
    "handwaving": [
        "a person waving both arms above the head in wide arcs.",
        "someone standing in place raising and lowering both arms sideways to wave.",
        "a man waving his hands high over his head, arms swinging out to the sides.",
    ],
    "jogging": [
        "a person jogging across the scene at a relaxed, steady pace.",
        "someone running slowly from one side of the frame to the other.",
        "a man jogging with short strides, arms bent at the elbows.",
    ],
    "running": [
        "a person running fast across the scene with long strides.",
        "someone sprinting from one side of the frame to the other.",
        "a man running quickly, leaning forward and pumping his arms.",
    ],
    "walking": [
        "a person walking across the scene at a normal pace.",
        "someone strolling from one side of the frame to the other.",
        "a man walking with his arms swinging loosely at his sides.",
    ],
}


@register("kth")
class KTHDataset:
    """personXX_<action>_dY_uncomp.<ext>: label = action, group = personXX, official person split."""

    name = "kth"
    protocol = "official"  # train persons 11-18; val 19-21, 23-25, 1, 4; test 2, 3, 5-10, 22
    classes = CLASSES
    descriptions = DESCRIPTIONS

    def annotate(self, key: str, meta: dict) -> Annotation:
        m = _NAME.match(stem(key))
        if not m or m["action"] not in CLASSES:
            raise fail(key, f"a KTH file name person<01-25>_<action>_d<1-4>_uncomp with action one of {CLASSES}")
        person = int(m["person"])
        if person not in SPLIT_OF:
            raise fail(key, "a KTH person number between 01 and 25")
        return Annotation(m["action"], group=f"person{m['person']}", split=SPLIT_OF[person])
