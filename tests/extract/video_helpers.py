"""Helpers shared by the extract.video tests: synthetic clips whose frame index is in the green channel."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from extract.video import Frame, VideoError, open_source

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


def reason_of(path: Path) -> str:
    with pytest.raises(VideoError) as exc:
        open_source(path).probe()
    return exc.value.reason


def truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst
