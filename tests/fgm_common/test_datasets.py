"""Dataset adapters: the registry, `folder` (label = parent folder) and `csv` (what the manifest recorded)."""

from __future__ import annotations

import pytest

from fgm_common.datasets import DATASETS, Annotation, LayoutError, get_dataset, register


def test_registry_holds_the_generic_adapters():
    assert {"folder", "csv"} <= set(DATASETS)
    for name in ("folder", "csv"):
        adapter = get_dataset(name)
        assert adapter.name == name
        assert isinstance(adapter.descriptions, dict)


def test_unknown_dataset_error_lists_the_choices():
    with pytest.raises(ValueError) as err:
        get_dataset("no-such-dataset")
    msg = str(err.value)
    assert "no-such-dataset" in msg
    for name in DATASETS:
        assert name in msg


def test_register_adds_an_adapter(monkeypatch):
    monkeypatch.setattr("fgm_common.datasets.base.DATASETS", dict(DATASETS))
    from fgm_common.datasets import base

    @register("toy")
    class Toy:
        name = "toy"
        descriptions: dict = {}

        def annotate(self, key, meta):
            return Annotation("x")

    assert base.DATASETS["toy"] is Toy
    assert isinstance(base.get_dataset("toy"), Toy)
    assert "toy" not in DATASETS  # the real registry was not touched


@pytest.mark.parametrize("key, label", [
    ("jump/a.mp4", "jump"),
    ("set1/wave/b.avi", "wave"),  # nested: the immediate parent is the class
    ("run/c.mp4#1000-2500", "run"),  # a sub-clip key keeps its video's class
    ("walk/frames_dir", "walk"),  # a frame folder is a video too
])
def test_folder_labels_from_the_parent_folder(key, label):
    ann = get_dataset("folder").annotate(key, {"label": "ignored", "group": "p1", "view": "v", "split": "train"})
    assert ann == Annotation(label)  # no group, view or split: the layout has none


def test_folder_refuses_a_top_level_file():
    with pytest.raises(LayoutError, match="top.level") as err:
        get_dataset("folder").annotate("loose.mp4", {})
    assert "loose.mp4" in str(err.value)
    assert isinstance(err.value, ValueError)  # callers that catch ValueError see it too


def test_csv_uses_the_recorded_fields():
    meta = {"label": "wave", "group": "person3", "view": "cam2", "split": "test", "size": 123}
    ann = get_dataset("csv").annotate("any/path/x.mp4", meta)
    assert ann == Annotation("wave", "person3", "cam2", "test")


def test_csv_missing_optional_fields_are_empty():
    ann = get_dataset("csv").annotate("x.mp4", {"label": "wave"})
    assert (ann.label, ann.group, ann.view, ann.split) == ("wave", "", "", "")


@pytest.mark.parametrize("meta", [{}, {"label": ""}, {"group": "p1"}])
def test_csv_without_a_label_is_a_layout_error(meta):
    with pytest.raises(LayoutError, match="label") as err:
        get_dataset("csv").annotate("clips/x.mp4", meta)
    assert "clips/x.mp4" in str(err.value)
