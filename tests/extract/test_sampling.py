"""Known answers for extract.sampling: TSN segment midpoints, fixed-rate indices, and the config's choice."""

from __future__ import annotations

import numpy as np
import pytest

from extract.sampling import fps_indices, sample_indices, uniform_indices
from fgm_common.config import ExtractConfig


def test_uniform_indices_known_answers():
    assert uniform_indices(10, 5).tolist() == [1, 3, 5, 7, 9]
    assert uniform_indices(100, 4).tolist() == [12, 37, 62, 87]
    assert uniform_indices(1, 8).tolist() == [0] * 8
    assert uniform_indices(3, 8).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    for n, k in [(7, 16), (1000, 16), (16, 16), (17, 3)]:
        idx = uniform_indices(n, k)
        assert idx.dtype == np.int64 and len(idx) == k and np.all(np.diff(idx) >= 0)
        assert idx.min() >= 0 and idx.max() < n
    for bad in [(0, 4), (4, 0), (-1, 3)]:
        with pytest.raises(ValueError):
            uniform_indices(*bad)


def test_fps_indices_known_answers():
    assert fps_indices(100, 30.0, 10.0).tolist() == list(range(0, 100, 3))  # 3.33 s -> 34 samples
    assert fps_indices(10, 29.97, 29.97).tolist() == list(range(10))
    assert fps_indices(5, 25.0, 50.0).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]  # upsampling repeats
    assert fps_indices(1, 25.0, 1.0).tolist() == [0]
    assert fps_indices(3, 25.0, 1.0).tolist() == [0]  # shorter than one period: still one index
    assert fps_indices(50, 25.0, 2.0).tolist() == [0, 12, 25, 37]
    with pytest.raises(ValueError):
        fps_indices(0, 25.0, 1.0)
    with pytest.raises(ValueError):
        fps_indices(10, 0.0, 1.0)


def test_sample_indices_follows_the_config():
    assert sample_indices(ExtractConfig(num_frames=5), 10, 25.0).tolist() == [1, 3, 5, 7, 9]
    by_rate = ExtractConfig(sampling="fps", fps=10.0, num_frames=5)  # the frame count means nothing here
    assert sample_indices(by_rate, 100, 30.0).tolist() == list(range(0, 100, 3))
