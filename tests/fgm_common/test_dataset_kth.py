"""KTH adapter: labels, persons and the official person split from personXX_action_dY_uncomp names."""

from __future__ import annotations

from collections import Counter

import pytest

from fgm_common.datasets import Annotation, LayoutError, get_dataset
from fgm_common.datasets.kth import CLASSES
from train.fitting.splits import SplitSpec, make_folds

MISSING = "person13_handclapping_d3_uncomp.avi"  # absent from the published set


def _publish(tree, per_action_folders: bool):
    names = [f"person{p:02d}_{a}_d{d}_uncomp.avi" for a in CLASSES for p in range(1, 26) for d in range(1, 5)]
    names.remove(MISSING)
    tree.touch(*((f"{n.split('_')[1]}/{n}" if per_action_folders else n) for n in names))
    return names


@pytest.mark.parametrize("per_action_folders", [True, False])  # boxing.zip unpacked into boxing/, or all flat
def test_published_tree_is_labelled(tree, per_action_folders):
    _publish(tree, per_action_folders)
    keys = tree.keys()
    kth = get_dataset("kth")
    anns = {k: kth.annotate(k, {}) for k in keys}
    assert len(anns) == 599
    assert Counter(a.label for a in anns.values()) == {c: 100 - (c == "handclapping") for c in CLASSES}
    assert {a.group for a in anns.values()} == {f"person{p:02d}" for p in range(1, 26)}
    assert all(a.view == "" for a in anns.values())
    key = [k for k in keys if k.endswith("person22_walking_d4_uncomp.avi")][0]
    assert anns[key] == Annotation("walking", group="person22", split="test")


def test_official_split_is_the_papers_person_split(tree):
    _publish(tree, per_action_folders=True)
    kth = get_dataset("kth")
    anns = [kth.annotate(k, {}) for k in tree.keys()]
    persons = {s: {int(a.group[6:]) for a in anns if a.split == s} for s in ("train", "val", "test")}
    assert persons["train"] == set(range(11, 19))
    assert persons["val"] == {19, 20, 21, 23, 24, 25, 1, 4}
    assert persons["test"] == {22, 2, 3, 5, 6, 7, 8, 9, 10}
    fold, = make_folds(SplitSpec(protocol=kth.protocol), [a.label for a in anns], [a.group for a in anns],
                       [a.split for a in anns])
    # KTH's protocol: train on the train and val persons (16), test on the 9 test persons
    assert len(fold.train) == 16 * 24 - 1  # person13 misses one clip
    assert {anns[i].split for i in fold.val} == {"test"} and len(fold.val) == 9 * 24


def test_sub_clip_and_other_extension_keep_the_label():
    ann = get_dataset("kth").annotate("boxing/person01_boxing_d2_uncomp.mp4#0-4000", {"label": "ignored"})
    assert ann == Annotation("boxing", group="person01", split="val")


@pytest.mark.parametrize("key", [
    "boxing/person1_boxing_d1_uncomp.avi",  # person number must have two digits
    "boxing/person01_punching_d1_uncomp.avi",  # not a KTH action
    "boxing/person26_boxing_d1_uncomp.avi",  # only persons 01-25
    "boxing/person01_boxing_d5_uncomp.avi",  # scenarios d1-d4
    "boxing/clip.avi",
])
def test_bad_name_is_a_layout_error_naming_the_file(key):
    with pytest.raises(LayoutError) as err:
        get_dataset("kth").annotate(key, {})
    assert key in str(err.value) and "person" in str(err.value)


def test_real_kth_clips_are_labelled(shared_data, tree):
    tree.root = shared_data / "kth_few"
    kth = get_dataset("kth")
    anns = {k: kth.annotate(k, {}) for k in tree.keys()}
    assert len(anns) == 6
    for key, ann in anns.items():
        assert ann.label == key.split("/")[0]  # the shared copy sorts clips into class folders
    assert {a.group: a.split for a in anns.values()} == {"person01": "val", "person03": "test", "person04": "val"}
