"""Non-neural baselines: known answers (zero-shot, linear probe), logits of every baseline, the baselines sweep and its resume."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from fgm_common.datasets import get_dataset
from fgm_common.store import FeatureStore
from train.experiments.baselines import BASELINES, baseline_costs, fit_predict
from train.parts.probe import ABSENT_CLASS_LOGIT
from train.cli import app
from train.experiments.costs import head_costs
from train.fitting.data import FeatureSet, load_features
from train.experiments.metrics import classification_metrics
from train.fitting.splits import Fold, SplitSpec, make_folds
from train.fitting.config import TrainConfig
from train.fitting.trainer import new_model
from train.experiments.variants import SWEEPS, get_variant

TINY = ("--hidden", "32", "--val-fraction", "0.5", "--device", "cpu", "--quiet")
CFG = TrainConfig(hidden=32, motion_dim=32, epochs=1, device="cpu")


def fake_features(clip: torch.Tensor, labels, class_text: torch.Tensor) -> FeatureSet:
    """An in-memory FeatureSet around given CLIP frames (N, T, D); flow is zeros (baselines never read it)."""
    n, t, d = clip.shape
    c = class_text.shape[0]
    empty = np.array([""] * n)
    return FeatureSet(keys=[f"v{i}" for i in range(n)], classes=[f"class{k}" for k in range(c)],
                      labels=np.asarray(labels, dtype=np.int64), groups=empty, views=empty, splits=empty,
                      tensors={"clip": clip, "flow": torch.zeros(n, t - 1, 2, 4, 4), "flow_hist": torch.zeros(n, t - 1, 4)},
                      class_text=F.normalize(class_text, dim=-1), class_sentences={}, scene_text=torch.zeros(1, d))


def half_fold(labels) -> Fold:
    return make_folds(SplitSpec("stratified", val_fraction=0.5), np.asarray(labels))[0]


# ---- known answers -------------------------------------------------------------------------------
def test_zero_shot_is_perfect_when_frames_are_the_class_texts():
    gen = torch.Generator().manual_seed(0)
    n_classes, per_class, t, d = 5, 4, 6, 32
    text = F.normalize(torch.randn(n_classes, d, generator=gen), dim=-1)  # (C, D)
    labels = np.repeat(np.arange(n_classes), per_class)
    # every frame is its class text, at an arbitrary positive length (zero-shot normalises frames)
    scale = 0.5 + torch.rand(len(labels), t, 1, generator=gen)
    fs = fake_features(text[labels][:, None, :] * scale, labels, text)
    fold = half_fold(labels)
    logits, fitted, _ = fit_predict("zero_shot", fs, fold, CFG)
    assert logits.shape == (len(fold.val), n_classes)
    assert classification_metrics(fs.labels[fold.val], logits, fs.classes)["accuracy"] == 1.0
    assert np.allclose(logits.max(axis=1), 100.0, atol=1e-3)  # cosine 1 at CLIP's scale of 100
    costs = baseline_costs(fitted, fs, fold.val)
    assert costs["head_params_trainable_M"] == 0.0  # nothing is learned
    assert costs["head_gflops_per_video"] == pytest.approx(2 * n_classes * d / 1e9)


def test_zero_shot_ignores_the_training_videos():
    gen = torch.Generator().manual_seed(1)
    text = torch.randn(3, 16, generator=gen)
    labels = np.repeat(np.arange(3), 4)
    fs = fake_features(torch.randn(12, 5, 16, generator=gen), labels, text)
    fold = half_fold(labels)
    a = fit_predict("zero_shot", fs, fold, CFG)[0]
    b = fit_predict("zero_shot", fs, Fold("other", fold.train[:1], fold.val), CFG)[0]
    assert np.array_equal(a, b)


def test_linear_probe_separates_linearly_separable_features():
    gen = torch.Generator().manual_seed(0)
    n_classes, per_class, t, d = 4, 10, 5, 24
    centres = 3.0 * torch.randn(n_classes, d, generator=gen)
    labels = np.repeat(np.arange(n_classes), per_class)
    clip = centres[labels][:, None, :] + 0.3 * torch.randn(len(labels), t, d, generator=gen)
    # class texts unrelated to the features: only the probe's training can get this right
    fs = fake_features(clip, labels, torch.randn(n_classes, d, generator=gen))
    fold = half_fold(labels)
    logits, fitted, _ = fit_predict("linear_probe", fs, fold, CFG)
    assert logits.shape == (len(fold.val), n_classes) and np.isfinite(logits).all()
    assert (logits.argmax(1) == fs.labels[fold.val]).all()
    assert baseline_costs(fitted, fs, fold.val)["head_params_trainable_M"] == pytest.approx((n_classes * d + n_classes) / 1e6)
    zero_shot = fit_predict("zero_shot", fs, fold, CFG)[0]
    assert (zero_shot.argmax(1) == fs.labels[fold.val]).mean() < 1.0  # the texts alone do not


def test_linear_probe_with_classes_missing_from_training():
    """Two classes seen, a third only in validation: finite logits for all three, the unseen one never picked."""
    gen = torch.Generator().manual_seed(2)
    centres = 3.0 * torch.randn(3, 8, generator=gen)
    labels = np.array([0, 0, 0, 1, 1, 1, 0, 1, 2])
    fs = fake_features(centres[labels][:, None, :] + 0.1 * torch.randn(9, 3, 8, generator=gen), labels, centres)
    fold = Fold("partial", np.arange(6), np.arange(6, 9))
    logits = fit_predict("linear_probe", fs, fold, CFG)[0]
    assert logits.shape == (3, 3) and np.isfinite(logits).all()
    assert (logits[:, 2] == ABSENT_CLASS_LOGIT).all()
    assert logits[:2].argmax(1).tolist() == [0, 1]


def test_unknown_baseline_is_refused():
    fs = fake_features(torch.randn(4, 3, 8), [0, 1, 0, 1], torch.randn(2, 8))
    with pytest.raises(ValueError, match="linear_probe"):
        fit_predict("knn", fs, half_fold(fs.labels), CFG)


# ---- every baseline over the tiny store ------------------------------------------------------------
@pytest.fixture(scope="module")
def store_features(tiny_store):
    fs = load_features(FeatureStore.open(tiny_store), get_dataset("folder"))
    return fs, half_fold(fs.labels)


@pytest.mark.parametrize("kind", sorted(BASELINES))
def test_every_baseline_gives_finite_validation_logits(kind, store_features):
    fs, fold = store_features
    logits, fitted, seconds = fit_predict(kind, fs, fold, CFG)
    assert logits.shape == (len(fold.val), len(fs.classes)) and np.isfinite(logits).all()
    assert seconds >= 0
    model_costs = head_costs(new_model(fs, CFG, get_variant("flow_only")), fs, fold.val, torch.device("cpu"))
    costs = baseline_costs(fitted, fs, fold.val)
    assert costs.keys() == model_costs.keys()  # one cost table for models and baselines
    assert costs["infer_ms_head"] > 0


def test_baseline_variants_are_registered_with_their_kind():
    for kind in BASELINES:
        assert get_variant(kind).kind == kind
        assert not get_variant(kind).token_adapters and get_variant(kind).prompt_ctx == 0  # no CLIP towers needed
    assert set(BASELINES) <= set(SWEEPS["baselines"])


# ---- the baselines sweep through fgm-train ----------------------------------------------------------
def fgm_train(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_baselines_sweep_writes_tables_and_resumes_without_refitting(tiny_store, tmp_path):
    out = tmp_path / "run"
    args = (tiny_store, "--sweep", "baselines", "--epochs", "1", "--out", out, *TINY)
    result = fgm_train(*args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "(no video decoded)" in text
    summary = json.loads((out / "metrics.json").read_text())
    assert list(summary["variants"]) == list(SWEEPS["baselines"])
    for name in SWEEPS["baselines"]:
        res = summary["variants"][name]
        assert res["kind"] == get_variant(name).kind
        assert res["per_seed"]["0"]["n"] == 3  # every variant scored on the same 3 validation videos
        assert (out / name / "result.json").is_file()
    assert summary["variants"]["zero_shot"]["costs"]["head_params_trainable_M"] == 0.0
    assert summary["variants"]["flow_only"]["backbone"] == "none"
    assert summary["backbones"]["none"]["backbone_gflops_per_video"] == 0.0
    with (out / "table_quality.csv").open(newline="") as f:
        assert [r["variant"] for r in csv.DictReader(f)] == list(SWEEPS["baselines"])
    assert "| zero_shot |" in (out / "report.md").read_text()

    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.suffix in (".json", ".pt") and p.name != "metrics.json"}
    again = fgm_train(*args, "--resume")
    assert again.exit_code == 0, again.output
    assert " ".join(again.output.split()).count("finished in an earlier run") == len(SWEEPS["baselines"])
    assert "fitted on" not in again.output  # no baseline refitted
    assert {p: p.stat().st_mtime_ns for p in before} == before
