"""Tests for extract.video on folders of frame images: natural order, resizing, errors."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from extract.video import VideoError, VideoInfo, open_source
from tests.extract.video_helpers import all_frames


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
