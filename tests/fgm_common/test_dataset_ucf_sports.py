"""UCF Sports adapter: 13 published folders -> 10 actions with the camera side; clips as frame folders or .avi."""

from __future__ import annotations

from collections import Counter

import pytest

from fgm_common.datasets import Annotation, LayoutError, get_dataset

# Clips per published folder (150 in all), and the per-action counts the publisher's page states.
FOLDER_CLIPS = {"Diving-Side": 14, "Golf-Swing-Back": 5, "Golf-Swing-Front": 8, "Golf-Swing-Side": 5,
                "Kicking-Front": 10, "Kicking-Side": 10, "Lifting": 6, "Riding-Horse": 12, "Run-Side": 13,
                "SkateBoarding-Front": 12, "Swing-Bench": 20, "Swing-SideAngle": 13, "Walk-Front": 22}
ACTION_CLIPS = {"diving": 14, "golf_swing": 18, "kicking": 20, "lifting": 6, "riding_horse": 12, "running": 13,
                "skateboarding": 12, "swing_bench": 20, "swing_side": 13, "walking": 22}


def _publish(tree):
    """ucf_sports_actions/ucf action/<Folder>/<NNN>/: frames + .avi; every third clip also has gt/ boxes."""
    for folder, n in FOLDER_CLIPS.items():
        for i in range(1, n + 1):
            clip = f"ucf_sports_actions/ucf action/{folder}/{i:03d}"
            tree.frames(clip, n=3)
            tree.touch(f"{clip}/{4000 + i}-1_7{i:04d}.avi")
            if i % 3 == 0:
                tree.touch(f"{clip}/gt/{4000 + i}-1_7{i:04d}.tif.txt")


@pytest.mark.parametrize("pointed_at", ["ucf_sports_actions", "ucf_sports_actions/ucf action"])
def test_published_tree_gives_the_ten_actions(tree, pointed_at):
    _publish(tree)
    keys = tree.keys(pointed_at)
    assert len(keys) == 150  # one key per clip: a folder holding a video file is read through that video
    ucf = get_dataset("ucf-sports")
    anns = {k: ucf.annotate(k, {}) for k in keys}
    assert Counter(a.label for a in anns.values()) == ACTION_CLIPS
    assert set(ucf.descriptions) == set(ACTION_CLIPS)
    prefix = "ucf action/" if pointed_at == "ucf_sports_actions" else ""
    assert anns[f"{prefix}Golf-Swing-Back/001/4001-1_70001.avi"] == Annotation("golf_swing", view="back")
    assert anns[f"{prefix}Kicking-Side/003/4003-1_70003.avi"] == Annotation("kicking", view="side")
    assert anns[f"{prefix}Lifting/002/4002-1_70002.avi"] == Annotation("lifting")
    assert all(a.group == "" and a.split == "" for a in anns.values())


@pytest.mark.parametrize("key", [
    "ucf action/Diving-Side",  # a class folder without a clip
    "ucf action/Bowling-Side/001",  # not a UCF Sports folder
    "001/clip.avi",
])
def test_bad_path_is_a_layout_error_naming_the_file(key):
    with pytest.raises(LayoutError) as err:
        get_dataset("ucf-sports").annotate(key, {})
    assert key in str(err.value) and "class folder" in str(err.value)
