"""The paper-shaped tables of an experiment summary (metrics.json): quality (Tables 2/3), costs (Tables 1/4/6), bar chart.

`write_tables(summary, out)` writes table_quality.md/.csv, table_cost.md/.csv and sweep.png. Every
table carries its provenance: data, split, seeds, and whether the CLIP (and any other backbone)
weights were pretrained or random. The CSVs repeat it in columns, so each row stands alone.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from fgm_common.config import is_random_weights
from train.experiments.metrics import METRICS

METRIC_TITLES = {"accuracy": "accuracy", "recall": "recall", "f1": "F1", "auc": "AUC"}


def _nan(x) -> bool:
    return x is None or math.isnan(x)


def _fmt(x, digits: int) -> str:
    return "nan" if _nan(x) else f"{x:.{digits}f}"


def _small(x) -> str:
    """Four significant digits: a linear probe's 0.0001 M params must not print as 0.000."""
    return "nan" if _nan(x) else f"{x:.4g}"


def clip_weights(summary: dict) -> str:
    """'random' or 'pretrained <tag>' for the store's CLIP."""
    return "random" if summary["random_clip_weights"] else f"pretrained {summary['clip'].get('pretrained')}"


def _backbone_weights(summary: dict) -> dict[str, str]:
    """Extra backbones some variant used -> 'random' or 'pretrained <weights>' (identity, else the store config)."""
    used = {res.get("backbone", "clip") for res in summary["variants"].values()} - {"clip", "none"}
    configured = summary.get("extract_config", {}).get("backbone_weights", "?")
    out = {}
    for b in sorted(used):
        ident = summary.get("backbone_identity", {}).get(b, {})
        weights = ident.get("weights", configured)
        random = ident.get("random_weights", is_random_weights(weights))
        out[b] = "random" if random else f"pretrained {weights}"
    return out


def provenance_line(summary: dict) -> str:
    """One sentence: data, split, seeds, CLIP model and weights (and any extra backbone's weights)."""
    clip = summary["clip"]
    weights = "RANDOM weights (--pretrained none)" if summary["random_clip_weights"] else f"pretrained {clip.get('pretrained')}"
    extra = "".join(f" {b}: {'RANDOM weights' if w == 'random' else w}." for b, w in _backbone_weights(summary).items())
    return (f"Data: `{summary['store']}` ({summary['videos']} videos, {len(summary['classes'])} classes, dataset "
            f"`{summary['dataset']}`). Split: {split_phrase(summary)}; metrics on validation videos only, "
            f"pooled over folds, mean ± std over seeds {summary['seeds']}. CLIP: {clip.get('model')} with {weights}.{extra}")


def split_phrase(summary: dict) -> str:
    """How validation videos were chosen, from the folds actually run (so `auto` shows what it became)."""
    split = summary["split"]
    folds = next((s["folds"] for r in summary["variants"].values() for s in r.get("per_seed", {}).values()
                  if s.get("folds")), [])
    kind = folds[0].split("-")[0] if len(folds) == 1 else ""  # few-/zero-shot folds add a "-..." suffix
    if kind in ("stratified", "group"):  # a single random hold-out
        return f"`{kind}` hold-out (--split {split['protocol']}), val fraction {split['val_fraction']}"
    shown = ", ".join(folds[:4]) + (", ..." if len(folds) > 4 else "")
    return f"`{split['protocol']}`, {len(folds)} fold{'s' if len(folds) != 1 else ''} ({shown})"


def _provenance_columns(summary: dict) -> dict:
    extra = _backbone_weights(summary)
    return {"dataset": summary["dataset"], "split": summary["split"]["protocol"],
            "seeds": " ".join(str(s) for s in summary["seeds"]), "clip_weights": clip_weights(summary),
            "other_backbone_weights": " ".join(f"{b}={w}" for b, w in extra.items())}


# ---- rows ------------------------------------------------------------------------------------------
STREAMS = ("motion", "visual")


def stream_accuracy(res: dict, stream: str) -> tuple[float, float]:
    """A variant's accuracy from one input stream alone (mean, std over seeds), NaN where it has no such figure.

    From that stream's own head (train/parts/heads.py) when the model has one; a variant that reads only
    this stream is its own figure; a variant that does not read it has none.
    """
    if stream in res.get("heads", {}):
        head = res["heads"][stream]
        return head["mean"], head["std"]
    if tuple(res.get("streams", STREAMS)) == (stream,):
        return res["mean"]["accuracy"], res["std"]["accuracy"]
    return float("nan"), float("nan")


def quality_rows(summary: dict) -> list[dict]:
    """Per variant: mean and std of each metric in %, each stream's own accuracy in %, plus provenance columns."""
    rows = []
    for name, res in summary["variants"].items():
        row = {"variant": name, "kind": res.get("kind", "model")}
        for k in METRICS:
            row[f"{k}_mean_pct"] = 100 * res["mean"][k]
            row[f"{k}_std_pct"] = 100 * res["std"][k]
        for stream in STREAMS:
            mean, std = stream_accuracy(res, stream)
            row[f"{stream}_stream_accuracy_mean_pct"], row[f"{stream}_stream_accuracy_std_pct"] = 100 * mean, 100 * std
        row["n_seeds"] = len(res["per_seed"])
        rows.append(row | _provenance_columns(summary))
    return rows


def cost_rows(summary: dict) -> list[dict]:
    """Per variant: trainable head params, GFLOPs/video (head, with backbone), inference ms (head, with extraction), training s."""
    backbones = summary.get("backbones", {"clip": summary["backbone"]})
    rows = []
    for name, res in summary["variants"].items():
        c, backbone = res["costs"], res.get("backbone", "clip")
        bb = backbones.get(backbone, {}).get("backbone_gflops_per_video", float("nan"))
        rows.append({
            "variant": name, "kind": res.get("kind", "model"), "backbone": backbone,
            "head_params_trainable_M": c["head_params_trainable_M"],
            "head_gflops_per_video": c["head_gflops_per_video"],
            "gflops_per_video_with_backbone": c["head_gflops_per_video"] + bb,
            "infer_ms_head": c["infer_ms_head"],
            "infer_ms_with_extraction": c["infer_ms_head"] + summary["extract_ms_per_video"],
            "train_s_mean": res["mean"]["train_seconds"], "train_s_std": res["std"]["train_seconds"],
        } | _provenance_columns(summary))
    return rows


# ---- Markdown ----------------------------------------------------------------------------------------
def pm(mean: float, std: float, n_seeds: int) -> str:
    """'mean ± std', or the mean alone from one seed (a spread needs two); '—' for no figure."""
    if _nan(mean):
        return "—"
    return f"{mean:.2f}" if n_seeds < 2 else f"{mean:.2f} ± {std:.2f}"


def quality_markdown(summary: dict, provenance: bool = True) -> str:
    """Tables 2/3 style: accuracy, recall, F1, AUC (%) over seeds, each stream's own accuracy, then the provenance."""
    lines = ["| variant | " + " | ".join(f"{METRIC_TITLES[k]} %" for k in METRICS)
             + " | motion stream alone, accuracy % | visual stream alone, accuracy % |",
             "|---|" + "---|" * (len(METRICS) + len(STREAMS))]
    for r in quality_rows(summary):
        cells = [pm(r[f"{k}_mean_pct"], r[f"{k}_std_pct"], r["n_seeds"]) for k in METRICS]
        cells += [pm(r[f"{s}_stream_accuracy_mean_pct"], r[f"{s}_stream_accuracy_std_pct"], r["n_seeds"])
                  for s in STREAMS]
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + " |")
    note = ("Stream columns: the accuracy of the variant's own per-stream head on the same validation videos, "
            "or, for a variant that reads one stream only, its own accuracy; '—' where there is none.")
    return "\n".join(lines + ["", note] + (["", provenance_line(summary)] if provenance else [])) + "\n"


def cost_markdown(summary: dict, provenance: bool = True) -> str:
    """Tables 1/4/6 style: params, GFLOPs, inference ms, training s per variant, then what each column counts."""
    header = ("| variant | backbone | head params trainable (M) | head GFLOPs/video | GFLOPs/video with backbone | "
              "inference ms/video (head) | inference ms/video (with extraction) | training s |")
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for r in cost_rows(summary):
        lines.append(f"| {r['variant']} | {r['backbone']} | {_small(r['head_params_trainable_M'])} | "
                     f"{_small(r['head_gflops_per_video'])} | {_small(r['gflops_per_video_with_backbone'])} | "
                     f"{_fmt(r['infer_ms_head'], 2)} | {_fmt(r['infer_ms_with_extraction'], 1)} | "
                     f"{_fmt(r['train_s_mean'], 1)} |")
    backbones = summary.get("backbones", {"clip": summary["backbone"]})
    frozen = "; ".join(f"{b}: {v['backbone_params_M']:.2f} M params, {v['backbone_gflops_per_video']:.2f} GFLOPs"
                       for b, v in backbones.items() if b != "none")
    backbone_note = (
        f"Frozen image backbones per video ({summary.get('n_frames', '?')} frames): {frozen or 'none'}. "
        "`none`: no image backbone (flow only). Optical flow and decoding are not counted in GFLOPs; they are in "
        f"the measured extraction time, {_fmt(summary['extract_ms_per_video'], 1)} ms per video for the whole of "
        "stage one (decode, flow, CLIP and any extra backbone), added to every variant alike.")
    head_note = (
        "Head: what is trained or fitted over the stored features. GFLOPs count matrix products and convolutions "
        "(torch FlopCounterMode; analytic C x D products for the linear probe and zero-shot). zero_shot fits "
        "nothing (0 params, 0 s); linear_probe counts its logistic-regression weights and fit time. Inference ms: "
        "batch 1, features already in memory. Training s: summed over folds, mean over seeds. With token adapters "
        "the head re-runs CLIP's last vision block, so 'with backbone' counts that block twice.")
    tail = ["", provenance_line(summary)] if provenance else []
    return "\n".join([*lines, "", backbone_note, "", head_note, *tail]) + "\n"


# ---- files -------------------------------------------------------------------------------------------
def _write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]) if rows else ["variant"])
        writer.writeheader()
        writer.writerows({k: ("nan" if isinstance(v, float) and _nan(v) else v) for k, v in r.items()} for r in rows)


def sweep_png(summary: dict, path: Path) -> None:
    """Grouped bars: the four metrics (%) per variant, std over seeds as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = quality_rows(summary)
    x = np.arange(len(rows))
    width = 0.8 / len(METRICS)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.5))
    for i, k in enumerate(METRICS):
        mean = [r[f"{k}_mean_pct"] for r in rows]
        std = [r[f"{k}_std_pct"] for r in rows]
        ax.bar(x + (i - (len(METRICS) - 1) / 2) * width, mean, width, yerr=std, capsize=2, label=METRIC_TITLES[k])
    ax.set_xticks(x, [r["variant"] for r in rows], rotation=30, ha="right")
    ax.set_ylabel("% (validation, mean ± std over seeds)")
    ax.set_ylim(0, 105)
    ax.legend(ncols=len(METRICS), fontsize="small", loc="upper center", bbox_to_anchor=(0.5, 1.13))
    ax.set_title(f"{summary['dataset']}, split {summary['split']['protocol']}, seeds {summary['seeds']}, "
                 f"CLIP {clip_weights(summary)}", fontsize="small", pad=24)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_tables(summary: dict, out: Path) -> dict[str, Path]:
    """table_quality.md/.csv, table_cost.md/.csv and sweep.png under `out`; returns them by name."""
    out = Path(out)
    paths = {name: out / name for name in ("table_quality.md", "table_quality.csv", "table_cost.md",
                                           "table_cost.csv", "sweep.png")}
    paths["table_quality.md"].write_text(quality_markdown(summary))
    paths["table_cost.md"].write_text(cost_markdown(summary))
    _write_csv(quality_rows(summary), paths["table_quality.csv"])
    _write_csv(cost_rows(summary), paths["table_cost.csv"])
    sweep_png(summary, paths["sweep.png"])
    return paths
