"""extract -> train -> predict with the store on S3 (a moto server on loopback): features as from a folder."""

from __future__ import annotations

import json

import numpy as np
import torch
from typer.testing import CliRunner

from fgm_common.datasets import get_dataset
from fgm_common.store import MODEL_ARRAYS, FeatureStore
from tests.conftest import TINY_STORE_FRAMES, TINY_STORE_GRID
from tests.s3_helpers import moto_endpoint, s3_bucket, s3_env  # noqa: F401 (fixtures)
from train.cli import app as train_app
from train.fitting.data import load_features
from train.predict_cli import app as predict_app


def invoke(app, *args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_extract_train_predict_over_s3(tiny_videos, tiny_store, run_extract_cli, s3_bucket, tmp_path, monkeypatch):
    url = f"{s3_bucket}/store.zarr"
    # the session's tiny store's settings, less its tokens, into the bucket
    made = run_extract_cli(tiny_videos, url, "--flow-grid", str(TINY_STORE_GRID), frames=TINY_STORE_FRAMES)
    assert made.exit_code == 0, made.output

    # Known answer: what training reads from the bucket is what it reads from the folder.
    remote = load_features(FeatureStore.open(url), get_dataset("folder"))
    local = load_features(FeatureStore.open(tiny_store), get_dataset("folder"))
    assert remote.keys == local.keys and remote.classes == local.classes and len(remote) == 6
    for name in MODEL_ARRAYS:
        assert torch.equal(remote.tensors[name], local.tensors[name]), name
    # the text embeddings are encoded again by each extraction: equal up to float rounding, not bit for bit
    torch.testing.assert_close(remote.class_text, local.class_text)

    run = tmp_path / "run"
    trained = invoke(train_app, url, "--epochs", "1", "--variants", "full", "--out", run, "--hidden", "32",
                     "--val-fraction", "0.5", "--device", "cpu", "--quiet")
    assert trained.exit_code == 0, trained.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["store"] == url and metrics["videos"] == 6
    ckpt_path = run / "full" / "seed0" / "stratified" / "checkpoint.pt"
    assert torch.load(ckpt_path, weights_only=True)["store_url"] == url

    monkeypatch.chdir(tiny_videos)
    videos = sorted(p.relative_to(tiny_videos).as_posix() for p in tiny_videos.rglob("*.mp4"))[::2]
    predicted = invoke(predict_app, ckpt_path, *videos, "--json", tmp_path / "pred.json", "--device", "cpu",
                       "--quiet")
    assert predicted.exit_code == 0, predicted.output
    report = json.loads((tmp_path / "pred.json").read_text())
    assert report["classes"] == metrics["classes"] and [v["video"] for v in report["videos"]] == videos
    assert all(v["ok"] and np.isclose(sum(t["score"] for t in v["top"]), 1.0) for v in report["videos"])
