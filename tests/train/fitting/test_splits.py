"""Train/validation folds: every protocol's contract, seeding, and the errors when the data cannot support it."""

from __future__ import annotations

import numpy as np
import pytest

from train.fitting.splits import PROTOCOLS, SplitSpec, make_folds

# 3 classes x 10 videos; 5 actors, each with 2 videos of every class.
LABELS = np.repeat([0, 1, 2], 10)
GROUPS = np.array([f"p{i % 5}" for i in range(30)])


def _split(protocol: str, labels=LABELS, **kw):
    spec_kw = {k: kw.pop(k) for k in ("val_fraction", "folds", "val_view", "seed") if k in kw}
    return make_folds(SplitSpec(protocol=protocol, **spec_kw), labels, **kw)


def _assert_partition(fold, n):
    """train and val are disjoint and together are every index once."""
    assert not np.intersect1d(fold.train, fold.val).size
    assert sorted(np.concatenate([fold.train, fold.val]).tolist()) == list(range(n))


def test_stratified_is_70_30_and_stratified():
    (fold,) = _split("stratified")
    assert fold.name == "stratified"
    _assert_partition(fold, 30)
    assert len(fold.val) == 9
    assert np.bincount(LABELS[fold.val]).tolist() == [3, 3, 3]  # 30% of each class
    assert np.bincount(LABELS[fold.train]).tolist() == [7, 7, 7]


def test_stratified_is_seeded():
    a = _split("stratified", seed=0)[0]
    b = _split("stratified", seed=0)[0]
    c = _split("stratified", seed=1)[0]
    assert np.array_equal(a.val, b.val) and np.array_equal(a.train, b.train)
    assert not np.array_equal(a.val, c.val)


def test_val_fraction_is_used():
    (fold,) = _split("stratified", val_fraction=0.5)
    assert np.bincount(LABELS[fold.val]).tolist() == [5, 5, 5]


def test_stratified_refuses_a_class_with_one_video():
    labels = np.array([0, 0, 0, 1, 1, 1, 2])  # class 2 has a single video
    with pytest.raises(ValueError, match="at least 2 videos"):
        _split("stratified", labels=labels)


def test_stratified_refuses_a_validation_share_smaller_than_the_classes():
    labels = np.repeat([0, 1, 2], 2)  # 30% of 6 is 2 validation videos for 3 classes
    with pytest.raises(ValueError, match="val-fraction"):
        _split("stratified", labels=labels)
    assert np.bincount(labels[_split("stratified", labels=labels, val_fraction=0.5)[0].val]).tolist() == [1, 1, 1]


def test_group_split_never_shares_a_group():
    for seed in range(5):
        (fold,) = _split("group", groups=GROUPS, seed=seed)
        _assert_partition(fold, 30)
        assert not set(GROUPS[fold.train]) & set(GROUPS[fold.val])
        assert len(set(GROUPS[fold.val])) >= 1


def test_group_split_is_seeded():
    a = _split("group", groups=GROUPS, seed=3)[0]
    b = _split("group", groups=GROUPS, seed=3)[0]
    assert np.array_equal(a.val, b.val)
    vals = {tuple(sorted(_split("group", groups=GROUPS, seed=s)[0].val)) for s in range(5)}
    assert len(vals) > 1  # the seed changes which actors are held out


def test_auto_is_grouped_with_actors_and_stratified_without():
    assert _split("auto", groups=GROUPS)[0].name == "group"
    assert _split("auto")[0].name == "stratified"
    assert _split("auto", groups=[""] * 30)[0].name == "stratified"  # unknown actors


def test_logo_one_fold_per_group_covering_each_index_once():
    folds = _split("logo", groups=GROUPS)
    assert len(folds) == 5
    assert sorted(f.name for f in folds) == [f"leave-out-p{i}" for i in range(5)]
    val = np.concatenate([f.val for f in folds])
    assert sorted(val.tolist()) == list(range(30))  # every video validated exactly once
    for f in folds:
        _assert_partition(f, 30)
        assert len(set(GROUPS[f.val])) == 1
        assert f.name == f"leave-out-{GROUPS[f.val[0]]}"
        assert GROUPS[f.val[0]] not in set(GROUPS[f.train])


@pytest.mark.parametrize("groups", [None, [""] * 30, ["p0"] * 30, ["p0"] * 29 + [""]])
@pytest.mark.parametrize("protocol", ["group", "logo"])
def test_grouped_protocols_need_groups(protocol, groups):
    with pytest.raises(ValueError, match="group"):
        _split(protocol, groups=groups)


@pytest.mark.parametrize("groups", [None, GROUPS])
def test_kfold_covers_every_index_once(groups):
    folds = _split("kfold", groups=groups, folds=5)
    assert [f.name for f in folds] == [f"fold{i}" for i in range(5)]
    val = np.concatenate([f.val for f in folds])
    assert sorted(val.tolist()) == list(range(30))
    for f in folds:
        _assert_partition(f, 30)
        if groups is not None:  # with actors, folds are grouped too
            assert not set(GROUPS[f.train]) & set(GROUPS[f.val])
        else:
            assert np.bincount(LABELS[f.val]).tolist() == [2, 2, 2]


def test_official_with_a_test_list_trains_on_train_and_val():
    splits = np.array(["train", "val", "test", "train", "", "validation"] * 5)
    (fold,) = _split("official", splits=splits)
    assert fold.name == "official"
    assert fold.train.tolist() == np.flatnonzero(np.isin(splits, ["train", "val", "validation"])).tolist()
    assert fold.val.tolist() == np.flatnonzero(splits == "test").tolist()
    assert 4 not in fold.train and 4 not in fold.val  # an unlisted video is in neither


def test_official_without_a_test_list_validates_on_val():
    splits = np.array(["train", "val", "train", "validation", ""] * 6)
    (fold,) = _split("official", splits=splits)
    assert fold.train.tolist() == np.flatnonzero(splits == "train").tolist()
    assert fold.val.tolist() == np.flatnonzero(np.isin(splits, ["val", "validation"])).tolist()


@pytest.mark.parametrize("splits", [None, ["train"] * 30])
def test_official_without_lists_is_refused(splits):
    with pytest.raises(ValueError, match="official"):
        _split("official", splits=splits)


def test_cross_view_holds_out_a_view():
    views = np.array(["front", "side", "top"] * 10)
    (fold,) = _split("cross-view", views=views, val_view="side")
    assert fold.name == "view-side"
    assert set(views[fold.val]) == {"side"} and "side" not in set(views[fold.train])
    _assert_partition(fold, 30)
    folds = _split("cross-view", views=views)  # no view named: each in turn
    assert [f.name for f in folds] == ["view-front", "view-side", "view-top"]
    assert sorted(np.concatenate([f.val for f in folds]).tolist()) == list(range(30))


def test_cross_view_needs_views():
    with pytest.raises(ValueError, match="view"):
        _split("cross-view")


def test_unknown_protocol_lists_the_choices():
    with pytest.raises(ValueError) as err:
        _split("by-moon-phase")
    msg = str(err.value)
    assert "by-moon-phase" in msg
    for name in PROTOCOLS:
        assert name in msg


def test_few_shot_keeps_k_per_class_seeded():
    from train.fitting.splits import Fold, few_shot

    labels = np.repeat(np.arange(3), 10)
    fold = Fold("f", np.array([i for i in range(30) if i % 10 < 7]), np.array([i for i in range(30) if i % 10 >= 7]))
    a, b = few_shot(fold, labels, 2, seed=0), few_shot(fold, labels, 2, seed=0)
    assert np.array_equal(a.train, b.train) and np.array_equal(a.val, fold.val)
    assert np.bincount(labels[a.train]).tolist() == [2, 2, 2] and set(a.train) <= set(fold.train)
    assert not np.array_equal(few_shot(fold, labels, 2, seed=1).train, a.train)


def test_unseen_classes_fold_holds_classes_out_of_training():
    from train.fitting.splits import Fold, unseen_classes

    labels = np.repeat(np.arange(3), 10)
    fold = Fold("f", np.array([i for i in range(30) if i % 10 < 7]), np.array([i for i in range(30) if i % 10 >= 7]))
    z = unseen_classes(fold, labels, [2])
    assert set(labels[z.train]) == {0, 1} and set(labels[z.val]) == {2}
    assert set(z.val) <= set(fold.val)
    with pytest.raises(ValueError, match="held-out classes"):
        unseen_classes(Fold("f", fold.train, fold.val[labels[fold.val] != 2]), labels, [2])
