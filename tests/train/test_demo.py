"""fgm-demo end to end on a tiny scale: synthesise, extract once, train two variants over two seeds, report."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from train.demo import app


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
