"""`fgm-extract info`: the human summary of a small store with failures, `--json` as it always was, the routing."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console
from typer.testing import CliRunner

from extract.cli import dispatch
from extract.info import _worst_fidelity, render_info, summarize
from extract.inspect_cli import info_app
from fgm_common.store import VIDEOS, FeatureStore

from tests.extract.cli_helpers import flat

GOOD = ("circle_clockwise/circle_clockwise_0000.mp4", "swing_slow/swing_slow_0001.mp4")
BAD = {"circle_clockwise/zero.mp4": "empty-file", "swing_slow/notes.mp4": "not-a-video",
       "swing_slow/more_notes.mp4": "not-a-video"}


@pytest.fixture(scope="module")
def small(tiny_videos, tmp_path_factory, run_extract_cli):
    """Two good videos of two classes and three bad files (two reasons), extracted once with random weights."""
    videos = tmp_path_factory.mktemp("info_videos")
    for key in GOOD:
        (videos / key).parent.mkdir(exist_ok=True)
        shutil.copy2(tiny_videos / key, videos / key)
    (videos / "circle_clockwise" / "zero.mp4").write_bytes(b"")
    for key in ("swing_slow/notes.mp4", "swing_slow/more_notes.mp4"):
        (videos / key).write_text("not a video\n" * 10)
    url = str(tmp_path_factory.mktemp("info_store") / "store.zarr")
    result = run_extract_cli(videos, url)
    assert result.exit_code == 1, result.output  # failures make the exit status 1
    return SimpleNamespace(url=url, videos=videos)


def info_output(*args: str) -> str:
    """The summary as one line of words: table borders and rich's wrapping undone (cells are short)."""
    result = CliRunner().invoke(info_app, list(args))
    assert result.exit_code == 0, result.output
    return flat(re.sub(r"[\u2500-\u257f]", " ", result.output))  # box-drawing characters


def test_summary_counts_entries_failures_and_classes(small):
    info = summarize(FeatureStore.open(small.url))
    assert (info.complete, info.incomplete, info.failed) == (2, 0, 3)
    assert info.failure_reasons == {"not-a-video": 2, "empty-file": 1}
    assert info.failed_keys == BAD
    assert info.classes == {"circle_clockwise": 1, "swing_slow": 1} and info.unlabelled == 0
    assert info.random_clip and not info.random_backbones
    assert info.example_keys == sorted(GOOD)
    assert info.size_bytes > 1000 and len(info.runs) == 1 and info.runs[0].extracted == 2
    assert info.runs[0].failed == 3 and info.fidelity is None  # a torch run checks no fidelity


def test_info_prints_counts_reasons_and_the_random_weights_warning(small):
    out = info_output(small.url)
    assert "complete 2" in out and "incomplete (being written, or redone next run) 0" in out and "failed 3" in out
    assert "not-a-video 2" in out and "empty-file 1" in out
    assert "circle_clockwise 1" in out and "swing_slow 1" in out
    assert "WARNING: CLIP weights are RANDOM (pretrained 'none')" in out
    assert "fgm-tiny-vit" in out and "dis, computed at 128 px" in out and "sampled: between consecutive sampled frames" in out
    assert "6 frames per video" in out and "torch, preprocess pil" in out
    assert FeatureStore.open(small.url).runs()[0]["run_id"] in out
    assert f"fgm-extract show {small.url} {sorted(GOOD)[0]}" in out
    assert "swing_slow/notes.mp4 (not-a-video)" in out


def test_incomplete_entries_are_counted(small, tmp_path):
    url = str(tmp_path / "copy.zarr")
    shutil.copytree(small.url, url)
    store = FeatureStore.open(url, mode="a")
    store.root[VIDEOS][store.entries()[0].id].attrs["complete"] = False  # as a run killed while writing it
    info = summarize(FeatureStore.open(url))
    assert (info.complete, info.incomplete) == (1, 1) and info.classes == {"circle_clockwise": 0, "swing_slow": 1}
    assert "incomplete (being written, or redone next run) 1" in info_output(url)


def test_no_warning_for_pretrained_weights(small):
    info = summarize(FeatureStore.open(small.url))
    for config, warned in ((info.config, True), (dataclasses.replace(info.config, pretrained="openai"), False)):
        console = Console(record=True, width=200, file=io.StringIO())
        render_info(dataclasses.replace(info, config=config), console)
        assert ("CLIP weights are RANDOM" in console.export_text()) == warned


def test_json_is_the_raw_record_as_before(small, monkeypatch, capsys):
    out = CliRunner().invoke(info_app, [small.url, "--json"])
    assert out.exit_code == 0, out.output
    record = json.loads(out.output)
    store = FeatureStore.open(small.url)
    assert list(record) == ["config", "provenance", "classes", "videos", "failures", "runs"]
    assert record == {"config": store.config.to_dict(), "provenance": store.provenance, "classes": store.classes,
                      "videos": 2, "failures": store.failures(), "runs": store.runs()}
    assert {k: v["reason"] for k, v in record["failures"].items()} == BAD

    # the console script routes `fgm-extract info STORE --json` to the same command
    monkeypatch.setattr(sys, "argv", ["fgm-extract", "info", small.url, "--json"])
    with pytest.raises(SystemExit) as exit_:
        dispatch()
    assert exit_.value.code == 0
    assert json.loads(capsys.readouterr().err) == record


def test_info_of_a_non_store_says_what_to_do(tmp_path):
    bad = CliRunner().invoke(info_app, [str(Path(tmp_path) / "absent.zarr")])
    assert bad.exit_code == 2 and "fgm-extract VIDEOS --out" in flat(bad.output)


def test_worst_fidelity_of_a_run_takes_every_tower_and_tokens():
    run = {"clip_runtime": {"runtime": "onnx-int8", "fidelity": {"min_cosine": 0.995, "tokens_min_cosine": 0.990}},
           "clip_runtime_workers": [{"fidelity": {"min_cosine": 0.992}}, {"runtime": "onnx-int8"}]}
    assert _worst_fidelity(run) == 0.990
    assert _worst_fidelity({"clip_runtime": {"runtime": "torch"}}) is None
    assert _worst_fidelity({"clip_runtime": None}) is None
