"""Weizmann adapter: actor_action[12].avi names, 9 actors, 10 classes, leave-one-actor-out."""

from __future__ import annotations

from collections import Counter

import pytest

from fgm_common.datasets import Annotation, LayoutError, get_dataset
from fgm_common.datasets.weizmann import ACTORS, CLASSES
from train.fitting.splits import SplitSpec, make_folds


def _publish(tree):
    """One folder per action zip (bend.zip -> bend/); Lena's run, skip and walk come twice."""
    for action in CLASSES:
        for actor in ACTORS:
            takes = ("1", "2") if actor == "lena" and action in ("run", "skip", "walk") else ("",)
            tree.touch(*(f"{action}/{actor}_{action}{t}.avi" for t in takes))


def test_published_tree_is_labelled(tree):
    _publish(tree)
    weizmann = get_dataset("weizmann")
    anns = {k: weizmann.annotate(k, {}) for k in tree.keys()}
    assert len(anns) == 93
    assert Counter(a.label for a in anns.values()) == {c: 10 if c in ("run", "skip", "walk") else 9 for c in CLASSES}
    assert anns["run/lena_run2.avi"] == Annotation("run", group="lena")
    assert anns["wave2/daria_wave2.avi"] == Annotation("wave2", group="daria")  # wave1/wave2 are two classes
    assert anns["pjump/shahar_pjump.avi"].label == "pjump"


def test_protocol_is_leave_one_actor_out(tree):
    _publish(tree)
    weizmann = get_dataset("weizmann")
    anns = [weizmann.annotate(k, {}) for k in tree.keys()]
    folds = make_folds(SplitSpec(protocol=weizmann.protocol), [a.label for a in anns], [a.group for a in anns])
    assert sorted(f.name for f in folds) == sorted(f"leave-out-{a}" for a in ACTORS)
    lena = [f for f in folds if f.name == "leave-out-lena"][0]
    assert len(lena.val) == 13 and len(lena.train) == 80


@pytest.mark.parametrize("key", [
    "walk/bob_walk.avi",  # not one of the 9 actors
    "walk/daria_moonwalk.avi",  # the robustness set, not a class
    "wave1/daria_wave3.avi",
    "walk/daria_walk3.avi",
    "daria.avi",
])
def test_bad_name_is_a_layout_error_naming_the_file(key):
    with pytest.raises(LayoutError) as err:
        get_dataset("weizmann").annotate(key, {})
    assert key in str(err.value) and "<actor>_<action>" in str(err.value)
