"""Tests for extract.video on bad input: missing, empty, truncated and renamed files."""
from __future__ import annotations

import shutil

import cv2
import pytest

from extract.video import VideoError, open_source
from tests.extract.video_helpers import all_frames, decoded_index, reason_of, truncate, write_video


def test_bad_files(tmp_path):
    assert reason_of(tmp_path / "nope.mp4") == "missing"
    (tmp_path / "zero.mp4").write_bytes(b"")
    assert reason_of(tmp_path / "zero.mp4") == "empty-file"
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 20)
    assert reason_of(tmp_path / "text.mp4") == "not-a-video"
    writer = cv2.VideoWriter(str(tmp_path / "none.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    writer.release()  # a valid AVI header with no frames
    assert reason_of(tmp_path / "none.avi") == "no-frames"


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv"])
@pytest.mark.parametrize("fraction", [0.3, 0.9])
def test_truncated_video_is_exact_or_refused(tmp_path, suffix, fraction):
    full = write_video(tmp_path / f"full{suffix}", n=30)
    cut = truncate(full, tmp_path / f"cut{suffix}", fraction)
    try:
        info = open_source(cut).probe()
    except VideoError as exc:
        assert exc.reason in {"unreadable", "no-frames"}
        return
    assert 0 < info.n_frames <= 30
    frames = all_frames(open_source(cut))  # the count is the true count: every index decodes
    assert len(frames) == info.n_frames
    assert [decoded_index(f.rgb) for f in frames] == list(range(info.n_frames))


def test_wrong_header_count_is_corrected(tmp_path):
    full = write_video(tmp_path / "full.avi", n=30)
    cut = truncate(full, tmp_path / "cut.avi", 0.8)
    header_count = int(cv2.VideoCapture(str(cut), cv2.CAP_FFMPEG).get(cv2.CAP_PROP_FRAME_COUNT))
    info = open_source(cut).probe()
    assert header_count == 30 and info.n_frames < 30  # the AVI header still claims every frame


def test_stream_ending_early_raises(tmp_path):
    path = write_video(tmp_path / "clip.avi", n=30)
    src = open_source(path)
    assert src.probe().n_frames == 30  # cached: the later truncation goes unnoticed by probe
    truncate(path, path, 0.5)
    with pytest.raises(VideoError) as exc:
        list(src.iter_frames([29]))
    assert exc.value.reason == "unreadable" and "expected" in str(exc.value)


def test_container_is_sniffed_not_named(tmp_path):
    """A renamed container (.avi bytes under .mkv name) still decodes: FFmpeg sniffs content, not names."""
    path = write_video(tmp_path / "clip.avi", n=12)
    shutil.copy(path, tmp_path / "clip.mkv")
    assert open_source(tmp_path / "clip.mkv").probe().n_frames == 12
