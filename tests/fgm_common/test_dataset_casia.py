"""CASIA adapter: <view>view_pNN_<action>_aN names -> action, person, one of three views; interactions opt-in."""

from __future__ import annotations

from collections import Counter

import pytest

from fgm_common.datasets import Annotation, LayoutError, get_dataset
from fgm_common.datasets.casia import CASIADataset, CLASSES
from fgm_common.datasets.naming import Excluded
from train.fitting.splits import SplitSpec, make_folds

TOKENS = ("walk", "run", "bend", "jump", "crouch", "faint", "wander", "car")
VIEWS = ("angle", "horizontal", "topdown")


def _publish(tree, persons=4):
    for view in VIEWS:
        for p in range(1, persons + 1):
            tree.touch(*(f"{view}/{view}view_p{p:02d}_{a}_a1.avi" for a in TOKENS))
        tree.touch(f"{view}/{view}view_p01p02_fight_a1.avi", f"{view}/{view}view_p03p04_rob_a1.avi")


def test_single_person_clips_are_labelled_and_pairs_left_out(tree):
    _publish(tree)
    casia = get_dataset("casia")
    anns, skipped = {}, {}
    for k in tree.keys():
        try:
            anns[k] = casia.annotate(k, {})
        except LayoutError as e:
            skipped[k] = e
    assert len(anns) == 3 * 4 * 8 and len(skipped) == 6
    # Left out on purpose, not a layout mistake: callers that must label everything can tell the two apart.
    assert all(isinstance(e, Excluded) and "interactions=True" in str(e) for e in skipped.values())
    assert Counter(a.label for a in anns.values()) == {c: 12 for c in CLASSES}
    assert anns["topdown/topdownview_p03_car_a1.avi"] == Annotation("punch_car", group="p03", view="topdown")
    assert anns["angle/angleview_p01_faint_a1.avi"] == Annotation("faint", group="p01", view="angle")
    folds = make_folds(SplitSpec(protocol="cross-view"), [a.label for a in anns.values()],
                       views=[a.view for a in anns.values()])
    assert sorted(f.name for f in folds) == ["view-angle", "view-horizontal", "view-topdown"]
    assert all(len(f.val) == 32 for f in folds)


def test_interactions_when_asked():
    ann = CASIADataset(interactions=True).annotate("x/casia_angleview_p01p02_fight_a1.mp4", {})
    assert ann == Annotation("fight", group="p01p02", view="angle")


@pytest.mark.parametrize("key, view", [
    ("Top Down View/p05_walk_a2.avi", "topdown"),  # view only in the folder name
    ("horizontal/horizontalview_p07_run_2.avi", "horizontal"),
    ("angleview_p07_run.avi", "angle"),  # no take number
])
def test_view_from_name_or_folder(key, view):
    assert get_dataset("casia").annotate(key, {}).view == view


@pytest.mark.parametrize("key", [
    "angle/angleview_p01_dance_a1.avi",  # not a CASIA action
    "clips/p01_walk_a1.avi",  # no view anywhere
    "angle/walk_01.avi",
])
def test_bad_name_is_a_layout_error_naming_the_file(key):
    with pytest.raises(LayoutError) as err:
        get_dataset("casia").annotate(key, {})
    assert key in str(err.value) and not isinstance(err.value, Excluded)
