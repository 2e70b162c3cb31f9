"""Box arrays of stage one (extract/boxes.py): flow inside a box, fixed-size slots, and fgm-extract --detector."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from rich.console import Console

from extract.boxes import BoxRecorder, box_histograms, box_summary
from extract.detect import PERSON, Boxes, Detector
from extract.flow import FlowComputer, flow_histogram
from extract.info import render_info, summarize
from extract.inputs import VideoItem
from extract.produce import produce
from extract.tracks import TRACKER
from fgm_common.config import DetectConfig, ExtractConfig, FlowConfig
from fgm_common.store import (BOX_ARRAYS, BOX_CLASS, BOX_FLOW_HIST, BOX_TRACK, BOX_TRACKS, BOX_VALID, BOXES,
                              FLOW_HIST, PERSON_FRAMES, FeatureStore)

BINS = 8


def half_moving(h: int = 60, w: int = 80, u: float = 2.0) -> np.ndarray:
    """(h, w, 2) field: the left half moves u pixels right, the right half is still."""
    field = np.zeros((h, w, 2), np.float32)
    field[:, : w // 2, 0] = u
    return field


def test_flow_inside_a_box_is_that_region_s_in_units_of_the_frame_width():
    field = half_moving()
    left, right, whole = [0.0, 0.0, 0.5, 1.0], [0.5, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]
    hists = box_histograms(field, np.array([left, right, whole], np.float32), BINS)  # (3, 16)
    assert hists.shape == (3, 2 * BINS) and hists.dtype == np.float32
    # left box: everything moves right, 2 px of an 80 px wide frame = 2.5 % of its width
    assert hists[0, 0] == pytest.approx(2.5) and np.allclose(hists[0, 1:BINS], 0)
    assert np.allclose(hists[1, :BINS], 0) and hists[1, BINS] == 1.0  # right box: all still
    assert np.allclose(hists[2], flow_histogram(field, BINS))  # the whole frame's box is the frame's histogram
    thin = box_histograms(field, np.array([[0.2, 0.2, 0.2, 0.2]], np.float32), BINS)  # widened to one pixel
    assert thin[0, 0] == pytest.approx(2.5)


class Scripted(Detector):
    """Gives the listed boxes for each successive frame; every box a person."""

    def __init__(self, frames: list[list[list[float]]], top_k: int = 3):
        self.frames, self.top_k, self.calls = frames, top_k, 0

    def __call__(self, rgb: np.ndarray) -> Boxes:
        xyxy = np.array(self.frames[self.calls % len(self.frames)], np.float32).reshape(-1, 4)
        self.calls += 1
        n = len(xyxy)
        return Boxes(xyxy, np.linspace(1.0, 0.5, n).astype(np.float32), np.full(n, PERSON))

    def identity(self) -> dict:
        return {"name": "scripted", "weights_sha256": "0" * 64}


def test_recorder_gives_fixed_size_slots_tracks_and_box_flow():
    person, other = [0.0, 0.0, 0.5, 1.0], [0.6, 0.1, 0.9, 0.5]
    rec = BoxRecorder(Scripted([[person, other], [], [person]], top_k=3), BINS)
    rgb = np.zeros((60, 80, 3), np.uint8)
    for t in range(3):
        rec.frame(rgb)
    rec.pair(half_moving(), 0)
    rec.pair(half_moving(), 2)  # a pair may start at any frame already seen
    a = rec.arrays()
    assert set(a) == set(BOX_ARRAYS)
    assert a[BOXES].shape == (3, 3, 4) and a[BOX_FLOW_HIST].shape == (2, 3, 2 * BINS)
    assert a[BOX_VALID].tolist() == [[True, True, False], [False] * 3, [True, False, False]]
    assert a[BOX_CLASS][0].tolist() == [PERSON, PERSON, -1] and (a[BOX_TRACK][1] == -1).all()
    assert not a[BOXES][~a[BOX_VALID]].any()  # invalid slots are zero
    # frame 1 has no box; the person back in its place in frame 2 keeps its track
    assert a[BOX_TRACK][0, :2].tolist() == [0, 1] and a[BOX_TRACK][2, 0] == 0
    assert a[BOX_FLOW_HIST][0, 0, 0] == pytest.approx(2.5) and np.allclose(a[BOX_FLOW_HIST][0, 1, :BINS], 0)
    assert a[BOX_FLOW_HIST][1, 0, 0] == pytest.approx(2.5) and not a[BOX_FLOW_HIST][1, 1:].any()
    assert box_summary(a) == {PERSON_FRAMES: 2, BOX_TRACKS: 2}  # frames 0 and 2; the person and the other


def test_box_summary_counts_frames_with_a_valid_person_box_only():
    a = {BOX_VALID: np.array([[True, True], [True, False], [False, False], [False, False]]),
         BOX_CLASS: np.array([[3, 0], [3, -1], [-1, -1], [0, -1]]),  # frame 3: a person class in an invalid slot
         BOX_TRACK: np.array([[5, 2], [5, -1], [-1, -1], [9, -1]])}
    assert box_summary(a) == {PERSON_FRAMES: 1, BOX_TRACKS: 2}  # frame 0 only; tracks 5 and 2


@pytest.mark.parametrize("pairs", ["native", "sampled"])
def test_produce_stores_the_whole_frame_box_s_flow_as_the_frame_s(tiny_videos, pairs):
    """A detector whose one box is the whole frame: each pair's box histogram is that pair's flow_hist."""
    video = sorted(tiny_videos.rglob("*.mp4"))[0]
    config = ExtractConfig(num_frames=5, flow=FlowConfig(pairs=pairs), detect=DetectConfig(name="scripted", top_k=2))
    msgs = list(produce(VideoItem(video.name, str(video)), config, FlowComputer(config.flow), lambda rgb: rgb,
                        "r", detector=Scripted([[[0.0, 0.0, 1.0, 1.0]]], top_k=2)))
    arrays = msgs[-1].arrays
    tf = 5 if pairs == "native" else 4
    assert arrays[BOXES].shape == (5, 2, 4) and arrays[BOX_FLOW_HIST].shape == (tf, 2, 2 * BINS)
    assert np.allclose(arrays[BOX_FLOW_HIST][:, 0], arrays[FLOW_HIST], atol=1e-6)
    assert arrays[BOX_VALID][:, 0].all() and not arrays[BOX_VALID][:, 1].any()
    assert (arrays[BOX_TRACK][:, 0] == 0).all()  # one box in the same place: one track


def test_extract_with_hog_writes_box_arrays_and_the_detector_s_identity(tiny_videos, tmp_path, run_extract_cli):
    out = tmp_path / "boxes.zarr"
    result = run_extract_cli(tiny_videos, out, "--detector", "hog", "--detector-top-k", "2", frames=4)
    assert result.exit_code == 0, result.output
    store = FeatureStore.open(str(out))
    assert store.config.detect == DetectConfig(name="hog", top_k=2)
    assert store.detector_identity["name"] == "hog" and len(store.detector_identity["weights_sha256"]) == 64
    assert store.detector_identity["tracker"] == TRACKER  # how box_track was linked
    for entry in store.entries():
        a = store.read(entry, BOX_ARRAYS)
        assert a[BOXES].shape == (4, 2, 4) and a[BOX_VALID].dtype == bool
        assert a[BOX_FLOW_HIST].shape[1:] == (2, 2 * store.config.flow.hist_bins)
        assert {k: entry.meta[k] for k in (PERSON_FRAMES, BOX_TRACKS)} == box_summary(a)  # as stored
    info = summarize(store)
    assert info.boxes.entries == len(store.entries()) and info.boxes.frames == 4 * len(store.entries())
    assert info.boxes.person_frames == sum(e.meta[PERSON_FRAMES] for e in store.entries())
    text = io.StringIO()
    render_info(info, Console(file=text, width=400))
    assert f"a person box in {info.boxes.person_frames} of {info.boxes.frames} sampled frames" in text.getvalue()
    older = io.StringIO()  # one more entry, from before the counts were recorded
    render_info(dataclasses.replace(info, complete=info.complete + 1), Console(file=older, width=400))
    assert f"counted over {info.boxes.entries} of {info.complete + 1} entries" in older.getvalue()
    # the detector is part of the store's config: the same videos without it are refused, with the reason
    again = run_extract_cli(tiny_videos, out, frames=4)
    assert again.exit_code == 2 and "detector" in again.output


def test_an_unknown_detector_is_refused_before_anything_runs(tiny_videos, tmp_path, run_extract_cli):
    result = run_extract_cli(tiny_videos, tmp_path / "x.zarr", "--detector", "yolo-9000")
    assert result.exit_code == 2 and "hog" in result.output and not (tmp_path / "x.zarr").exists()


def test_dask_workers_write_the_boxes_of_one_process(shared_data, tmp_path, run_extract_cli):
    """`--detector hog` through a dask cluster: the same box arrays and detector identity as in-process."""
    from dask.distributed import LocalCluster

    chosen = sorted(shared_data.glob("ud810_ps7/*/*P1T1.avi"))[:2]
    manifest = tmp_path / "two.txt"
    manifest.write_text("".join(f"{p} {p.parent.name}\n" for p in chosen))
    local_url, dask_url = tmp_path / "local.zarr", tmp_path / "dask.zarr"
    assert run_extract_cli(manifest, local_url, "--detector", "hog", frames=4).exit_code == 0
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        result = run_extract_cli(manifest, dask_url, "--detector", "hog", "--scheduler", cluster.scheduler_address,
                                 frames=4)
    assert result.exit_code == 0, result.output
    local, dask = FeatureStore.open(str(local_url)), FeatureStore.open(str(dask_url))
    assert dask.detector_identity == local.detector_identity
    found = 0
    for entry in local.entries():
        ours, theirs = dask.read(entry.key, BOX_ARRAYS), local.read(entry, BOX_ARRAYS)
        for name in BOX_ARRAYS:
            np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
        found += int(theirs[BOX_VALID].any(1).sum())
        counts = (PERSON_FRAMES, BOX_TRACKS)
        assert {k: dask.entry_meta(entry.key)[k] for k in counts} == {k: entry.meta[k] for k in counts}
    assert found >= 6, f"HOG found the person in {found} of 8 frames: the comparison would be of empty arrays"
