"""Streaming video decoding: (H, W, 3) uint8 RGB frames one at a time, memory independent of length.

Sources: a video file OpenCV's FFmpeg backend opens, or a folder of image frames read at `folder_fps`.
At most the current frame and its successor (`with_next`) are held. Which frames to ask for is
extract/sampling.py's.

Frame count: `probe().n_frames` is exact. CAP_PROP_FRAME_COUNT is an estimate for some containers
(mkv/webm derive it from the duration; truncated files keep the header's count), so it is trusted
only after a tail check: seek to frame `meta - 1`, confirm the reported position, grab it and fail
to grab one more. Otherwise frames are counted by `grab()` from the start (a decode pass without
colour conversion). The count is cached in the source. If a stream still ends early while iterating
(e.g. damage in the middle), `VideoError("unreadable")` says how many frames were found.

Time: native frame `i` of the file is at `i / fps * 1000` ms (CAP_PROP_POS_MSEC is unreliable for
some containers). A sub-clip `[start_ms, end_ms)` holds the frames whose time falls in the range;
`Frame.index` counts from its first frame, `Frame.timestamp_ms` from the start of the file. Sub-clips
seek with CAP_PROP_POS_FRAMES and check the reported position, else grab forward from frame 0.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import cv2
import numpy as np

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
FALLBACK_FPS = 25.0
# A file that starts like a known container but will not open is damaged ("unreadable"),
# anything else is "not-a-video". Values: (byte offset, magic bytes).
_CONTAINER_MAGIC = {
    "mp4/mov": (4, b"ftyp"), "mov-moov": (4, b"moov"), "mov-mdat": (4, b"mdat"),
    "avi": (8, b"AVI "), "mkv/webm": (0, b"\x1a\x45\xdf\xa3"), "flv": (0, b"FLV"),
    "mpeg-ps": (0, b"\x00\x00\x01\xba"), "asf/wmv": (0, b"\x30\x26\xb2\x75"),
}
# Decoded channel count -> conversion to RGB (FFmpeg gives BGR, but be safe with gray/BGRA).
_TO_RGB = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}


class VideoError(Exception):
    """A video that cannot be used; `reason` is a short machine-readable tag, str(e) a human message."""

    REASONS = frozenset({"missing", "empty-file", "unreadable", "no-frames", "not-a-video", "bad-range"})

    def __init__(self, reason: str, message: str):
        if reason not in self.REASONS:
            raise ValueError(f"unknown VideoError reason {reason!r}")
        super().__init__(message)
        self.reason = reason

    def __reduce__(self):  # survives pickling across dask workers
        return (type(self), (self.reason, str(self)))


@dataclass(frozen=True)
class VideoInfo:
    """What `iter_frames` will decode: the (sub)clip's exact frame count, rate, size, duration."""
    n_frames: int
    fps: float
    width: int
    height: int
    duration_ms: float
    fps_known: bool  # False when fps is FALLBACK_FPS or a folder's assumed rate


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame: rgb (H, W, 3) uint8; next_rgb the following frame or None at the clip's end."""
    index: int
    timestamp_ms: float
    rgb: np.ndarray
    next_rgb: np.ndarray | None


class FrameSource(Protocol):
    """Something frames can be streamed from."""
    path: Path
    def probe(self) -> VideoInfo: ...
    def iter_frames(self, indices: Sequence[int] | np.ndarray, with_next: bool = False) -> Iterator[Frame]: ...


def is_video_candidate(path: Path) -> bool:
    """True when the file name has a video extension (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def open_source(path: str | Path, *, start_ms: float | None = None, end_ms: float | None = None,
                folder_fps: float = 25.0) -> FrameSource:
    """A lazy frame source for a video file or a folder of frames; nothing is read until probe()."""
    if (start_ms is not None and start_ms < 0) or (end_ms is not None and end_ms <= (start_ms or 0.0)):
        raise VideoError("bad-range", f"{path}: time range [{start_ms}, {end_ms}) ms is empty or negative")
    if not folder_fps > 0:
        raise ValueError(f"folder_fps must be positive, got {folder_fps}")
    path = Path(path)
    if path.is_dir():
        return _FrameFolder(path, start_ms, end_ms, folder_fps)
    return _VideoFile(path, start_ms, end_ms)


class _Source:
    """Probe caching, sub-clip mapping and the streaming loop; subclasses give _probe() and _reader()."""

    def __init__(self, path: Path, start_ms: float | None, end_ms: float | None):
        self.path = path
        self._range = (start_ms, end_ms)
        self._first = 0  # file index of the sub-clip's frame 0
        self._info: VideoInfo | None = None

    def probe(self) -> VideoInfo:
        if self._info is None:
            self._info = self._probe()
        return self._info

    def _clip(self, total: int, fps: float, fps_known: bool, width: int, height: int) -> VideoInfo:
        start_ms, end_ms = self._range
        # Frame i is in the range when start_ms <= i / fps * 1000 < end_ms; the epsilon absorbs float noise.
        first = 0 if start_ms is None else math.ceil(start_ms * fps / 1000 - 1e-6)
        stop = total if end_ms is None else min(total, math.ceil(end_ms * fps / 1000 - 1e-6))
        if first >= stop:
            raise VideoError("bad-range", f"{self.path}: [{start_ms}, {end_ms}) ms holds no frames "
                                          f"(the video has {total} frames at {fps:g} fps)")
        self._first = first
        n = stop - first
        return VideoInfo(n, fps, width, height, n / fps * 1000.0, fps_known)

    def iter_frames(self, indices: Sequence[int] | np.ndarray, with_next: bool = False) -> Iterator[Frame]:
        """Yield one Frame per index, in order; indices must be non-decreasing and within [0, n_frames)."""
        info = self.probe()
        wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
        if wanted.size and (wanted.min() < 0 or wanted.max() >= info.n_frames):
            raise ValueError(f"{self.path}: indices must lie in [0, {info.n_frames}), "
                             f"got {wanted.min()}..{wanted.max()}")
        if np.any(np.diff(wanted) < 0):
            raise ValueError("indices must be non-decreasing: the decoder streams forward only")
        reader = self._reader(info.n_frames)
        held: tuple[int, np.ndarray | None] = (-1, None)  # with_next decodes k + 1, often wanted next

        def get(k: int) -> np.ndarray:
            nonlocal held
            if held[0] != k:
                held = (k, reader.read(k))
            return held[1]

        try:
            last: Frame | None = None
            for k in map(int, wanted):
                if last is None or last.index != k:
                    last = None  # drop the old frame before decoding the new one
                    rgb = get(k)  # before k + 1: a capture only moves forward
                    nxt = get(k + 1) if with_next and k + 1 < info.n_frames else None
                    last = Frame(k, (self._first + k) * 1000.0 / info.fps, rgb, nxt)
                yield last  # a repeated index yields the same frame, decoded once
        finally:
            reader.close()


class _VideoFile(_Source):
    def _probe(self) -> VideoInfo:
        if not self.path.exists():
            raise VideoError("missing", f"{self.path}: no such file or folder")
        if self.path.stat().st_size == 0:
            raise VideoError("empty-file", f"{self.path}: the file is empty (0 bytes); re-download or remove it")
        cap = _open_capture(self.path)
        try:
            raw_fps = cap.get(cv2.CAP_PROP_FPS)
            fps_known = math.isfinite(raw_fps) and raw_fps > 0
            meta = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            total = meta if meta > 0 and _is_last_frame(cap, meta - 1) else None
        finally:
            cap.release()
        if total is None:
            total = _count_by_grab(self.path)
        if total == 0:
            raise VideoError("no-frames", f"{self.path}: the container opens but holds no decodable frames")
        return self._clip(total, raw_fps if fps_known else FALLBACK_FPS, fps_known, *size)

    def _reader(self, n_frames: int) -> _CaptureReader:
        return _CaptureReader(self.path, self._first, n_frames)


class _CaptureReader:
    """Sequential decoder over a clip: grab() passes over frames, retrieve() decodes only wanted ones."""

    def __init__(self, path: Path, first: int, n_frames: int):
        self._path, self._first, self._n = path, first, n_frames
        self._cap = _open_capture(path)
        self._pos = 0  # clip index of the frame the next grab() returns
        if first and not _seek_exact(self._cap, first):
            # The container would not land exactly on `first`: decode forward from frame 0 instead.
            self._cap.release()
            self._cap = _open_capture(path)
            self._pos = -first
            self._advance_to(-1)

    def _advance_to(self, k: int) -> None:
        while self._pos <= k:
            if not self._cap.grab():
                raise VideoError("unreadable", f"{self._path}: the stream ended after {self._first + self._pos} "
                                               f"frames, but {self._first + self._n} were expected; the file is "
                                               f"probably truncated or corrupt")
            self._pos += 1

    def read(self, k: int) -> np.ndarray:
        self._advance_to(k)
        ok, bgr = self._cap.retrieve()
        if not ok or bgr is None:
            raise VideoError("unreadable", f"{self._path}: frame {self._first + k} was found but cannot be decoded")
        return _to_rgb(bgr)

    def close(self) -> None:
        self._cap.release()


class _FrameFolder(_Source):
    def __init__(self, path: Path, start_ms: float | None, end_ms: float | None, fps: float):
        super().__init__(path, start_ms, end_ms)
        self._fps = fps
        self._files: list[Path] = []
        self._size = (0, 0)

    def _probe(self) -> VideoInfo:
        # Names starting with "." are hidden files (e.g. macOS "._img1.jpg"), not frames.
        files = [p for p in self.path.iterdir()
                 if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()]
        if not files:
            raise VideoError("no-frames", f"{self.path}: the folder holds no .jpg/.jpeg/.png/.bmp frames")
        self._files = sorted(files, key=_natural_key)
        head = _read_image(self._files[0])  # (H, W, 3)
        self._size = head.shape[1], head.shape[0]  # (W, H), as cv2.resize wants it
        return self._clip(len(self._files), self._fps, False, *self._size)

    def _reader(self, n_frames: int) -> _FrameFolder:
        return self  # image files are random access: nothing to open or keep between frames

    def read(self, k: int) -> np.ndarray:
        rgb = _read_image(self._files[self._first + k])
        if (rgb.shape[1], rgb.shape[0]) != self._size:  # every frame takes the first image's size
            rgb = cv2.resize(rgb, self._size, interpolation=cv2.INTER_AREA)
        return rgb

    def close(self) -> None:
        """Nothing is held open between frames."""


def _natural_key(path: Path) -> list:
    """'img2' < 'img10': digit runs compare as numbers (re.split alternates text and digits)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _read_image(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)  # always 3 channels, gray included
    if bgr is None:
        raise VideoError("unreadable", f"{path}: cannot decode this image; remove or replace it")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _to_rgb(img: np.ndarray) -> np.ndarray:
    channels = 1 if img.ndim == 2 else img.shape[2]
    return cv2.cvtColor(img, _TO_RGB[channels])  # (H, W, 3) uint8


def _open_capture(path: Path) -> cv2.VideoCapture:
    # CAP_FFMPEG explicitly: CAP_ANY would also try the image-sequence backend on odd names.
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if cap.isOpened():
        return cap
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise VideoError("unreadable", f"{path}: cannot read the file ({exc})") from exc
    if any(head[at:at + len(magic)] == magic for at, magic in _CONTAINER_MAGIC.values()):
        raise VideoError("unreadable", f"{path}: looks like a video container but FFmpeg cannot open it; "
                                       f"it is probably truncated or corrupt")
    raise VideoError("not-a-video", f"{path}: FFmpeg does not recognise this file as a video")


def _seek_exact(cap: cv2.VideoCapture, index: int) -> bool:
    """Seek so the next grab() returns frame `index`; False when the reported position disagrees."""
    return bool(cap.set(cv2.CAP_PROP_POS_FRAMES, index)) and round(cap.get(cv2.CAP_PROP_POS_FRAMES)) == index


def _is_last_frame(cap: cv2.VideoCapture, index: int) -> bool:
    """True when frame `index` exists and nothing follows it: the metadata count is exact."""
    return _seek_exact(cap, index) and cap.grab() and not cap.grab()


def _count_by_grab(path: Path) -> int:
    cap, n = _open_capture(path), 0
    while cap.grab():
        n += 1
    cap.release()
    return n
