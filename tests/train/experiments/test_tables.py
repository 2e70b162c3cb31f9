"""Paper-shaped tables from a fake metrics summary: Markdown rows, CSV read back, provenance, bar chart, report.md."""

from __future__ import annotations

import copy
import csv
import math

import pytest

from train.experiments.report import write_report
from train.experiments.tables import cost_markdown, quality_markdown, write_tables

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def variant(mean: dict, std: dict, costs: dict, kind: str = "model", backbone: str = "clip", seeds=(0, 1),
            folds=("group",)) -> dict:
    per_class = {c: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1} for c in ("a", "b")}
    return {"kind": kind, "backbone": backbone, "description": f"a {kind}",
            "mean": mean, "std": std, "costs": costs,
            "per_seed": {str(s): {"confusion": [[1, 0], [0, 1]], "per_class": per_class, "folds": list(folds)}
                         for s in seeds}}


@pytest.fixture
def summary() -> dict:
    """Two variants over two seeds; numbers chosen so every formatted cell is known in advance."""
    full = variant(
        mean={"accuracy": 0.75, "recall": 0.5, "f1": 0.625, "auc": 0.9, "train_seconds": 12.0},
        std={"accuracy": 0.05, "recall": 0.0, "f1": 0.0125, "auc": 0.01, "train_seconds": 1.0},
        costs={"head_params_trainable_M": 1.5, "head_params_total_M": 2.0, "head_gflops_per_video": 0.25,
               "infer_ms_head": 3.0})
    probe = variant(
        mean={"accuracy": 0.5, "recall": 0.5, "f1": 0.5, "auc": float("nan"), "train_seconds": 0.5},
        std={"accuracy": 0.0, "recall": 0.0, "f1": 0.0, "auc": float("nan"), "train_seconds": 0.0},
        costs={"head_params_trainable_M": 0.000099, "head_params_total_M": 0.000099, "head_gflops_per_video": 1.92e-7,
               "infer_ms_head": 0.25}, kind="linear_probe")
    return {
        "store": "cache/kth", "dataset": "kth", "videos": 40, "classes": ["a", "b"], "seeds": [0, 1],
        "clip": {"model": "ViT-B-32", "pretrained": "none", "random_weights": True}, "random_clip_weights": True,
        "split": {"protocol": "group", "val_fraction": 0.3}, "n_frames": 8,
        "backbone": {"backbone_params_M": 88.0, "backbone_gflops_per_video": 70.0},
        "backbones": {"clip": {"backbone_params_M": 88.0, "backbone_gflops_per_video": 70.0}},
        "extract_ms_per_video": 1000.0,
        "variants": {"full": full, "linear_probe": probe},
    }


def read_csv(path) -> dict[str, dict]:
    with path.open(newline="") as f:
        return {row["variant"]: row for row in csv.DictReader(f)}


def test_quality_markdown_rows_and_provenance(summary):
    md = quality_markdown(summary)
    assert "| variant | accuracy % | recall % | F1 % | AUC % | motion stream alone" in md
    assert "| full | 75.00 ± 5.00 | 50.00 ± 0.00 | 62.50 ± 1.25 | 90.00 ± 1.00 | — | — |" in md
    assert "| linear_probe | 50.00 ± 0.00 | 50.00 ± 0.00 | 50.00 ± 0.00 | — | — | — |" in md
    # data, split, seeds and the CLIP weights are stated under the table
    assert "cache/kth" in md and "`group` hold-out" in md and "val fraction 0.3" in md
    assert "seeds [0, 1]" in md and "RANDOM weights" in md


def test_each_stream_alone_is_shown_beside_the_fused_result(summary, tmp_path):
    summary["variants"]["full"]["heads"] = {"fused": {"mean": 0.7, "std": 0.1}, "motion": {"mean": 0.6, "std": 0.02},
                                            "visual": {"mean": 0.3, "std": 0.0}}
    summary["variants"]["linear_probe"]["streams"] = ["visual"]  # one stream: its own accuracy is that stream's
    md = quality_markdown(summary)
    assert "| full | 75.00 ± 5.00 | 50.00 ± 0.00 | 62.50 ± 1.25 | 90.00 ± 1.00 | 60.00 ± 2.00 | 30.00 ± 0.00 |" in md
    assert "| linear_probe | 50.00 ± 0.00 | 50.00 ± 0.00 | 50.00 ± 0.00 | — | — | 50.00 ± 0.00 |" in md
    rows = read_csv(write_tables(summary, tmp_path)["table_quality.csv"])
    assert float(rows["full"]["motion_stream_accuracy_mean_pct"]) == pytest.approx(60.0)
    assert rows["linear_probe"]["motion_stream_accuracy_mean_pct"] == "nan"


def test_one_seed_prints_no_spread(summary):
    for res in summary["variants"].values():
        res["per_seed"] = {"0": res["per_seed"]["0"]}
    md = quality_markdown(summary)
    assert "| full | 75.00 | 50.00 | 62.50 | 90.00 | — | — |" in md and "± 0.00" not in md.split("Stream columns")[0]


def test_provenance_names_the_folds_of_a_multi_fold_protocol(summary):
    summary["split"] = {"protocol": "logo", "val_fraction": 0.3}
    for res in summary["variants"].values():
        for seed in res["per_seed"].values():
            seed["folds"] = ["leave-out-p1", "leave-out-p2", "leave-out-p3"]
    md = quality_markdown(summary)
    assert "`logo`, 3 folds (leave-out-p1, leave-out-p2, leave-out-p3)" in md
    assert "val fraction" not in md  # a leave-one-out protocol has no validation fraction


def test_cost_markdown_rows(summary):
    md = cost_markdown(summary)
    # head 0.25 + CLIP 70 GFLOPs; head 3 ms + extraction 1000 ms
    assert "| full | clip | 1.5 | 0.25 | 70.25 | 3.00 | 1003.0 | 12.0 |" in md
    assert "| linear_probe | clip | 9.9e-05 | 1.92e-07 | 70 | 0.25 | 1000.2 | 0.5 |" in md  # small numbers stay visible
    assert "88.00 M params, 70.00 GFLOPs" in md and "(8 frames)" in md
    assert "RANDOM weights" in md and "seeds [0, 1]" in md


def test_csv_files_read_back(summary, tmp_path):
    paths = write_tables(summary, tmp_path)
    assert sorted(p.name for p in paths.values()) == sorted(
        ["table_quality.md", "table_quality.csv", "table_cost.md", "table_cost.csv", "sweep.png"])
    quality = read_csv(tmp_path / "table_quality.csv")
    assert list(quality) == ["full", "linear_probe"]
    full = quality["full"]
    assert float(full["accuracy_mean_pct"]) == pytest.approx(75.0)
    assert float(full["f1_std_pct"]) == pytest.approx(1.25)
    assert math.isnan(float(quality["linear_probe"]["auc_mean_pct"]))
    assert (full["n_seeds"], full["dataset"], full["split"], full["seeds"], full["clip_weights"]) == \
        ("2", "kth", "group", "0 1", "random")
    assert quality["linear_probe"]["kind"] == "linear_probe"

    cost = read_csv(tmp_path / "table_cost.csv")
    assert float(cost["full"]["gflops_per_video_with_backbone"]) == pytest.approx(70.25)
    assert float(cost["full"]["infer_ms_with_extraction"]) == pytest.approx(1003.0)
    assert float(cost["linear_probe"]["head_params_trainable_M"]) == pytest.approx(0.000099)
    assert float(cost["full"]["train_s_std"]) == pytest.approx(1.0)
    assert (tmp_path / "sweep.png").read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "table_quality.md").read_text() == quality_markdown(summary)


def test_pretrained_weights_and_an_extra_backbone_are_named(summary):
    s = copy.deepcopy(summary)
    s["random_clip_weights"] = False
    s["clip"].update(pretrained="openai", random_weights=False)
    s["variants"]["no_clip"] = dict(copy.deepcopy(s["variants"]["full"]), backbone="resnet50")
    s["backbones"]["resnet50"] = {"backbone_params_M": 23.5, "backbone_gflops_per_video": 65.0}
    s["backbone_identity"] = {"resnet50": {"weights": "IMAGENET1K_V2", "random_weights": False}}
    md = quality_markdown(s)
    assert "pretrained openai" in md and "RANDOM" not in md and "resnet50: pretrained IMAGENET1K_V2" in md
    assert "| no_clip | resnet50 | 1.5 | 0.25 | 65.25 |" in cost_markdown(s)  # its own backbone, not CLIP's


def test_a_variant_without_its_backbone_costed_gives_nan(summary):
    summary["variants"]["full"]["backbone"] = "resnet50"  # backbones has no resnet50 entry
    assert "| full | resnet50 | 1.5 | 0.25 | nan |" in cost_markdown(summary)


def test_report_holds_both_tables(summary, tmp_path):
    write_report(summary, tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert quality_markdown(summary, provenance=False) in report and cost_markdown(summary, provenance=False) in report
    assert report.count("Data: `cache/kth`") == 1  # the provenance is stated once, under the title
    assert "![metrics per variant](sweep.png)" in report and (tmp_path / "sweep.png").is_file()
    for name in summary["variants"]:
        assert (tmp_path / f"confusion_{name}.png").read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "table_cost.csv").is_file()
