"""Tests for extract.video: streaming decode of synthetic clips, sub-clips, memory."""
from __future__ import annotations

import pickle
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from extract import video
from extract.video import VideoError, VideoInfo, is_video_candidate, open_source
from tests.extract.video_helpers import BLUE, RED, all_frames, decoded_index, green, write_video


def test_is_video_candidate():
    for name in ["a.mp4", "b.AVI", "c.mkv", "d.webm", "e.MoV", "f.m4v", "g.mpg", "h.mpeg", "i.wmv", "j.flv", "k.3gp"]:
        assert is_video_candidate(Path(name)), name
    for name in ["a.txt", "b.jpg", "mp4", "c.mp4.part", "d"]:
        assert not is_video_candidate(Path(name)), name


def test_video_error_reason_and_pickle():
    err = VideoError("no-frames", "nothing here")
    back = pickle.loads(pickle.dumps(err))  # dask ships exceptions between processes
    assert isinstance(back, VideoError) and back.reason == "no-frames" and str(back) == "nothing here"
    with pytest.raises(ValueError):
        VideoError("bogus", "x")


# --- decoding synthetic clips --------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv"])
def test_probe_and_known_frame_content(tmp_path, suffix):
    src = open_source(write_video(tmp_path / f"clip{suffix}", n=30))
    info = src.probe()
    assert info == VideoInfo(n_frames=30, fps=25.0, width=64, height=48, duration_ms=1200.0, fps_known=True)
    (frame,) = src.iter_frames([17])
    assert frame.index == 17 and frame.timestamp_ms == pytest.approx(680.0)
    assert frame.rgb.shape == (48, 64, 3) and frame.rgb.dtype == np.uint8 and frame.next_rgb is None
    means = frame.rgb.reshape(-1, 3).mean(0)  # RGB order: red first
    assert means == pytest.approx([RED, green(17), BLUE], abs=4.5)


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_every_frame_in_order(tmp_path, suffix):
    src = open_source(write_video(tmp_path / f"clip{suffix}", n=30))
    frames = all_frames(src)
    assert [f.index for f in frames] == list(range(30))
    assert [decoded_index(f.rgb) for f in frames] == list(range(30))


def test_duplicates_and_with_next_decode_once(tmp_path):
    src = open_source(write_video(tmp_path / "clip.avi", n=30))
    frames = list(src.iter_frames([3, 3, 4, 10, 29, 29], with_next=True))
    assert [f.index for f in frames] == [3, 3, 4, 10, 29, 29]
    assert frames[0] is frames[1]  # repeated index: same frame, no second decode
    assert frames[0].next_rgb is frames[2].rgb  # the successor decoded for with_next is reused
    assert decoded_index(frames[3].next_rgb) == 11
    assert frames[4].next_rgb is None  # last frame of the clip has no successor


def test_bad_indices(tmp_path):
    src = open_source(write_video(tmp_path / "clip.avi", n=10))
    with pytest.raises(ValueError):
        list(src.iter_frames([5, 2]))
    with pytest.raises(ValueError):
        list(src.iter_frames([10]))
    with pytest.raises(ValueError):
        list(src.iter_frames([-1]))
    assert list(src.iter_frames([])) == []


def test_grayscale_video_gives_three_channels(tmp_path):
    src = open_source(write_video(tmp_path / "gray.avi", n=10, gray=True))
    (frame,) = src.iter_frames([6])
    assert frame.rgb.shape == (48, 64, 3)
    assert frame.rgb.reshape(-1, 3).mean(0) == pytest.approx([green(6)] * 3, abs=4.5)


def test_unknown_fps_falls_back(tmp_path, monkeypatch):
    path = write_video(tmp_path / "clip.avi", n=10)
    real_open = video._open_capture

    class ZeroFps:  # a container that reports 0 fps, otherwise the real capture
        def __init__(self, cap):
            self._cap = cap

        def get(self, prop):
            return 0.0 if prop == cv2.CAP_PROP_FPS else self._cap.get(prop)

        def __getattr__(self, name):
            return getattr(self._cap, name)

    monkeypatch.setattr(video, "_open_capture", lambda p: ZeroFps(real_open(p)))
    info = open_source(path).probe()
    assert info.fps == video.FALLBACK_FPS and not info.fps_known and info.n_frames == 10


# --- sub-clips -----------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
@pytest.mark.parametrize("seek_works", [True, False])
def test_subclip_matches_full_decode(tmp_path, monkeypatch, suffix, seek_works):
    path = write_video(tmp_path / f"clip{suffix}", n=30)
    full = [f.rgb for f in all_frames(open_source(path))]
    if not seek_works:  # force the grab-forward fallback
        monkeypatch.setattr(video, "_seek_exact", lambda cap, index: False)
    src = open_source(path, start_ms=400.0, end_ms=1000.0)  # frames 10..24 at 25 fps
    assert src.probe().n_frames == 15 and src.probe().duration_ms == pytest.approx(600.0)
    frames = all_frames(src, with_next=True)
    assert [f.timestamp_ms for f in frames] == pytest.approx([(10 + i) * 40.0 for i in range(15)])
    for f in frames:
        assert np.array_equal(f.rgb, full[10 + f.index])
    assert frames[-1].next_rgb is None  # the sub-clip ends at frame 24 even though the file goes on


def test_subclip_ranges(tmp_path):
    path = write_video(tmp_path / "clip.avi", n=30)  # 1200 ms
    assert open_source(path, start_ms=1000.0).probe().n_frames == 5
    assert open_source(path, end_ms=5000.0).probe().n_frames == 30  # an end past the file is clipped
    for kwargs in [dict(start_ms=-1.0), dict(start_ms=500.0, end_ms=500.0), dict(end_ms=0.0)]:
        with pytest.raises(VideoError) as exc:
            open_source(path, **kwargs)
        assert exc.value.reason == "bad-range"
    for kwargs in [dict(start_ms=1200.0), dict(start_ms=410.0, end_ms=430.0)]:  # no frame falls inside
        with pytest.raises(VideoError) as exc:
            open_source(path, **kwargs).probe()
        assert exc.value.reason == "bad-range"


# --- memory --------------------------------------------------------------------------------------

def peak_bytes_decoding(path: Path) -> tuple[int, int]:
    src = open_source(path)
    indices = np.arange(src.probe().n_frames)
    tracemalloc.start()
    try:
        count = sum(1 for _ in src.iter_frames(indices, with_next=True))
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_length(tmp_path):
    frame_bytes = 64 * 64 * 3
    sizes = {}
    for n in (300, 3000):
        path = write_video(tmp_path / f"long{n}.avi", n=n, size=(64, 64))
        count, peak = peak_bytes_decoding(path)
        assert count == n
        sizes[n] = peak
    assert sizes[300] >= frame_bytes  # tracemalloc does see the decoded numpy frames
    assert sizes[3000] < 10 * frame_bytes  # a few frames, not thousands (3000 frames = 37 MB)
    assert sizes[3000] < sizes[300] + 2 * frame_bytes
