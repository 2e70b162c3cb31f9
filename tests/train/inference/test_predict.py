"""fgm-predict: a tiny model trained on a --tokens store labels the same videos with the same logits."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fgm_common.datasets import get_dataset
from fgm_common.store import FeatureStore
from train.parts.clip_parts import ClipParts, load_store_clip
from train.fitting.data import load_features
from train.experiments.experiment import Experiment, run_experiment
from train.inference.predict import top_k, video_items
from train.predict_cli import app
from train.fitting.splits import SplitSpec
from train.fitting.config import TrainConfig
from train.fitting.trainer import new_model, predict_logits
from train.experiments.variants import get_variant

FRAMES = 6


def flat(text: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def trained(tiny_videos, run_extract_cli, tmp_path_factory) -> SimpleNamespace:
    """The full variant trained for 1 epoch on a store with tokens: token tail and text context both present."""
    root = tmp_path_factory.mktemp("predict")
    store = root / "store"
    res = run_extract_cli(tiny_videos, store, "--tokens", frames=FRAMES)
    assert res.exit_code == 0, res.output
    exp = Experiment(store=str(store), train=TrainConfig(epochs=1, hidden=32, motion_dim=32, device="cpu"),
                     split=SplitSpec(val_fraction=0.5), out=root / "run", quiet=True)
    run_experiment(exp)
    ckpt = next((root / "run").rglob("checkpoint.pt"))
    videos = sorted(p.relative_to(tiny_videos).as_posix() for p in tiny_videos.rglob("*.mp4"))
    return SimpleNamespace(store=str(store), ckpt=ckpt, videos=videos, root=root)


def invoke(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_predict_matches_model_on_training_features(trained, tiny_videos, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_videos)  # short relative paths: the table does not fold them
    videos = trained.videos[::2]  # one per class
    out = tmp_path / "pred.json"
    res = invoke(trained.ckpt, *videos, "--json", out, "--device", "cpu", "--quiet", "--top-k", "2")
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    ckpt = torch.load(trained.ckpt, weights_only=True)
    assert report["classes"] == ckpt["classes"] and report["random_clip_weights"]
    assert [v["video"] for v in report["videos"]] == videos  # one row per video, input order
    for v in report["videos"]:
        scores = [t["score"] for t in v["top"]]
        assert v["ok"] and len(scores) == 2
        assert scores == sorted(scores, reverse=True) and sum(scores) <= 1.0
        assert f"{scores[0]:.3f} {v['top'][0]['class']}" in flat(res.output)  # the table shows the row

    # Known answer: the model as the trainer builds it, with the checkpoint's weights, on the training store.
    keys = list(ckpt["model"])
    assert any(k.startswith("token_tail.") for k in keys) and any(k.startswith("prompt_learner.") for k in keys)
    store = FeatureStore.open(trained.store)
    fs = load_features(store, get_dataset("folder"), tokens=True)
    parts = ClipParts(load_store_clip(store), fs.class_sentences, fs.classes, has_tokens=True)
    model = new_model(fs, TrainConfig(**ckpt["train_config"]), get_variant(ckpt["variant"]), parts)
    assert not model.frozen_clip_keys() & set(keys)  # the frozen CLIP copies are rebuilt, never stored
    model.load_checkpoint_state(ckpt["model"])
    want = predict_logits(model, fs, np.array([fs.keys.index(v) for v in videos]), torch.device("cpu"))
    got = np.array([v["logits"] for v in report["videos"]])
    assert not np.allclose(want[0], want[1], atol=1e-3)  # distinct videos give distinct logits
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_corrupt_video_is_reported_and_exit_1(trained, tiny_videos, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    good = tiny_videos / trained.videos[0]
    out = tmp_path / "pred.json"
    res = invoke(trained.ckpt, good, bad, "--json", out, "--device", "cpu", "--quiet")
    assert res.exit_code == 1, res.output
    rows = {v["video"]: v for v in json.loads(out.read_text())["videos"]}
    assert rows[str(good)]["ok"] and len(rows[str(good)]["top"]) == 3
    assert not rows[str(bad)]["ok"] and rows[str(bad)]["reason"]
    assert "FAILED" in res.output and "1 of 2 videos could not be labelled" in flat(res.output)


def test_clip_identity_mismatch_is_refused(trained, tiny_videos, tmp_path):
    ckpt = torch.load(trained.ckpt, weights_only=True)
    ckpt["clip_identity"]["weights_sha256"] = "0" * 64
    forged = tmp_path / "forged.pt"
    torch.save(ckpt, forged)
    res = invoke(forged, tiny_videos / trained.videos[0], "--device", "cpu", "--quiet")
    assert res.exit_code == 2, res.output  # refused before extracting anything
    text = flat(res.output)
    assert "weights_sha256" in text and "differ from those the checkpoint was trained on" in text


def test_top_k_is_sorted_softmax():
    logits = np.array([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])
    rows = top_k(logits, ["a", "b", "c"], 5)  # k above C gives every class
    assert [c for c, _ in rows[0]] == ["b", "c", "a"] and [c for c, _ in rows[1]][0] == "a"
    e = np.exp(logits[0] - logits[0].max())
    np.testing.assert_allclose([s for _, s in rows[0]], np.sort(e / e.sum())[::-1])


def test_video_items_expand_folders_once(tiny_videos):
    one = tiny_videos / "swing_slow"
    items = video_items([one, one / sorted(p.name for p in one.iterdir())[0]])
    assert len(items) == len(list(one.glob("*.mp4")))  # the file given twice counts once
    assert all(i.label == "" and i.key == i.path for i in items)
