"""Shared fixtures: a tiny labelled synthetic video folder, the shared real clips, and the extract CLI runner."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest
from click.testing import Result
from typer.testing import CliRunner

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"  # real clips; absent on a user's machine

# Three classes x two clips, 48 px, 12-20 frames: each video extracts in well under a second.
TINY_CLASSES = ("circle_clockwise", "circle_counterclockwise", "swing_slow")
TINY_PER_CLASS = 2
# The options every test extraction shares: tiny random-weight CLIP, few frames, CPU, no progress bars.
# Flow between consecutive sampled frames (T-1 fields) keeps the known-answer tests simple; the
# default `native` pairing is tested on its own (test_native_flow_pairs_and_tokens).
TINY_ARGS = ("--clip-model", "fgm-tiny-vit", "--pretrained", "none", "--device", "cpu", "--quiet",
             "--flow-pairs", "sampled")


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory) -> Path:
    """A folder <class>/<class>_<i>.mp4 (6 videos, 3 classes) plus descriptions.json, written once per session.

    Read-only for tests: copy it (`tiny_videos_copy`) before changing any file.
    """
    from extract.synth import SynthConfig, write_dataset

    out = tmp_path_factory.mktemp("tiny_videos")
    write_dataset(out, SynthConfig(videos_per_class=TINY_PER_CLASS, classes=TINY_CLASSES, size=48,
                                   min_frames=12, max_frames=20, seed=0), progress=False)
    return out


@pytest.fixture
def tiny_videos_copy(tiny_videos, tmp_path) -> Path:
    """A private copy of `tiny_videos` (file times kept) that a test may change."""
    dst = tmp_path / "videos"
    shutil.copytree(tiny_videos, dst)
    return dst


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data relative to the repo root; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real clips not available at {SHARED_DATA}")
    return SHARED_DATA


def _run_extract(videos: Path | str, out: Path | str, *extra: str, frames: int = 6) -> Result:
    from extract.cli import extract_app

    args = [str(videos), "--out", str(out), *TINY_ARGS, "--frames", str(frames), *extra]
    result = CliRunner().invoke(extract_app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a crash, not an exit code: show its traceback
    return result


@pytest.fixture(scope="session")
def run_extract_cli() -> Callable[..., Result]:
    """`run_extract_cli(videos, out, *extra, frames=6)`: fgm-extract in-process with the tiny model.

    Later options in `extra` override the defaults (click keeps the last value). Crashes re-raise.
    """
    return _run_extract



# The tiny store's sizes differ from every default (16 frames, 56 px grid), so a test can tell sizes
# read from the store from constants.
TINY_STORE_FRAMES = 6
TINY_STORE_GRID = 16


@pytest.fixture(scope="session")
def tiny_store(tiny_videos, tmp_path_factory) -> str:
    """`tiny_videos` extracted once per session with patch tokens (6 frames, 16 x 16 flow grid, T-1 flow fields).

    Read-only for tests: a test that changes a store extracts its own.
    """
    out = tmp_path_factory.mktemp("tiny_store") / "store"
    result = _run_extract(tiny_videos, out, "--tokens", "--flow-grid", str(TINY_STORE_GRID),
                          frames=TINY_STORE_FRAMES)
    assert result.exit_code == 0, result.output
    return str(out)
