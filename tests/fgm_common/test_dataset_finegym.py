"""FineGym: write_manifest over the published annotation files, and the gym99/gym288 adapters on both layouts."""

from __future__ import annotations

import csv
import json

import pytest

from extract.inputs import read_manifest
from fgm_common.datasets import Annotation, LayoutError, get_dataset
from fgm_common.datasets.finegym import Gym99Dataset, Gym288Dataset, element_sentences, read_categories, write_manifest
from fgm_common.datasets.naming import Excluded

# Event times are seconds of the YouTube video; element times are seconds of the event.
ANNOTATION = {
    "0LtLS9wROrk": {
        "E_002407_002435": {"event": 4, "timestamps": [[2407.04, 2435.2]], "segments": {
            "A_0003_0005": {"stages": 1, "timestamps": [[3.04, 5.56]]},
            "A_0010_0015": {"stages": 3, "timestamps": [[10.0, 11.0], [11.0, 13.0], [13.0, 15.48]]}}},
        "E_000100_000110": {"event": 1, "timestamps": [[100.0, 110.0]], "segments": None},
    },
    "a_b-c_d1234": {"E_000010_000020": {"event": 2, "timestamps": [[10.0, 20.0]], "segments": {
        "A_0001_0002": {"stages": 1, "timestamps": [[1.0, 2.5]]}}}},
    "notDownload": {"E_000001_000009": {"event": 2, "timestamps": [[1.0, 9.0]], "segments": {
        "A_0001_0003": {"stages": 1, "timestamps": [[1.0, 3.0]]}}}},
}
TRAIN = ["0LtLS9wROrk_E_002407_002435_A_0003_0005 12", "a_b-c_d1234_E_000010_000020_A_0001_0002 0",
         "notDownload_E_000001_000009_A_0001_0003 12"]
VAL = ["0LtLS9wROrk_E_002407_002435_A_0010_0015 5", "notInJson_E_000001_000002_A_0001_0002 0"]
CATEGORIES = ["Clabel:   0; set:  1; Glabel:   1; (VT) round-off, flic-flac with 0.5 turn on, stretched salto "
              "forward with 0.5 turn off",
              "Clabel:   5; set:  1; Glabel:  24; (VT) round-off, flic-flac on, stretched salto backward off",
              "Clabel:  12; set: 21; Glabel:  81; (FX) split jump (leg separation 180 degree parallel to the floor)"]
SPLIT_JUMP = "(FX) split jump (leg separation 180 degree parallel to the floor)"


@pytest.fixture
def published(tmp_path):
    """The FineGym download: annotation json, gym99 lists and categories, and the YouTube videos fetched."""
    ann = tmp_path / "annotations"
    ann.mkdir()
    (ann / "finegym_annotation_info_v1.0.json").write_text(json.dumps(ANNOTATION))
    (ann / "gym99_train_element_v1.0.txt").write_text("\n".join(TRAIN) + "\n")
    (ann / "gym99_val_element.txt").write_text("\n".join(VAL) + "\n")
    (ann / "gym99_categories.txt").write_text("\n".join(CATEGORIES) + "\n")
    videos = tmp_path / "gym" / "videos"
    videos.mkdir(parents=True)
    for vid in ("0LtLS9wROrk.mp4", "a_b-c_d1234.mkv"):
        (videos / vid).write_bytes(b"")
    return tmp_path


def _write(published, categories=True):
    ann = published / "annotations"
    return write_manifest(ann / "finegym_annotation_info_v1.0.json",
                          [ann / "gym99_train_element_v1.0.txt", ann / "gym99_val_element.txt"],
                          published / "gym" / "videos", published / "gym" / "gym99.csv",
                          categories=ann / "gym99_categories.txt" if categories else None)


def test_manifest_rows_times_and_groups(published):
    summary = _write(published)
    assert (summary.rows, summary.missing_videos, summary.unannotated) == (3, ("notDownload",), 1)
    rows = list(csv.DictReader((published / "gym" / "gym99.csv").open()))
    assert [r["path"] for r in rows] == ["videos/0LtLS9wROrk.mp4", "videos/a_b-c_d1234.mkv", "videos/0LtLS9wROrk.mp4"]
    first = rows[0]
    assert (first["label"], first["group"], first["split"]) == (SPLIT_JUMP, "0LtLS9wROrk", "train")
    assert (first["start_ms"], first["end_ms"]) == ("2410080", "2412600")  # 2407.04 + 3.04 s, 2407.04 + 5.56 s
    assert (rows[2]["start_ms"], rows[2]["end_ms"], rows[2]["split"]) == ("2417040", "2422520", "val")  # 3 stages


def test_extract_reads_the_manifest_and_the_adapter_labels_its_entries(published):
    _write(published)
    items = read_manifest(published / "gym" / "gym99.csv").items
    assert len({i.key for i in items}) == 3 and all("#" in i.key for i in items)
    assert (items[1].start_ms, items[1].end_ms) == (11000.0, 12500.0)
    gym = get_dataset("gym99")  # no annotation folder: labels come from what the manifest recorded
    anns = [gym.annotate(i.key, {"label": i.label, "group": i.group, "split": i.split}) for i in items]
    assert anns[0] == Annotation(SPLIT_JUMP, group="0LtLS9wROrk", split="train")
    assert [a.group for a in anns] == ["0LtLS9wROrk", "a_b-c_d1234", "0LtLS9wROrk"]
    assert gym.descriptions[SPLIT_JUMP][0] == ("a gymnast performing split jump (leg separation 180 degree "
                                               "parallel to the floor) on the floor exercise.")


def test_manifest_without_categories_uses_numbered_labels(published):
    _write(published, categories=False)
    labels = [r["label"] for r in csv.DictReader((published / "gym" / "gym99.csv").open())]
    assert labels == ["element_012", "element_000", "element_005"]
    assert "number 12" in element_sentences("element_012")[0]


def test_trimmed_element_clips_with_the_annotation_folder(published, tree):
    tree.touch("subactions/0LtLS9wROrk_E_002407_002435_A_0003_0005.mp4",
               "subactions/0LtLS9wROrk_E_002407_002435_A_0010_0015.mp4",
               "subactions/a_b-c_d1234_E_000010_000020_A_0001_0002.mp4")
    gym = Gym99Dataset(annotations=published / "annotations")
    anns = {k: gym.annotate(k, {"label": "subactions"}) for k in tree.keys()}
    assert anns["subactions/0LtLS9wROrk_E_002407_002435_A_0010_0015.mp4"] == Annotation(
        "(VT) round-off, flic-flac on, stretched salto backward off", group="0LtLS9wROrk", split="val")
    assert anns["subactions/a_b-c_d1234_E_000010_000020_A_0001_0002.mp4"].group == "a_b-c_d1234"
    assert set(gym.descriptions) == set(read_categories(published / "annotations" / "gym99_categories.txt").values())
    assert all(len(s) == 3 for s in gym.descriptions.values())


def test_element_not_in_the_lists_or_no_lists_is_a_layout_error(published):
    key = "subactions/zzz_E_000001_000002_A_0001_0002.mp4"
    with pytest.raises(Excluded) as err:  # FineGym times more elements than Gym99 lists: left out, not wrong
        Gym99Dataset(annotations=published / "annotations").annotate(key, {})
    assert key in str(err.value) and "gym99 train/val lists" in str(err.value)
    with pytest.raises(LayoutError, match="--annotations"):
        get_dataset("gym99").annotate("subactions/0LtLS9wROrk_E_002407_002435_A_0003_0005.mp4", {})


def test_a_plain_folder_clip_is_a_layout_error():
    with pytest.raises(LayoutError) as err:
        get_dataset("gym288").annotate("vault/clip01.mp4", {"label": "vault"})  # a folder label is not a FineGym class
    assert "vault/clip01.mp4" in str(err.value) and "gym288" in str(err.value)


def test_missing_lists_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="gym288_train_element"):
        Gym288Dataset(annotations=tmp_path)
