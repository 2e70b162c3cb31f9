"""ud810 problem set 7 (Udacity Intro to Computer Vision): `PS7A{action}P{person}T{trial}.avi`, 3 x 3 x 3 clips.

The course numbers the actions A1-A3; the names below describe what the clips show (A1 and A3 end in the
same pose and differ only in the arm trajectory). With 3 persons the protocol is leave-one-person-out.
"""

from __future__ import annotations

import re

from fgm_common.datasets.base import Annotation, register
from fgm_common.datasets.naming import fail, stem

ACTIONS = {"1": "arms_sideways_overhead", "2": "one_arm_raise_wave", "3": "arms_forward_overhead"}
CLASSES = tuple(ACTIONS.values())

_NAME = re.compile(r"^PS7A(?P<action>\d)P(?P<person>\d+)T(?P<trial>\d+)$", re.IGNORECASE)

DESCRIPTIONS: dict[str, list[str]] = {
    "arms_sideways_overhead": [
        "a person raising both straight arms out to the sides and up until the hands meet above the head.",
        "someone lifting both arms sideways in a wide arc to an overhead position.",
        "a standing person sweeping both arms up through the sides of the body to point straight up.",
    ],
    "one_arm_raise_wave": [
        "a person raising one arm and waving the hand from side to side.",
        "someone lifting a single arm above the shoulder and waving it.",
        "a standing person waving hello with one raised hand while the other arm stays down.",
    ],
    "arms_forward_overhead": [
        "a person raising both straight arms forward in front of the body and up until they point overhead.",
        "someone lifting both arms up through the front, like a forward raise ending above the head.",
        "a standing person swinging both arms forward and upward to an overhead position.",
    ],
}


@register("ud810")
class UD810Dataset:
    """PS7A<a>P<p>T<t>.avi: label from the action number, group = person<p>; leave-one-person-out."""

    name = "ud810"
    protocol = "logo"
    classes = CLASSES
    descriptions = DESCRIPTIONS

    def annotate(self, key: str, meta: dict) -> Annotation:
        m = _NAME.match(stem(key))
        if not m or m["action"] not in ACTIONS:
            raise fail(key, "a ud810 file name PS7A<1-3>P<person>T<trial>, e.g. PS7A1P2T3.avi")
        return Annotation(ACTIONS[m["action"]], group=f"person{int(m['person'])}")
