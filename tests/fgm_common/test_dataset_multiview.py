"""Generic multi-view adapter: <class>/<view>/<clip> or <class>/<clip with a view token>."""

from __future__ import annotations

import pytest

from fgm_common.datasets import Annotation, LayoutError, get_dataset
from train.fitting.splits import SplitSpec, make_folds


def test_class_view_clip_folders(tree):
    for cls in ("pick_up", "put_down"):
        for view in ("front", "left", "top"):
            tree.touch(*(f"{cls}/{view}/subject{s}_take1.mp4" for s in (1, 2, 3)))
            tree.frames(f"{cls}/{view}/subject4_take1", n=2)
    mv = get_dataset("multiview")
    anns = {k: mv.annotate(k, {}) for k in tree.keys()}
    assert len(anns) == 2 * 3 * 4
    assert anns["put_down/left/subject2_take1.mp4"] == Annotation("put_down", group="subject2", view="left")
    assert anns["pick_up/top/subject4_take1"] == Annotation("pick_up", group="subject4", view="top")
    folds = make_folds(SplitSpec(protocol="cross-view", val_view="top"), [a.label for a in anns.values()],
                       views=[a.view for a in anns.values()])
    assert len(folds[0].val) == 8


@pytest.mark.parametrize("key, ann", [
    ("data/wave/p03_cam2.avi", Annotation("wave", group="p3", view="view2")),  # view token in the name
    ("wave/camera_02/actor1.avi", Annotation("wave", group="actor1", view="view2")),  # camera folder
    ("wave/view2/s05_cam2.avi", Annotation("wave", group="s5", view="view2")),  # both: the folder is the view
    ("wave/v1/clip.avi#0-1000", Annotation("wave", view="view1")),
])
def test_view_and_actor_tokens(key, ann):
    assert get_dataset("multiview").annotate(key, {}) == ann


@pytest.mark.parametrize("key", ["wave/clip.avi", "clip_cam1.avi"])
def test_bad_path_is_a_layout_error_naming_the_file(key):
    with pytest.raises(LayoutError) as err:
        get_dataset("multiview").annotate(key, {})
    assert key in str(err.value) and "<class>/<view>/<clip>" in str(err.value)
