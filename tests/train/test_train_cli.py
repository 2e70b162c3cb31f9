"""`fgm-train` end to end on tiny stores: metrics.json, costs, report, seeds, resume, refusals, logo over a CSV store."""

from __future__ import annotations

import csv
import json
import math
import shutil
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from train.cli import app
from train.experiments.variants import VARIANTS

METRICS = ("accuracy", "recall", "f1", "auc")
# 2 videos per class: a 50% validation share is the smallest that holds one of each class
TINY = ("--hidden", "32", "--val-fraction", "0.5", "--device", "cpu", "--quiet")


def flat(text: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(text.split())


def fgm_train(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a crash, not an exit code: show its traceback
    return result


def outer_checkpoints(variant_dir: Path) -> list[Path]:
    """The checkpoints of the models trained on whole folds, not the inner-split models of the head blend."""
    return [p for p in variant_dir.rglob("checkpoint.pt") if not p.parent.name.startswith("inner")]


def mtimes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*") if p.suffix in (".pt", ".json")
            and p.name != "metrics.json"}


@pytest.fixture(scope="module")
def main_run(tiny_store, tmp_path_factory):
    """full and no_motion, 2 epochs, seed 0, over the tiny token store."""
    out = tmp_path_factory.mktemp("train") / "run"
    args = (tiny_store, "--epochs", "2", "--variants", "full,no_motion", "--out", out, *TINY)
    result = fgm_train(*args)
    return result, out, args


def test_run_writes_metrics_costs_and_report(main_run):
    result, out, _ = main_run
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "metrics.json").read_text())
    assert list(summary["variants"]) == ["full", "no_motion"]
    assert summary["random_clip_weights"] is True  # --pretrained none store
    assert summary["videos"] == 6 and len(summary["classes"]) == 3
    for name, res in summary["variants"].items():
        for key in METRICS:
            assert 0.0 <= res["mean"][key] <= 1.0, (name, key)
            assert res["std"][key] == 0.0  # one seed
        seed0 = res["per_seed"]["0"]
        assert seed0["n"] == 3 and sum(map(sum, seed0["confusion"])) == 3  # validation videos only
        assert seed0["folds"] == ["stratified"]
        assert [h["epoch"] for h in res["history"]["seed0/stratified"]] == [1, 2]
        costs = res["costs"]
        assert costs["head_params_trainable_M"] > 0 and costs["head_params_total_M"] >= costs["head_params_trainable_M"]
        assert costs["head_gflops_per_video"] > 0 and costs["infer_ms_head"] > 0
        assert (out / name / "seed0" / "stratified" / "checkpoint.pt").is_file()
        assert (out / f"confusion_{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the frozen backbone is costed apart from the trained head
    backbone = summary["backbone"]
    assert backbone["backbone_params_M"] > 0 and backbone["backbone_gflops_per_video"] > 0
    full, no_motion = (summary["variants"][v]["costs"] for v in ("full", "no_motion"))
    assert full["head_params_trainable_M"] != no_motion["head_params_trainable_M"]
    report = (out / "report.md").read_text()
    assert "RANDOM" in report and "confusion_full.png" in report and "| no_motion |" in report
    assert "metrics.json" in flat(result.output)


def test_loss_curves_beside_the_report(main_run):
    import matplotlib.image

    result, out, _ = main_run
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    summary = json.loads((out / "metrics.json").read_text())
    for name in ("full", "no_motion"):
        png = out / f"curves_{name}.png"
        assert f"]({png.name})" in report
        height, width = matplotlib.image.imread(png).shape[:2]
        assert height >= 200 and width >= 600 and png.stat().st_size > 10_000
        [record, _] = summary["variants"][name]["history"]["seed0/stratified"]
        assert 0.0 <= record["val_acc_fused"] <= 1.0  # recorded per epoch for the picture


def test_tensorboard_logs_every_run_per_epoch(tiny_store, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from train.fitting.losses import LOSS_TERMS

    out, tb = tmp_path / "run", tmp_path / "tb"
    result = fgm_train(tiny_store, "--epochs", "2", "--variants", "no_adapter", "--out", out, "--tensorboard", tb,
                       *TINY)
    assert result.exit_code == 0, result.output
    history = json.loads((out / "metrics.json").read_text())["variants"]["no_adapter"]["history"]
    events = EventAccumulator(str(tb / "no_adapter" / "seed0" / "stratified")).Reload()
    tags = set(events.Tags()["scalars"])
    assert {f"loss/{k}" for k in ("total", *LOSS_TERMS)} | {"lr", "val_accuracy/fused"} <= tags
    for key in ("total", "ce"):
        logged = [(e.step, e.value) for e in events.Scalars(f"loss/{key}")]
        assert logged == [(r["epoch"], pytest.approx(r[key])) for r in history["seed0/stratified"]]
    logged = [e.value for e in events.Scalars("val_accuracy/fused")]
    assert logged == [pytest.approx(r["val_acc_fused"]) for r in history["seed0/stratified"]]


def test_tensorboard_missing_exits_2_before_training(tiny_store, tmp_path, monkeypatch):
    import sys

    for name in ("tensorboard", "torch.utils.tensorboard"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    result = fgm_train(tiny_store, "--epochs", "1", "--out", tmp_path / "run", "--tensorboard", tmp_path / "tb", *TINY)
    assert result.exit_code == 2
    assert "pip install 'fgm[tensorboard]'" in flat(result.output)
    assert not (tmp_path / "run").exists()


def test_resume_after_a_finished_run_reruns_nothing(main_run):
    result, out, args = main_run
    assert result.exit_code == 0, result.output
    before = mtimes(out)
    assert sum(k.endswith("stratified/checkpoint.pt") for k in before) == 2
    first = json.loads((out / "metrics.json").read_text())["variants"]
    again = fgm_train(*args, "--resume")
    assert again.exit_code == 0, again.output
    assert mtimes(out) == before  # no checkpoint or result rewritten
    assert flat(again.output).count("finished in an earlier run") == 2
    assert json.loads((out / "metrics.json").read_text())["variants"] == first


def test_resume_with_other_settings_is_refused(main_run):
    result, out, args = main_run
    assert result.exit_code == 0, result.output
    before = mtimes(out)
    again = fgm_train(*args, "--epochs", "3", "--resume")  # the last --epochs wins
    assert again.exit_code == 2
    assert "other settings" in flat(again.output)  # not the 2-epoch figures reported as 3-epoch ones
    assert mtimes(out) == before


def test_seeds_give_mean_and_std_and_resume_adds_a_seed(tiny_store, tmp_path):
    out = tmp_path / "run"
    args = (tiny_store, "--epochs", "1", "--variants", "no_adapter", "--out", out, *TINY)
    assert fgm_train(*args, "--seeds", "0").exit_code == 0
    seed0 = out / "no_adapter" / "seed0" / "stratified" / "checkpoint.pt"
    before = seed0.stat().st_mtime_ns
    result = fgm_train(*args, "--seeds", "0,1", "--resume")
    assert result.exit_code == 0, result.output
    assert seed0.stat().st_mtime_ns == before  # seed 0 was finished: not trained again
    assert (out / "no_adapter" / "seed1" / "stratified" / "checkpoint.pt").is_file()
    res = json.loads((out / "metrics.json").read_text())["variants"]["no_adapter"]
    assert sorted(res["per_seed"]) == ["0", "1"]
    assert sorted(res["history"]) == ["seed0/stratified", "seed1/stratified"]
    for key in METRICS:
        values = [res["per_seed"][s][key] for s in ("0", "1")]
        assert res["mean"][key] == pytest.approx(statistics.mean(values))
        assert res["std"][key] == pytest.approx(statistics.stdev(values))


@pytest.mark.parametrize("what", ["missing", "not_a_store"])
def test_a_path_that_is_not_a_store_exits_2(what, tiny_videos, tmp_path):
    store = tmp_path / "nothing" if what == "missing" else tiny_videos
    result = fgm_train(store, "--out", tmp_path / "run", "--epochs", "1")
    assert result.exit_code == 2
    assert "fgm-extract" in flat(result.output)  # says how to make one
    assert not (tmp_path / "run").exists()


def test_unknown_variant_exits_2_and_lists_choices(tiny_store, tmp_path):
    result = fgm_train(tiny_store, "--variants", "full,bogus", "--out", tmp_path / "run", "--epochs", "1")
    assert result.exit_code == 2
    text = flat(result.output)
    assert "bogus" in text and all(name in text for name in VARIANTS)


def test_list_variants_needs_no_store():
    result = fgm_train("--list-variants")
    assert result.exit_code == 0, result.output
    lines = result.output
    for name in VARIANTS:
        assert name in lines and VARIANTS[name]().description.split()[0] in lines


def test_no_store_and_no_list_exits_2():
    result = fgm_train()
    assert result.exit_code == 2 and "STORE" in result.output


@pytest.fixture(scope="module")
def csv_store(tiny_videos, tmp_path_factory, run_extract_cli) -> str:
    """tiny_videos through a CSV manifest with a group column: clip i of every class is actor p<i>."""
    root = tmp_path_factory.mktemp("csv")
    videos = shutil.copytree(tiny_videos, root / "videos")
    rows = [{"path": p.relative_to(videos).as_posix(), "label": p.parent.name, "group": f"p{int(p.stem[-1])}"}
            for p in sorted(videos.rglob("*.mp4"))]
    assert len(rows) == 6 and {r["group"] for r in rows} == {"p0", "p1"}
    manifest = videos / "clips.csv"
    with manifest.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["path", "label", "group"])
        writer.writeheader()
        writer.writerows(rows)
    result = run_extract_cli(manifest, root / "store")
    assert result.exit_code == 0, result.output
    return str(root / "store")


def test_logo_over_a_csv_store_with_groups(csv_store, tmp_path):
    out = tmp_path / "run"
    result = fgm_train(csv_store, "--dataset", "csv", "--split", "logo", "--variants", "no_adapter",
                       "--epochs", "1", "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["dataset"] == "csv" and summary["split"]["protocol"] == "logo"
    seed0 = summary["variants"]["no_adapter"]["per_seed"]["0"]
    assert seed0["folds"] == ["leave-out-p0", "leave-out-p1"]
    assert seed0["n"] == 6  # every video validated once, pooled over the two folds
    for fold in ("leave-out-p0", "leave-out-p1"):
        assert (out / "no_adapter" / "seed0" / fold / "checkpoint.pt").is_file()
    assert not math.isnan(seed0["auc"])


def test_logo_without_groups_exits_2(tiny_store, tmp_path):
    result = fgm_train(tiny_store, "--split", "logo", "--variants", "no_adapter", "--epochs", "1",
                       "--out", tmp_path / "run", *TINY)
    assert result.exit_code == 2
    assert "group" in flat(result.output)


def test_few_shot_trains_on_k_videos_per_class(tiny_store, tmp_path):
    import torch

    out = tmp_path / "fewshot"
    result = fgm_train(tiny_store, "--out", out, "--epochs", "1", "--variants", "no_adapter", "--shots", "1",
                       "--val-fraction", "0.5", "--hidden", "32", "--device", "cpu", "--quiet")
    assert result.exit_code == 0, result.output
    [ckpt] = outer_checkpoints(out / "no_adapter")
    c = torch.load(ckpt, weights_only=True)
    assert "1shot" in c["fold"]["name"] and len(c["fold"]["train"]) == 3  # one per class, 3 classes
    assert json.loads((out / "metrics.json").read_text())["variants"]["no_adapter"]["per_seed"]["0"]["n"] == 3


def test_unseen_classes_are_held_out_of_training_and_alone_in_validation(tiny_store, tmp_path):
    import torch

    from fgm_common.datasets import get_dataset
    from fgm_common.store import FeatureStore
    from train.fitting.data import load_features

    fs = load_features(FeatureStore.open(tiny_store), get_dataset("folder"))
    held = fs.classes[1:]
    out = tmp_path / "zeroshot"
    result = fgm_train(tiny_store, "--out", out, "--epochs", "1", "--variants", "no_adapter,zero_shot",
                       "--unseen-classes", ",".join(held), *TINY)
    assert result.exit_code == 0, result.output
    [ckpt] = outer_checkpoints(out / "no_adapter")
    train_idx = torch.load(ckpt, weights_only=True)["fold"]["train"]
    assert {fs.classes[fs.labels[i]] for i in train_idx} == {fs.classes[0]}
    for name in ("no_adapter", "zero_shot"):
        m = json.loads((out / "metrics.json").read_text())["variants"][name]["per_seed"]["0"]
        assert set(m["per_class"]) == set(held) and len(m["confusion"]) == 2 and m["n"] == 2
    bad = fgm_train(tiny_store, "--out", tmp_path / "bad", "--epochs", "1", "--unseen-classes", "nope", *TINY)
    assert bad.exit_code == 2 and "nope" in flat(bad.output)


def test_real_clips_ud810_person_split_end_to_end(shared_data, tmp_path, run_extract_cli):
    """fgm-extract ../shared/data/ud810_ps7 then fgm-train --dataset ud810: leave one person out."""
    store = tmp_path / "ud810.zarr"
    assert run_extract_cli(shared_data / "ud810_ps7", store, frames=4).exit_code == 0
    out = tmp_path / "run"
    result = fgm_train(store, "--dataset", "ud810", "--split", "logo", "--out", out, "--epochs", "1",
                       "--variants", "no_adapter", "--hidden", "32", "--device", "cpu", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "metrics.json").read_text())
    seed = summary["variants"]["no_adapter"]["per_seed"]["0"]
    assert summary["videos"] == 27 and len(summary["classes"]) == 3 and summary["random_clip_weights"]
    assert sorted(seed["folds"]) == ["leave-out-person1", "leave-out-person2", "leave-out-person3"]
    assert seed["n"] == 27  # every video validated once, by a model that never saw its person


def test_no_clip_adapters_builds_neither_token_tail_nor_text_context(tiny_store, tmp_path):
    import torch

    out = tmp_path / "plain"
    result = fgm_train(tiny_store, "--out", out, "--epochs", "1", "--variants", "full", "--no-clip-adapters", *TINY)
    assert result.exit_code == 0, result.output
    [ckpt] = outer_checkpoints(out / "full")
    keys = torch.load(ckpt, weights_only=True)["model"].keys()
    assert not any(k.startswith(("token_tail.", "prompt_learner.")) for k in keys)
    assert any(k.startswith("adapter.") for k in keys)  # the frame-embedding adapter instead
