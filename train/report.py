"""report.md, confusion-matrix PNGs and the rich table of an experiment's metrics.json summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.table import Table

from fgm_common.console import console

METRICS = ("accuracy", "recall", "f1", "auc")


def _pm(res: dict, key: str) -> str:
    m, s = res["mean"][key], res["std"][key]
    return "nan" if m != m else f"{100 * m:.2f} ± {100 * s:.2f}"


def _provenance_line(summary: dict) -> str:
    clip = summary["clip"]
    weights = "RANDOM weights (--pretrained none)" if summary["random_clip_weights"] else f"pretrained {clip.get('pretrained')}"
    split = summary["split"]
    return (f"Data: `{summary['store']}` ({summary['videos']} videos, {len(summary['classes'])} classes, dataset "
            f"`{summary['dataset']}`). Split: `{split['protocol']}` (val fraction {split['val_fraction']}), metrics on "
            f"validation videos only, pooled over folds, mean ± std over seeds {summary['seeds']}. "
            f"CLIP: {clip.get('model')} with {weights}.")


def confusion_png(confusion: list[list[int]], classes: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(classes), 1.0 + 0.6 * len(classes)))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > cm.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(summary: dict, out: Path) -> None:
    """report.md with the quality table, the cost table and per-class figures; confusion_<variant>.png."""
    bb = summary["backbone"]
    lines = ["# fgm-train report", "", _provenance_line(summary), "",
             "| variant | accuracy % | recall % | F1 % | AUC % |", "|---|---|---|---|---|"]
    for name, res in summary["variants"].items():
        lines.append(f"| {name} | " + " | ".join(_pm(res, k) for k in METRICS) + " |")
    lines += ["", f"Frozen CLIP image tower ({summary['clip'].get('model')}): {bb['backbone_params_M']:.2f} M params, "
              f"{bb['backbone_gflops_per_video']:.2f} GFLOPs per video; measured extraction "
              f"{summary['extract_ms_per_video']:.1f} ms per video.", "",
              "| variant | head params trainable (M) | head GFLOPs/video | inference ms/video (head) | "
              "inference ms/video (with extraction) | training s |", "|---|---|---|---|---|---|"]
    for name, res in summary["variants"].items():
        c = res["costs"]
        lines.append(f"| {name} | {c['head_params_trainable_M']:.3f} | {c['head_gflops_per_video']:.4f} | "
                     f"{c['infer_ms_head']:.2f} | {c['infer_ms_head'] + summary['extract_ms_per_video']:.1f} | "
                     f"{res['mean']['train_seconds']:.1f} |")
    for name, res in summary["variants"].items():
        first = next(iter(res["per_seed"].values()))
        png = out / f"confusion_{name}.png"
        confusion_png(first["confusion"], summary["classes"], png, f"{name} (first seed, validation)")
        lines += ["", f"## {name}", "", res.get("description", ""), "", f"![confusion]({png.name})", "",
                  "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for cls, pc in first["per_class"].items():
            lines.append(f"| {cls} | {pc['precision']:.2f} | {pc['recall']:.2f} | {pc['f1']:.2f} | {pc['support']} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")


def print_table(summary: dict) -> None:
    table = Table(title="validation metrics (%)", caption=_provenance_line(summary))
    for col in ("variant", "accuracy", "recall", "F1", "AUC", "train s", "infer ms"):
        table.add_column(col)
    for name, res in summary["variants"].items():
        table.add_row(name, *(_pm(res, k) for k in METRICS), f"{res['mean']['train_seconds']:.1f}",
                      f"{res['costs']['infer_ms_head']:.2f}")
    console.print(table)
