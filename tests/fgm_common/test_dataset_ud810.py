"""ud810 adapter: PS7A{action}P{person}T{trial} names; the 27 real clips, 3 persons."""

from __future__ import annotations

from collections import Counter

import pytest

from fgm_common.datasets import Annotation, LayoutError, get_dataset
from train.fitting.splits import SplitSpec, make_folds


def test_published_flat_folder_is_labelled(tree):
    tree.touch(*(f"input/PS7A{a}P{p}T{t}.avi" for a in (1, 2, 3) for p in (1, 2, 3) for t in (1, 2, 3)))
    ud = get_dataset("ud810")
    anns = {k: ud.annotate(k, {}) for k in tree.keys()}
    assert anns["input/PS7A1P2T3.avi"] == Annotation("arms_sideways_overhead", group="person2")
    assert anns["input/PS7A2P3T1.avi"] == Annotation("one_arm_raise_wave", group="person3")
    assert anns["input/PS7A3P1T2.avi"] == Annotation("arms_forward_overhead", group="person1")
    folds = make_folds(SplitSpec(protocol=ud.protocol), [a.label for a in anns.values()],
                       [a.group for a in anns.values()])
    assert [len(f.val) for f in folds] == [9, 9, 9]


@pytest.mark.parametrize("key", ["input/PS7A4P1T1.avi", "input/PS6A1P1T1.avi", "input/A1P1T1.avi"])
def test_bad_name_is_a_layout_error_naming_the_file(key):
    with pytest.raises(LayoutError) as err:
        get_dataset("ud810").annotate(key, {})
    assert key in str(err.value) and "PS7A" in str(err.value)


def test_real_clips_all_labelled_with_three_persons(shared_data, tree):
    tree.root = shared_data / "ud810_ps7"
    ud = get_dataset("ud810")
    anns = {k: ud.annotate(k, {}) for k in tree.keys()}
    assert len(anns) == 27
    assert Counter(a.group for a in anns.values()) == {"person1": 9, "person2": 9, "person3": 9}
    for key, ann in anns.items():
        assert ann.label == key.split("/")[0]  # agrees with the class folders of the shared copy
    groups = dict(line.split("\t")[:2] for line in (shared_data / "GROUPS.tsv").read_text().splitlines()[1:])
    for key, ann in anns.items():
        assert groups[f"ud810_ps7/{key}"] == ann.group
