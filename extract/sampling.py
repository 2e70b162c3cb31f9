"""Which native frames a config samples from a video: TSN segment midpoints, or a fixed rate.

Pure index arithmetic over a clip's exact frame count and rate (extract/video.py's `probe()`); the
decoder then streams exactly these frames.
"""

from __future__ import annotations

import math

import numpy as np

from fgm_common.config import ExtractConfig


def uniform_indices(n_frames: int, num_frames: int) -> np.ndarray:
    """TSN sampling: the midpoint of each of num_frames equal segments -> (num_frames,) int64, sorted."""
    if n_frames < 1 or num_frames < 1:
        raise ValueError(f"need n_frames >= 1 and num_frames >= 1, got {n_frames} and {num_frames}")
    seg = np.arange(num_frames, dtype=np.int64)
    return ((2 * seg + 1) * n_frames) // (2 * num_frames)  # integer floor of (i + 0.5) * n / num


def fps_indices(n_frames: int, native_fps: float, target_fps: float) -> np.ndarray:
    """One native index per 1/target_fps seconds over the clip -> (k,) int64, k >= 1 (repeats when upsampling)."""
    if n_frames < 1 or not native_fps > 0 or not target_fps > 0:
        raise ValueError(f"need n_frames >= 1 and positive rates, got {n_frames}, {native_fps}, {target_fps}")
    count = max(1, math.ceil(n_frames * target_fps / native_fps - 1e-9))
    idx = np.floor(np.arange(count) * (native_fps / target_fps) + 1e-9).astype(np.int64)
    return np.minimum(idx, n_frames - 1)


def sample_indices(config: ExtractConfig, n_frames: int, fps: float) -> np.ndarray:
    """The native frame indices the config samples from a video of n_frames at fps -> (T,) int64."""
    if config.sampling == "fps":
        return fps_indices(n_frames, fps, config.fps)
    return uniform_indices(n_frames, config.num_frames)
