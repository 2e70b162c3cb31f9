"""Helpers shared by the fgm-extract CLI tests (test_extract_cli*.py): output, hashes, videos, entry checks."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

from extract.sampling import uniform_indices
from extract.video import open_source
from fgm_common.store import FLOW_ARRAYS, FRAME_ARRAYS, FeatureStore, StoreError
from tests.conftest import TINY_ARGS

REPO_ROOT = Path(__file__).resolve().parents[2]
FRAMES = 6  # what the run_extract_cli fixture samples per video
TINY_CFG = json.loads((REPO_ROOT / "extract" / "model_configs" / "fgm-tiny-vit.json").read_text())


def flat(text: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(text.split())


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def entry_counts(url: str) -> tuple[int, int]:
    """(complete, all) entries of a store another process is writing now; (0, 0) while that process is still
    making it (its root's version is written last), or while a metadata file it replaces is read."""
    try:
        store = FeatureStore.open(url)
        return len(store.entries()), len(store.entries(include_incomplete=True))
    except (StoreError, OSError, KeyError, ValueError):
        return 0, 0


def run_ids(url: str) -> dict[str, str]:
    return {e.key: e.meta["run_id"] for e in FeatureStore.open(url).entries()}


def write_mp4(path: Path, frames: np.ndarray, fps: float = 25.0) -> None:
    """(T, H, W, 3) RGB uint8 -> an mp4v file (the codec PyPI OpenCV can write)."""
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def check_whole(store: FeatureStore, entry, t: int | None = None) -> int:
    """Every array of a complete entry reads back with lengths that agree; returns T."""
    a = store.read(entry)
    assert set(FRAME_ARRAYS + FLOW_ARRAYS) <= set(a), (entry.key, sorted(a))
    n = len(a["clip"])
    assert len(a["timestamps_ms"]) == len(a["frame_index"]) == n and (t is None or n == t), entry.key
    assert len(a["flow"]) == len(a["flow_hist"]) == len(a["flow_ts_ms"]) == max(n - 1, 1), entry.key
    assert np.isfinite(a["clip"]).all() and np.isfinite(a["flow"].astype(np.float32)).all(), entry.key
    return n


def decoded_frames(path: str, n: int) -> list[np.ndarray]:
    """The frames the pipeline samples: TSN midpoints of the decoded video, RGB (H, W, 3)."""
    source = open_source(path)
    return [f.rgb for f in source.iter_frames(uniform_indices(source.probe().n_frames, n))]


def more_videos(tiny_videos: Path, dst: Path, copies: int) -> int:
    """`copies` renamed copies of every tiny video (distinct keys, same content); returns the count."""
    shutil.copytree(tiny_videos, dst)
    for video in sorted(dst.rglob("*.mp4")):
        for i in range(1, copies):
            shutil.copy2(video, video.with_name(f"{video.stem}_copy{i}.mp4"))
    return len(list(dst.rglob("*.mp4")))


def extract_command(videos: Path, url: str, *extra: str, frames: int) -> list[str]:
    """`python -m extract.cli VIDEOS --out URL` with the tiny model, as a subprocess runs it."""
    return [sys.executable, "-m", "extract.cli", str(videos), "--out", url, *TINY_ARGS, "--frames", str(frames), *extra]
