"""extract.fidelity and `fgm-extract fidelity`: stored features re-measured against torch fp32 on their videos."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from extract.clip_model import FrozenClip
from extract.fidelity import measure_fidelity, spread
from fgm_common.store import FeatureStore

from tests.extract.cli_helpers import FRAMES, flat

pytest.importorskip("onnxruntime")


@pytest.fixture
def onnx_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FGM_CACHE_DIR", str(tmp_path / "fgm-cache"))


def fidelity_cli(*args: str):
    from extract.cli import dispatch  # noqa: F401  (the console entry routes `fidelity` to this app)
    from extract.cli import fidelity_app

    return CliRunner().invoke(fidelity_app, list(args))


def test_a_torch_store_measures_as_torch(base):
    report = measure_fidelity(base.url)
    n = len(FeatureStore.open(base.url).entries())
    assert len(report.measured) == n and report.frames == n * FRAMES and not report.skipped
    # known answer: the same weights, frames and preprocessing in other batches give the same embeddings
    assert report.min_cosine > 0.99999 and report.threshold is None and report.passed


def test_an_int8_store_is_measured_on_every_frame_and_tokens(tiny_videos, tmp_path, onnx_cache, run_extract_cli):
    url = str(tmp_path / "int8.zarr")
    assert run_extract_cli(tiny_videos, url, "--clip-runtime", "onnx-int8", "--tokens").exit_code == 0
    report = measure_fidelity(url)
    assert report.runtime == "onnx-int8" and report.threshold == 0.99
    assert report.frames == len(FeatureStore.open(url).entries()) * FRAMES
    assert 0.99 <= report.min_cosine < 1.0 and report.tokens_min_cosine is not None and report.passed
    result = fidelity_cli(url, "--entries", "2")
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "onnx-int8" in out and f"{2 * FRAMES} frames of 2 entries" in out and "passes" in out


def test_features_that_stray_fail_and_a_moved_video_is_skipped(tiny_videos_copy, tmp_path, onnx_cache,
                                                               run_extract_cli, monkeypatch):
    url = str(tmp_path / "onnx.zarr")
    assert run_extract_cli(tiny_videos_copy, url, "--clip-runtime", "onnx").exit_code == 0
    entries = FeatureStore.open(url).entries()
    shutil.move(entries[0].meta["path"], tmp_path / "elsewhere.mp4")
    real = FrozenClip.encode_batch

    def flipped(self, batch, tokens=False):  # torch now disagrees with what the store holds
        emb, tok = real(self, batch, tokens)
        return -emb, tok

    monkeypatch.setattr(FrozenClip, "encode_batch", flipped)
    result = fidelity_cli(url)
    assert result.exit_code == 1, result.output
    out = flat(result.output)
    assert "below 0.999" in out and entries[0].key in out and "skipped" in out


def test_spread_takes_entries_from_the_whole_store():
    items = list(range(10))
    assert spread(items, 3) == [0, 4, 9]  # linspace 0, 4.5, 9, rounded half to even
    assert spread(items, 0) == items and spread(items, 20) == items
    assert np.all(np.diff(spread(items, 4)) > 0)
