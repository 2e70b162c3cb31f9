"""fgm-demo end to end on a tiny scale: synthesise, extract once, train two variants over two seeds, report."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tests.extract.weights_helpers import TINY, cache_tiny_weights, forbid_network, hub_offline_env, register_tag
from train.demo import app, pretrained_or_random


def test_demo_runs_the_whole_pipeline_through_the_library(tmp_path):
    out = tmp_path / "demo"
    res = CliRunner().invoke(app, ["--out", str(out), "--videos-per-class", "3", "--clip-model", "fgm-tiny-vit",
                                   "--pretrained", "none", "--epochs", "1", "--variants", "flow_only,linear_probe",
                                   "--seeds", "0,1"])
    assert res.exit_code == 0, res.output
    assert "RANDOM weights" in " ".join(res.output.split())
    metrics = json.loads((out / "run" / "metrics.json").read_text())
    assert metrics["videos"] == 18 and metrics["random_clip_weights"]  # 6 mixed classes x 3, all extracted
    assert set(metrics["variants"]) == {"flow_only", "linear_probe"}
    assert all(set(v["per_seed"]) == {"0", "1"} for v in metrics["variants"].values())
    assert (out / "run" / "report.md").is_file()
    # a second run finds every video in the store: nothing is decoded again
    again = CliRunner().invoke(app, ["--out", str(out), "--videos-per-class", "3", "--clip-model", "fgm-tiny-vit",
                                     "--pretrained", "none", "--epochs", "1", "--variants", "linear_probe",
                                     "--seeds", "0"])
    assert again.exit_code == 0, again.output
    assert "0 videos extracted, 18 already in the store" in " ".join(again.output.split())


def test_demo_without_reachable_weights_says_so_in_one_line_and_goes_on_at_once(tmp_path, monkeypatch):
    """A tag neither cached nor reachable: one line naming the ways out, no hub call or retry, random weights."""
    hub_offline_env(monkeypatch, True)
    tag = register_tag(monkeypatch)
    attempts = forbid_network(monkeypatch)
    out = tmp_path / "demo"
    res = CliRunner().invoke(app, ["--out", str(out), "--videos-per-class", "3", "--clip-model", TINY,
                                   "--pretrained", tag, "--clip-cache-dir", str(tmp_path / "hub"), "--epochs", "1",
                                   "--variants", "linear_probe", "--seeds", "0"])
    assert res.exit_code == 0, res.output
    said = [line for line in res.output.splitlines() if "no CLIP weights" in line]
    assert len(said) == 1 and said[0].startswith(f"no CLIP weights for {TINY}/{tag}: HF_HUB_OFFLINE is set")
    assert all(way in said[0] for way in ("--pretrained /path/ckpt.pt", "--clip-cache-dir", "--pretrained none"))
    assert "Retry" not in res.output and "huggingface" not in res.output and attempts == []
    assert json.loads((out / "run" / "metrics.json").read_text())["random_clip_weights"]


def test_cached_weights_are_kept_without_a_network_attempt(tmp_path, monkeypatch):
    hub_offline_env(monkeypatch, False)
    tag = register_tag(monkeypatch)
    cache_tiny_weights(tmp_path / "hub", seed=0)
    attempts = forbid_network(monkeypatch)
    assert pretrained_or_random(TINY, tag, str(tmp_path / "hub")) == (tag, "") and attempts == []
    assert pretrained_or_random(TINY, "none") == ("none", "")
