"""fgm-predict extracts new videos with the CLIP runtime of the checkpoint's store (here onnx-int8)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from fgm_common.store import FeatureStore
from train.experiments.experiment import Experiment, run_experiment
from train.fitting.config import TrainConfig
from train.fitting.splits import SplitSpec
from train.inference import predict
from train.predict_cli import app

pytest.importorskip("onnxruntime")  # scripts/setup.sh installs it (the fgm[onnx] extra)


def test_predict_uses_the_runtime_of_the_training_store(tiny_videos, run_extract_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("FGM_CACHE_DIR", str(tmp_path / "fgm-cache"))
    store = tmp_path / "int8.zarr"
    res = run_extract_cli(tiny_videos, store, "--clip-runtime", "onnx-int8")
    assert res.exit_code == 0, res.output
    exp = Experiment(store=str(store), train=TrainConfig(epochs=1, hidden=32, motion_dim=32, device="cpu"),
                     split=SplitSpec(val_fraction=0.5), out=tmp_path / "run", quiet=True)
    run_experiment(exp)
    ckpt = next((tmp_path / "run").rglob("checkpoint.pt"))
    assert torch.load(ckpt, weights_only=True)["extract_config"]["clip_runtime"] == "onnx-int8"

    seen = []
    real = predict._extract

    def recording(items, config, url, options):
        seen.append(config.clip_runtime)
        summary = real(items, config, url, options)
        seen.append(FeatureStore.open(url).runs()[-1]["clip_runtime"]["runtime"])  # what really ran
        return summary

    monkeypatch.setattr(predict, "_extract", recording)
    video = next(tiny_videos.rglob("*.mp4"))
    out = tmp_path / "pred.json"
    result = CliRunner().invoke(app, [str(ckpt), str(video), "--json", str(out), "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    assert seen == ["onnx-int8", "onnx-int8"]
    assert json.loads(out.read_text())["videos"][0]["ok"]
