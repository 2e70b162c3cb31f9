"""Variants and sweeps: the registry, no_clip over a store with ResNet-50 features, single-stream baselines, sweep resume."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fgm_common.config import ExtractConfig, FlowConfig
from fgm_common.datasets import get_dataset
from fgm_common.store import FeatureStore, StoreError
from train.experiments import experiment
from train.cli import app
from train.fitting.data import load_features
from train.fitting.losses import PriorState, compute_losses
from train.parts.model_config import ModelConfig
from train.fitting.splits import SplitSpec, make_folds
from train.fitting.config import TrainConfig
from train.fitting.trainer import model_config, new_model
from train.experiments.variants import SWEEPS, VARIANTS, get_variant, model_variants

TINY = ("--hidden", "32", "--val-fraction", "0.5", "--device", "cpu", "--quiet")
CFG = TrainConfig(hidden=32, motion_dim=32, epochs=1, device="cpu")
RESNET_DIM = 2048  # torchvision ResNet-50's pooled feature
PRIORS = {"no_align_loss": "w_align", "no_motion_prior": "w_motion", "no_context_prior": "w_context",
          "no_cluster_prior": "w_cluster"}


def fgm_train(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a crash, not an exit code: show its traceback
    return result


def flat(text: str) -> str:
    return " ".join(text.split())


# ---- registry ------------------------------------------------------------------------------------
def test_sweeps_name_registered_variants():
    for name, names in SWEEPS.items():
        assert names and len(set(names)) == len(names), name
        assert set(names) <= set(VARIANTS), set(names) - set(VARIANTS)
    assert {"full", "no_clip", "no_motion", "no_fusion", *PRIORS} <= set(SWEEPS["ablations"])  # the paper's three + ours
    assert {"zero_shot", "linear_probe", "temporal_transformer", "flow_only"} <= set(SWEEPS["baselines"])
    assert set(SWEEPS["all"]) == set(SWEEPS["ablations"]) | set(SWEEPS["baselines"]) | set(SWEEPS["fusion"])
    assert set(experiment.FOLD_RUNNERS) >= {get_variant(n).kind for n in VARIANTS}  # every kind can be run


@pytest.mark.parametrize("name", sorted(PRIORS))
def test_each_prior_variant_turns_off_exactly_its_own_loss(name):
    defaults = {w: getattr(ModelConfig, w) for w in PRIORS.values()}
    assert all(v > 0 for v in defaults.values())
    assert get_variant(name).model == {PRIORS[name]: 0.0}


def test_no_clip_config_needs_the_extra_array_and_round_trips():
    base = dict(clip_dim=32, flow_grid=8, flow_hist_dim=8, n_classes=3, n_frames=4, n_flow=3, hidden=16, motion_dim=8)
    with pytest.raises(ValueError, match="--backbone resnet50"):
        ModelConfig(**base, visual_key="resnet50", use_context=False)
    with pytest.raises(ValueError, match="context"):
        ModelConfig(**base, visual_key="resnet50", extra_dims={"resnet50": 40})  # scene texts are CLIP-space
    cfg = ModelConfig(**base, visual_key="resnet50", use_context=False, extra_dims={"resnet50": 40, "other": 7})
    assert (cfg.visual_dim, cfg.visual_width, cfg.clip_dim) == (40, 40, 32)
    assert "extra_dims" not in cfg.to_dict()  # only the width of the array read is kept
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    clip_cfg = ModelConfig(**base, extra_dims={"resnet50": 40})
    assert clip_cfg == ModelConfig(**base) and clip_cfg.visual_width == 32  # extra arrays change nothing for CLIP models


# ---- a store with ResNet-50 features ---------------------------------------------------------------
def write_resnet_store(url: str, classes=("clap", "jump", "wave"), per_class: int = 4, t: int = 4, d: int = 32,
                       grid: int = 8, bins: int = 4) -> FeatureStore:
    """Random arrays of the stored shapes (clip, flow, flow_hist, resnet50) through the store's own writer."""
    config = ExtractConfig(num_frames=t, clip_model="fgm-tiny-vit", pretrained="none",
                           flow=FlowConfig(pairs="sampled", grid=grid, hist_bins=bins), backbones=("resnet50",),
                           backbone_weights="none")
    store = FeatureStore.create_or_open(url, config, {"note": "test data: random arrays"})
    rng = np.random.default_rng(0)
    store.set_text(list(classes), [f"a video of a person {c}." for c in classes], list(range(len(classes))),
                   rng.normal(size=(len(classes), d)), ["a room", "a field"], rng.normal(size=(2, d)))
    for c in classes:
        for i in range(per_class):
            arrays = {"clip": rng.normal(size=(t, d)), "flow": rng.normal(size=(t - 1, 2, grid, grid)),
                      "flow_hist": rng.random((t - 1, 2 * bins)), "resnet50": rng.normal(size=(t, RESNET_DIM))}
            store.write_entry(f"{c}/{c}_{i}.mp4", arrays, {"label": c})
    return store


@pytest.fixture(scope="module")
def resnet_store(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("resnet") / "store")
    write_resnet_store(url)
    return url


@pytest.fixture(scope="module")
def resnet_fs(resnet_store):
    return load_features(FeatureStore.open(resnet_store), get_dataset("folder"), extra=("resnet50",))


def test_load_features_reads_the_extra_array(resnet_fs):
    assert tuple(resnet_fs.tensors["resnet50"].shape) == (12, 4, RESNET_DIM)
    assert resnet_fs.dims["extra_dims"] == {"resnet50": RESNET_DIM} and resnet_fs.dims["clip_dim"] == 32


def test_a_store_without_the_extra_array_is_a_clear_error(tiny_store):
    with pytest.raises(StoreError, match="--backbone resnet50"):
        load_features(FeatureStore.open(tiny_store), get_dataset("folder"), extra=("resnet50",))


def test_no_clip_reads_resnet_features_and_scores_in_clip_text_space(resnet_fs):
    variant = get_variant("no_clip")
    model = new_model(resnet_fs, CFG, variant).eval()
    mcfg = model.cfg
    assert (mcfg.visual_key, mcfg.visual_dim) == ("resnet50", RESNET_DIM)
    assert model.context is None and model.token_tail is None and model.prompt_learner is None
    assert model.classifier.proj.out_features == resnet_fs.dims["clip_dim"]  # h -> the CLIP text space
    batch = resnet_fs.batch(np.arange(6))
    with torch.no_grad():
        logits = model(batch)["logits"]
        assert torch.equal(model({**batch, "clip": torch.randn_like(batch["clip"])})["logits"], logits)  # CLIP unread
        assert not torch.allclose(model({**batch, "resnet50": torch.randn_like(batch["resnet50"])})["logits"], logits)
        with pytest.raises(KeyError, match="--backbone resnet50"):
            model({k: v for k, v in batch.items() if k != "resnet50"})
    model.train()
    out = model(batch)
    losses = compute_losses(out, batch, PriorState.from_config(mcfg).train(), mcfg)
    assert torch.isfinite(losses["total"]) and losses["context"] == 0
    losses["total"].backward()
    assert model.adapter.up.weight.grad is not None  # the adapter now adapts the ResNet features


def test_no_clip_and_a_clip_variant_end_to_end(resnet_store, tmp_path):
    out = tmp_path / "run"
    result = fgm_train(resnet_store, "--variants", "no_clip,no_adapter", "--epochs", "1", "--split", "stratified",
                       "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["variants"]["no_clip"]["backbone"] == "resnet50"
    resnet = summary["backbones"]["resnet50"]
    assert resnet["backbone_params_M"] == pytest.approx(23.5, abs=0.1)  # torchvision ResNet-50 without its fc
    with (out / "table_cost.csv").open(newline="") as f:
        rows = {r["variant"]: r for r in csv.DictReader(f)}
    for name, backbone in (("no_clip", "resnet50"), ("no_adapter", "clip")):
        row = rows[name]
        added = float(row["gflops_per_video_with_backbone"]) - float(row["head_gflops_per_video"])
        assert added == pytest.approx(summary["backbones"][backbone]["backbone_gflops_per_video"], rel=1e-6)
    assert rows["no_clip"]["other_backbone_weights"] == "resnet50=random"


def test_ablations_sweep_on_a_store_without_resnet_features_stops_before_training(tiny_store, tmp_path):
    out = tmp_path / "run"
    result = fgm_train(tiny_store, "--sweep", "ablations", "--epochs", "1", "--out", out, *TINY)
    assert result.exit_code == 2
    text = flat(result.output)
    assert "no_clip" in text and "--backbone resnet50" in text and "--variants full,no_motion" in text
    assert not out.exists()  # refused before any folder, checkpoint or figure was written


@pytest.mark.parametrize("args,match", [(("--sweep", "ablations", "--variants", "full"), "either --sweep"),
                                        (("--sweep", "bogus"), "ablations")])
def test_bad_sweep_options_exit_2(tiny_store, tmp_path, args, match):
    result = fgm_train(tiny_store, *args, "--out", tmp_path / "run")
    assert result.exit_code == 2 and match in flat(result.output)


def test_list_variants_shows_the_sweeps():
    result = fgm_train("--list-variants")
    assert result.exit_code == 0
    for name in SWEEPS:
        assert f"--sweep {name}" in result.output


# ---- single-stream baselines as model modes -------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_fs(tiny_store):
    return load_features(FeatureStore.open(tiny_store), get_dataset("folder"))


def test_flow_only_never_uses_the_visual_features(tiny_fs):
    model = new_model(tiny_fs, CFG, get_variant("flow_only")).eval()
    assert model.decoder is None and model.v_proj is None and model.context is None
    assert not any(n.startswith("adapter") for n, _ in model.named_parameters())
    batch = tiny_fs.batch(np.arange(len(tiny_fs)))
    with torch.no_grad():
        logits = model(batch)["logits"]
        assert torch.equal(model({**batch, "clip": torch.randn_like(batch["clip"])})["logits"], logits)
        assert not torch.allclose(model({**batch, "flow": torch.randn_like(batch["flow"])})["logits"], logits)


def test_temporal_transformer_reads_clip_frames_and_no_flow(tiny_fs):
    mcfg = model_config(tiny_fs, CFG, get_variant("temporal_transformer"))
    assert mcfg.w_align == mcfg.w_motion == mcfg.w_context == mcfg.w_cluster == 0  # cross-entropy only
    model = new_model(tiny_fs, CFG, get_variant("temporal_transformer")).eval()
    batch = {k: v for k, v in tiny_fs.batch(np.arange(len(tiny_fs))).items() if not k.startswith("flow")}
    with torch.no_grad():
        out = model(batch)
        assert out["logits"].shape == (len(tiny_fs), len(tiny_fs.classes))
        assert out["m_aligned"].shape[1] == tiny_fs.dims["n_frames"]  # one transformer step per frame
        other = model({**batch, "clip": torch.randn_like(batch["clip"])})["logits"]
    assert not torch.allclose(other, out["logits"])


# ---- an interrupted sweep resumes with what it had not finished -------------------------------------
class Interrupted(Exception):
    """Stands in for a kill while the second variant trains."""


def test_interrupted_sweep_resumes_with_the_unfinished_variant(tiny_store, tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = (tiny_store, "--variants", "no_adapter,flow_only", "--epochs", "1", "--out", out, *TINY)
    real = experiment.FOLD_RUNNERS["model"]

    def interrupt_second(exp, fs, store, variant, *rest):
        if variant.name == "flow_only":
            raise Interrupted
        return real(exp, fs, store, variant, *rest)

    monkeypatch.setitem(experiment.FOLD_RUNNERS, "model", interrupt_second)
    with pytest.raises(Interrupted):
        fgm_train(*args)
    first_ckpt = out / "no_adapter" / "seed0" / "stratified" / "checkpoint.pt"
    first_result = out / "no_adapter" / "result.json"
    assert first_ckpt.is_file() and first_result.is_file()
    assert not (out / "flow_only").exists() and not (out / "metrics.json").exists()
    before = (first_ckpt.stat().st_mtime_ns, first_result.stat().st_mtime_ns)

    monkeypatch.setitem(experiment.FOLD_RUNNERS, "model", real)
    trained = []
    monkeypatch.setitem(experiment.FOLD_RUNNERS, "model",
                        lambda exp, fs, store, variant, *rest: trained.append(variant.name) or real(exp, fs, store, variant, *rest))
    result = fgm_train(*args, "--resume")
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert trained == ["flow_only"]  # only the unfinished variant was run
    assert (first_ckpt.stat().st_mtime_ns, first_result.stat().st_mtime_ns) == before
    assert "no_adapter: finished in an earlier run" in text and "flow_only: finished" not in text
    assert "(no video decoded)" in text
    assert (out / "flow_only" / "seed0" / "stratified" / "checkpoint.pt").is_file()
    assert list(json.loads((out / "metrics.json").read_text())["variants"]) == ["no_adapter", "flow_only"]


def test_model_variants_are_the_trainer_kind():
    assert set(model_variants()) == {n for n in VARIANTS if get_variant(n).kind == "model"}
    assert "no_clip" in model_variants() and "zero_shot" not in model_variants()
    fold = make_folds(SplitSpec("stratified", val_fraction=0.5), np.repeat(np.arange(3), 2))[0]
    assert len(fold.val) == 3  # the tiny store's split every sweep test scores on
