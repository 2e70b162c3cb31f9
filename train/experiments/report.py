"""report.md (with the quality and cost tables of train.experiments.tables), confusion-matrix PNGs and the rich table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.table import Table

from fgm_common.console import console
from train.experiments.curves import write_curves
from train.experiments.metrics import METRICS
from train.experiments.tables import STREAMS, cost_markdown, pm, provenance_line, quality_markdown, stream_accuracy, write_tables



def _pm(res: dict, key: str) -> str:
    return pm(100 * res["mean"][key], 100 * res["std"][key], len(res["per_seed"]))


def _stream(res: dict, stream: str) -> str:
    mean, std = stream_accuracy(res, stream)
    return pm(100 * mean, 100 * std, len(res["per_seed"]))


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
    """report.md: the quality table, the cost table, per-class figures; confusion_<variant>.png; the table files.

    The two tables are those of train.experiments.tables (also written as table_*.md/.csv, with sweep.png);
    each trained variant's loss curves are train.experiments.curves's curves_<variant>.png.
    """
    write_tables(summary, out)
    lines = ["# fgm-train report", "", provenance_line(summary), "", "## Validation quality", "",
             quality_markdown(summary, provenance=False), "![metrics per variant](sweep.png)", "", "## Costs", "",
             cost_markdown(summary, provenance=False)]
    for name, res in summary["variants"].items():
        first = next(iter(res["per_seed"].values()))
        png = out / f"confusion_{name}.png"
        confusion_png(first["confusion"], summary["classes"], png, f"{name} (first seed, validation)")
        lines += ["", f"## {name}", "", res.get("description", ""), "", f"![confusion]({png.name})", ""]
        curves = write_curves(res, out, name)
        if curves is not None:
            lines += [f"![loss and validation accuracy per epoch]({curves.name})", ""]
        lines += ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for cls, pc in first["per_class"].items():
            lines.append(f"| {cls} | {pc['precision']:.2f} | {pc['recall']:.2f} | {pc['f1']:.2f} | {pc['support']} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")


def print_table(summary: dict) -> None:
    table = Table(title="validation metrics (%)", caption=provenance_line(summary))
    for col in ("variant", "accuracy", "recall", "F1", "AUC", "motion alone", "visual alone", "train s", "infer ms"):
        table.add_column(col)
    for name, res in summary["variants"].items():
        table.add_row(name, *(_pm(res, k) for k in METRICS), *(_stream(res, s) for s in STREAMS),
                      f"{res['mean']['train_seconds']:.1f}", f"{res['costs']['infer_ms_head']:.2f}")
    console.print(table)
