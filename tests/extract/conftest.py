"""Fixtures of the fgm-extract CLI tests: the tiny folder extracted once per module, the tiny CLIP."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from extract.clip_model import load_clip


@pytest.fixture(scope="module")
def base(tiny_videos, tmp_path_factory, run_extract_cli):
    """The tiny folder extracted once (CLIP batches of 4: a video spans batches, batches span videos)."""
    url = str(tmp_path_factory.mktemp("base") / "store.zarr")
    result = run_extract_cli(tiny_videos, url, "--batch-size", "4")
    return SimpleNamespace(videos=tiny_videos, url=url, result=result)


@pytest.fixture(scope="module")
def tiny_clip():
    return load_clip("fgm-tiny-vit", "none", random_seed=0, device="cpu")
