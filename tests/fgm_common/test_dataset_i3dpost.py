"""i3DPost adapter: actor, camera and action from path parts, or from an actor,code,action table."""

from __future__ import annotations

from collections import Counter

import pytest

from fgm_common.datasets import Annotation, LayoutError, get_dataset
from fgm_common.datasets.i3dpost import I3DPostDataset

ACTIONS = ("Walk", "Run", "Jump", "Bend", "Hand-wave", "Jump-in-place", "Sit-stand-up", "Run-fall", "Walk-sit",
           "Run-jump-walk")


def test_named_action_folders(tree):
    """<Actor>/<Action>/<camN>/00000.png: one frame folder per camera."""
    for actor in range(1, 9):
        for action in ACTIONS:
            for cam in range(1, 9):
                tree.frames(f"Actor{actor}/{action}/cam{cam}", n=2, ext=".png")
    i3d = get_dataset("i3dpost")
    anns = {k: i3d.annotate(k, {}) for k in tree.keys()}
    assert len(anns) == 8 * 10 * 8
    assert len({a.label for a in anns.values()}) == 10
    assert Counter(a.view for a in anns.values()) == {f"cam{c}": 80 for c in range(1, 9)}
    assert anns["Actor3/Run-jump-walk/cam7"] == Annotation("run_jump_walk", group="actor3", view="cam7")
    assert anns["Actor1/Jump-in-place/cam2"].label == "jump_in_place"


def test_coded_sequences_with_a_table(tree, tmp_path):
    """MPOSE2021's reading: <actor>/<subfolder>/<sequence code>/<camera>/00000.png, actions from a table."""
    table = tmp_path / "i3dpost_archives.csv"
    table.write_text("Actor,Code,Action\nActor1,001,Walk\nActor1,002,Hand-wave\nActor2,001,Jump in place\n")
    for actor, code in (("Actor1", "001"), ("Actor1", "002"), ("Actor2", "001")):
        for cam in ("camera_01", "camera_08"):
            tree.frames(f"{actor}/sequences/{code}/{cam}", n=2, ext=".png")
    anns = {k: I3DPostDataset(annotations=table).annotate(k, {}) for k in tree.keys()}
    assert anns["Actor1/sequences/002/camera_08"] == Annotation("hand_wave", group="actor1", view="cam8")
    assert anns["Actor2/sequences/001/camera_01"] == Annotation("jump_in_place", group="actor2", view="cam1")
    with pytest.raises(LayoutError, match="code in the annotations"):  # without the table the codes mean nothing
        get_dataset("i3dpost").annotate("Actor1/sequences/002/camera_08", {})


def test_all_in_one_file_name():
    ann = get_dataset("i3dpost").annotate("videos/Actor_05_Walk-sit_cam4.avi", {})
    assert ann == Annotation("walk_sit", group="actor5", view="cam4")


def test_table_with_an_unknown_action_is_refused(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("actor,code,action\nActor1,001,Dance\n")
    with pytest.raises(ValueError, match="Dance"):
        I3DPostDataset(annotations=table)


@pytest.mark.parametrize("key, missing", [
    ("Walk/cam1/clip.avi", "actor"),
    ("Actor1/Walk/clip.avi", "camera"),
    ("Actor1/Dance/cam1", "action"),
])
def test_bad_path_is_a_layout_error_naming_the_file_and_what_is_missing(key, missing):
    with pytest.raises(LayoutError) as err:
        get_dataset("i3dpost").annotate(key, {})
    assert key in str(err.value) and f"an {missing}" in str(err.value)
