"""UCF Sports Action (Rodriguez, Ahmed, Shah 2008; CRCV): label and camera side from the class folder.

As published (ucf_sports_actions.zip): `ucf action/<Folder>/<NNN>/` holds one clip's JPEG frames, often
its .avi, and sometimes a `gt/` folder of bounding boxes. fgm-extract reads `<NNN>` as a frame folder,
or the .avi inside it when `gt/` is present. The 13 folders name 10 actions (the publisher's count)
plus the side the camera saw them from. No actors and no official split are published, so the
protocol is the paper's stratified 70/30.
"""

from __future__ import annotations

from fgm_common.datasets.base import Annotation, register
from fgm_common.datasets.naming import components, fail

# Published folder -> (action, camera side). The side is empty where the folder name gives none.
FOLDERS: dict[str, tuple[str, str]] = {
    "diving-side": ("diving", "side"),
    "golf-swing-back": ("golf_swing", "back"),
    "golf-swing-front": ("golf_swing", "front"),
    "golf-swing-side": ("golf_swing", "side"),
    "kicking-front": ("kicking", "front"),
    "kicking-side": ("kicking", "side"),
    "lifting": ("lifting", ""),
    "riding-horse": ("riding_horse", ""),
    "run-side": ("running", "side"),
    "skateboarding-front": ("skateboarding", "front"),
    "swing-bench": ("swing_bench", ""),
    "swing-sideangle": ("swing_side", "side"),
    "walk-front": ("walking", "front"),
}
CLASSES = tuple(sorted({a for a, _ in FOLDERS.values()}))

DESCRIPTIONS: dict[str, list[str]] = {
    "diving": [
        "a diver jumping off a high platform and spinning in the air before entering the pool.",
        "an athlete diving into a swimming pool with twists and somersaults, seen from the side.",
        "a competitive diver in a tight tuck, rotating in mid air above the water.",
    ],
    "golf_swing": [
        "an athlete swinging a golf club in a full arc.",
        "a golfer taking a full swing at the ball on a golf course.",
        "a player rotating the shoulders and hips to drive a golf ball down the fairway.",
    ],
    "kicking": [
        "a football player kicking the ball hard with one leg.",
        "an athlete swinging a leg through to strike a soccer ball.",
        "a player running up and kicking a ball on a grass pitch.",
    ],
    "lifting": [
        "a weightlifter lifting a heavy barbell from the floor to above the head.",
        "an athlete performing a clean and jerk with a loaded barbell.",
        "a strong athlete pressing a heavy weight overhead at a weightlifting competition.",
    ],
    "riding_horse": [
        "a rider on horseback galloping across a field.",
        "a jockey riding a running horse along a track.",
        "a person riding a horse at speed, bouncing in the saddle.",
    ],
    "running": [
        "an athlete running along a track, seen from the side.",
        "a runner sprinting with long strides in a race.",
        "a person running fast outdoors, arms pumping.",
    ],
    "skateboarding": [
        "a skateboarder rolling along a street on a skateboard.",
        "a person riding a skateboard and pushing off with one foot.",
        "a young skater cruising towards the camera on a skateboard.",
    ],
    "swing_bench": [
        "a gymnast swinging the legs in circles on a pommel horse.",
        "an athlete supporting the body on the hands and circling the legs over a pommel horse.",
        "a male gymnast performing a pommel horse routine in an arena.",
    ],
    "swing_side": [
        "a gymnast swinging around a high bar in giant circles.",
        "an athlete on the horizontal bar swinging the whole body around the bar.",
        "a gymnast performing a high bar routine, releasing and regrasping the bar.",
    ],
    "walking": [
        "a person walking towards the camera on a street.",
        "people walking along a sidewalk at a normal pace.",
        "a pedestrian striding forward with arms swinging.",
    ],
}


@register("ucf-sports")
class UCFSportsDataset:
    """.../<Folder>/<NNN>[/<clip>.avi]: label = the folder's action (10 classes), view = front/side/back."""

    name = "ucf-sports"
    protocol = "stratified"  # the paper's 70/30; the dataset names no actors
    classes = CLASSES
    descriptions = DESCRIPTIONS

    def annotate(self, key: str, meta: dict) -> Annotation:
        parts = components(key)
        # The last class folder wins, so a copy nested under any parent folder reads the same.
        at = [i for i, p in enumerate(parts) if p.lower() in FOLDERS]
        if not at or at[-1] == len(parts) - 1:
            raise fail(key, f"<class folder>/<clip number>[/<clip>.avi] with a class folder one of "
                            f"{sorted(FOLDERS)} (UCF Sports as published)")
        action, side = FOLDERS[parts[at[-1]].lower()]
        return Annotation(action, view=side)
