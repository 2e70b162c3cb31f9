"""Tests for extract.video: streaming decode, sub-clips, frame folders, bad files."""
from __future__ import annotations

import csv
import pickle
import shutil
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from extract import video
from extract.sampling import uniform_indices
from extract.video import Frame, VideoError, VideoInfo, is_video_candidate, open_source

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MANIFEST = DATA / "MANIFEST.tsv"
FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}
RED, BLUE = 200, 30  # constant channels; green carries the frame index


def green(i: int) -> int:
    """Green level written into frame i: steps of 8 stay apart under mp4v/MJPG error (measured <= 4)."""
    return 8 + 8 * i


def write_video(path: Path, n: int = 30, size: tuple[int, int] = (64, 48), fps: float = 25.0,
                gray: bool = False) -> Path:
    """A synthetic clip whose frame i is flat RGB (RED, green(i) % 256, BLUE), or gray green(i) when gray."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FOURCC[path.suffix]), fps, size, isColor=not gray)
    assert writer.isOpened(), f"cannot write {path}"
    w, h = size
    for i in range(n):
        if gray:
            writer.write(np.full((h, w), green(i) % 256, np.uint8))
        else:
            writer.write(np.dstack([np.full((h, w), v, np.uint8) for v in (BLUE, green(i) % 256, RED)]))  # BGR
    writer.release()
    return path


def decoded_index(rgb: np.ndarray) -> int:
    """Which synthetic frame this is: the i whose green level is nearest the decoded mean."""
    return int(round((rgb[..., 1].mean() - 8) / 8))


def all_frames(src, with_next=False) -> list[Frame]:
    return list(src.iter_frames(np.arange(src.probe().n_frames), with_next=with_next))


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


# --- frame folders -------------------------------------------------------------------------------

def write_png(path: Path, level: int, size=(40, 30), gray=False) -> None:
    w, h = size
    img = np.full((h, w), level, np.uint8) if gray else np.full((h, w, 3), level, np.uint8)
    assert cv2.imwrite(str(path), img)


def test_frame_folder_natural_order_and_resize(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in [1, 2, 10, 11, 3]:  # lexical order would put img10 before img2
        write_png(folder / f"img{i}.png", level=10 * i, size=(40, 30) if i != 11 else (80, 50), gray=i == 3)
    (folder / "notes.txt").write_text("not a frame")
    (folder / ".hidden.png").write_bytes(b"")
    src = open_source(folder, folder_fps=10.0)
    assert src.probe() == VideoInfo(5, 10.0, 40, 30, 500.0, False)
    frames = all_frames(src)
    assert [int(f.rgb.mean()) for f in frames] == [10, 20, 30, 100, 110]
    assert all(f.rgb.shape == (30, 40, 3) for f in frames)  # img11 resized, gray img3 made 3-channel
    assert [f.timestamp_ms for f in frames] == pytest.approx([0, 100, 200, 300, 400])
    sub = open_source(folder, start_ms=200.0, folder_fps=10.0)
    assert [int(f.rgb.mean()) for f in all_frames(sub)] == [30, 100, 110]


def test_frame_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(VideoError) as exc:
        open_source(empty).probe()
    assert exc.value.reason == "no-frames"
    broken = tmp_path / "broken"
    broken.mkdir()
    write_png(broken / "f1.png", 50)
    (broken / "f2.jpg").write_text("not a jpeg")
    src = open_source(broken)
    assert src.probe().n_frames == 2
    with pytest.raises(VideoError) as exc:
        all_frames(src)
    assert exc.value.reason == "unreadable" and "f2.jpg" in str(exc.value)


# --- bad files -----------------------------------------------------------------------------------

def reason_of(path: Path) -> str:
    with pytest.raises(VideoError) as exc:
        open_source(path).probe()
    return exc.value.reason


def test_bad_files(tmp_path):
    assert reason_of(tmp_path / "nope.mp4") == "missing"
    (tmp_path / "zero.mp4").write_bytes(b"")
    assert reason_of(tmp_path / "zero.mp4") == "empty-file"
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 20)
    assert reason_of(tmp_path / "text.mp4") == "not-a-video"
    writer = cv2.VideoWriter(str(tmp_path / "none.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    writer.release()  # a valid AVI header with no frames
    assert reason_of(tmp_path / "none.avi") == "no-frames"


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


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


# --- real clips (skipped when ../shared/data is absent) -------------------------------------------

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


def test_container_is_sniffed_not_named(tmp_path):
    """A renamed container (.avi bytes under .mkv name) still decodes: FFmpeg sniffs content, not names."""
    path = write_video(tmp_path / "clip.avi", n=12)
    shutil.copy(path, tmp_path / "clip.mkv")
    assert open_source(tmp_path / "clip.mkv").probe().n_frames == 12
