"""Input discovery: folder walks (labels, ignored files, frame folders) and manifests (mmaction lines, CSV/TSV)."""

from __future__ import annotations

from pathlib import Path

import pytest

from extract.inputs import VideoItem, discover, discover_folder, read_manifest


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)  # discovery never opens a file, so any bytes do
    return path


def test_folder_walk_labels_ignored_and_frame_folders(tmp_path):
    _touch(tmp_path / "wave" / "b.MP4")
    _touch(tmp_path / "wave" / "a.avi")
    _touch(tmp_path / "jump" / "deep" / "c.mkv")  # label is the direct parent folder
    _touch(tmp_path / "top.webm")  # no class folder: no label
    _touch(tmp_path / "wave" / "notes.txt")  # counted as ignored
    _touch(tmp_path / "jump" / "lonely.jpg")  # one image is not a frame folder
    _touch(tmp_path / "descriptions.json")  # known side files and hidden files are not "ignored"
    _touch(tmp_path / "README.md")
    _touch(tmp_path / "wave" / ".DS_Store")
    for i in (1, 2, 10):
        _touch(tmp_path / "run" / "clip7" / f"img_{i}.jpg")  # a frame folder reads as one video

    found = discover(tmp_path)
    assert [(i.key, i.label) for i in found.items] == [
        ("jump/deep/c.mkv", "deep"),
        ("run/clip7", "run"),
        ("top.webm", ""),
        ("wave/a.avi", "wave"),
        ("wave/b.MP4", "wave"),
    ]
    assert sorted(found.ignored) == ["jump/lonely.jpg", "wave/notes.txt"]
    assert found.root == tmp_path
    frame_item = found.items[1]
    assert Path(frame_item.path) == tmp_path / "run" / "clip7" and frame_item.start_ms is None
    assert discover_folder(tmp_path) == found


def test_single_video_file_and_missing_source(tmp_path):
    video = _touch(tmp_path / "one.mp4")
    assert discover(video).items == [VideoItem("one.mp4", str(video), "")]
    with pytest.raises(FileNotFoundError, match="neither a folder of videos nor a manifest"):
        discover(tmp_path / "absent")
    with pytest.raises(FileNotFoundError):
        discover(_touch(tmp_path / "table.xlsx"))


def test_mmaction_manifest(tmp_path):
    absolute = _touch(tmp_path / "elsewhere" / "z.mp4")
    manifest = tmp_path / "lists" / "train.txt"
    manifest.parent.mkdir()
    manifest.write_text(f"# path label\nclips/a.mp4 wave\n\nclips/b.mp4   jump extra-column\n{absolute} 3\n")
    found = read_manifest(manifest)
    assert [(i.key, i.label) for i in found.items] == [("clips/a.mp4", "wave"), ("clips/b.mp4", "jump"),
                                                       (str(absolute), "3")]
    assert found.items[0].path == str(manifest.parent / "clips" / "a.mp4")  # relative to the manifest
    assert found.items[2].path == str(absolute)
    assert discover(manifest) == found


def test_mmaction_manifest_bad_line(tmp_path):
    manifest = tmp_path / "list.lst"
    manifest.write_text("a.mp4 wave\nb.mp4\n")
    with pytest.raises(ValueError, match=r"list.lst:2: expected 'path label'"):
        discover(manifest)


def test_csv_manifest_with_group_split_and_ranges(tmp_path):
    manifest = tmp_path / "clips.csv"
    manifest.write_text(
        "path,label,group,view,split,start_ms,end_ms\n"
        "v/a.mp4,wave,p1,front,train,,\n"
        "v/b.mp4,jump,p2,,test,1000,2500\n"
        "v/b.mp4,jump,p2,,test,2500,\n"
    )
    items = discover(manifest).items
    assert [(i.label, i.group, i.view, i.split) for i in items] == [
        ("wave", "p1", "front", "train"), ("jump", "p2", "", "test"), ("jump", "p2", "", "test")]
    assert items[0].key == "v/a.mp4" and (items[0].start_ms, items[0].end_ms) == (None, None)
    assert (items[1].start_ms, items[1].end_ms) == (1000.0, 2500.0) and (items[2].start_ms, items[2].end_ms) == (2500.0, None)
    # sub-clips of one file are distinct entries, each named after the file and its range
    assert len({i.key for i in items}) == 3
    assert all(i.key.startswith("v/b.mp4#") for i in items[1:]) and items[1].path == items[2].path


def test_tsv_manifest(tmp_path):
    manifest = tmp_path / "clips.tsv"
    manifest.write_text("label\tpath\tgroup\nwave\ta.mp4\tp1\n")
    [item] = discover(manifest).items
    assert (item.key, item.label, item.group, item.path) == ("a.mp4", "wave", "p1", str(tmp_path / "a.mp4"))


@pytest.mark.parametrize("text, dup", [
    ("a.mp4 wave\nb.mp4 wave\na.mp4 jump\n", "a.mp4"),
    ("path,label,start_ms,end_ms\nb.mp4,x,0,1000\nb.mp4,x,0,1000\n", "b.mp4#"),
])
def test_duplicate_rows_are_an_error(tmp_path, text, dup):
    manifest = tmp_path / ("m.csv" if text.startswith("path") else "m.txt")
    manifest.write_text(text)
    with pytest.raises(ValueError, match="listed twice") as e:
        discover(manifest)
    assert dup in str(e.value)


def test_frame_folder_with_annotation_subfolder_and_video_folders(tmp_path):
    """UCF Sports style: a clip folder of JPEG frames with a gt/ subfolder is one video; a folder
    that also holds a video file is read through that video (its images are thumbnails or copies)."""
    import cv2
    import numpy as np

    from extract.inputs import discover_folder

    frames = tmp_path / "Diving-Side" / "001"
    (frames / "gt").mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(frames / f"{i:04d}.jpg"), np.zeros((8, 8, 3), np.uint8))
    (frames / "gt" / "0000.tif.txt").write_text("1 2 3 4")
    both = tmp_path / "Diving-Side" / "002"
    both.mkdir()
    for i in range(3):
        cv2.imwrite(str(both / f"{i:04d}.jpg"), np.zeros((8, 8, 3), np.uint8))
    (both / "clip.avi").write_bytes(b"")
    found = discover_folder(tmp_path)
    assert [i.key for i in found.items] == ["Diving-Side/001", "Diving-Side/002/clip.avi"]
    assert [i.label for i in found.items] == ["Diving-Side", "002"]
    assert not any(k.startswith("Diving-Side/001/") for k in found.ignored)


def test_apply_dataset_skips_excluded_and_names_bad_paths():
    from extract.inputs import VideoItem, apply_dataset
    from fgm_common.datasets import Annotation, Excluded, LayoutError

    class Fake:
        name = "fake"

        def annotate(self, key, meta):
            if key.startswith("pair/"):
                raise Excluded(f"{key}: a two-person clip")
            if key.startswith("bad/"):
                raise LayoutError(f"{key}: expected <class>/<clip>")
            return Annotation(key.split("/")[0], group="p1")

    items = [VideoItem("walk/a.avi", "/x/a.avi"), VideoItem("pair/b.avi", "/x/b.avi")]
    labelled, excluded = apply_dataset(items, Fake())
    assert [(i.label, i.group) for i in labelled] == [("walk", "p1")] and excluded == ["pair/b.avi"]
    with pytest.raises(LayoutError, match="bad/c.avi: expected <class>/<clip>"):
        apply_dataset(items + [VideoItem("bad/c.avi", "/x/c.avi")], Fake())
