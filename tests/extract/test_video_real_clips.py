"""Tests for extract.video on the real clips of ../shared/data (skipped when the folder is absent)."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from extract.sampling import uniform_indices
from extract.video import open_source
from tests.extract.video_helpers import DATA, MANIFEST, reason_of, truncate


def manifest_rows() -> list[dict]:
    if not MANIFEST.is_file():
        return []
    with MANIFEST.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


needs_data = pytest.mark.skipif(not MANIFEST.is_file(), reason="../shared/data is absent")


@needs_data
@pytest.mark.parametrize("row", manifest_rows(), ids=lambda r: r["path"])
def test_real_clip_counts(row):
    src = open_source(DATA / row["path"])
    info = src.probe()
    assert (info.n_frames, info.width, info.height) == (int(row["frames"]), int(row["width"]), int(row["height"]))
    assert info.fps == pytest.approx(float(row["fps"]), abs=0.01) and info.fps_known
    # the last index decodes by a sequential pass: the count is the stream's real length
    wanted = np.append(uniform_indices(info.n_frames, 8), info.n_frames - 1)
    frames = list(src.iter_frames(wanted, with_next=True))
    assert len(frames) == 9 and frames[-1].next_rgb is None
    assert frames[0].rgb.shape == (info.height, info.width, 3) and frames[0].next_rgb.shape == frames[0].rgb.shape


@needs_data
@pytest.mark.parametrize("rel", ["demo_clips/flipping_pancake/flipping_a_pancake.mkv",
                                 "demo_clips/tai_chi/ta_chi.mp4", "kth_few/jogging/person01_jogging_d1_uncomp.avi"])
def test_real_subclip_equals_full_decode(rel):
    path = DATA / rel
    fps = open_source(path).probe().fps
    first = 100
    sub = open_source(path, start_ms=first / fps * 1000, end_ms=(first + 20) / fps * 1000)
    assert sub.probe().n_frames == 20
    sub_frames = list(sub.iter_frames([0, 7, 19]))
    full_frames = list(open_source(path).iter_frames([first, first + 7, first + 19]))
    for s, f in zip(sub_frames, full_frames):
        assert np.array_equal(s.rgb, f.rgb) and s.timestamp_ms == pytest.approx(f.timestamp_ms)


@needs_data
@pytest.mark.parametrize("rel, opens", [("demo_clips/tai_chi/ta_chi.mp4", False),  # index (moov) at the end
                                        ("kth_few/boxing/person01_boxing_d2_uncomp.mp4", True)])  # at the start
def test_real_truncated_mp4(tmp_path, rel, opens):
    cut = truncate(DATA / rel, tmp_path / "cut.mp4", 0.3)
    if not opens:
        assert reason_of(cut) == "unreadable"
        return
    info = open_source(cut).probe()
    assert 0 < info.n_frames < 390  # the header still claims 390; the count is what really decodes
    assert len(list(open_source(cut).iter_frames(np.arange(info.n_frames)))) == info.n_frames
