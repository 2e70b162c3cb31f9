"""curves_<variant>.png beside report.md: each loss term per epoch and, where recorded, validation accuracy per epoch.

One line per quantity: the mean over the variant's training runs (seeds x folds, the models trained
on whole folds, as in metrics.json's history), with the runs' range (min to max) shaded. Runs of
one variant differ only by seed and fold, so the mean is the typical curve and the band shows how
far any run strays; one line per run would be unreadable over 3 seeds x 5 folds, and each run's
numbers stay in metrics.json (and in TensorBoard with --tensorboard). A term that is 0 in every run
and epoch (switched off in this variant) gets no panel; the title names it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from train.experiments.monitor import head_of, loss_keys, val_keys

PANEL_COLUMNS = 4


def png_name(variant: str) -> str:
    return f"curves_{variant}.png"


def per_epoch(history: dict[str, list[dict]], key: str) -> np.ndarray:
    """(runs, epochs) of `key` from {run: [epoch record]}, by each record's epoch; NaN where a run lacks it."""
    runs = list(history.values())
    epochs = max((int(r["epoch"]) for recs in runs for r in recs), default=0)
    out = np.full((len(runs), epochs), np.nan)
    for i, recs in enumerate(runs):
        for r in recs:
            if key in r:
                out[i, int(r["epoch"]) - 1] = r[key]
    return out


def always_zero(series: dict[str, np.ndarray]) -> list[str]:
    """The keys whose (runs, epochs) values are 0 wherever recorded: terms switched off in the variant."""
    return [k for k, v in series.items() if not np.any(np.nan_to_num(v))]


def _band(ax, values: np.ndarray, label: str | None = None, scale: float = 1.0) -> None:
    """Mean line and min-max band over runs of values (runs, epochs); epochs no run recorded are left out."""
    seen = ~np.isnan(values).all(axis=0)  # (epochs,)
    x = np.arange(1, values.shape[1] + 1)[seen]
    v = scale * values[:, seen]
    filled = np.where(np.isnan(v), 0.0, v)
    count = (~np.isnan(v)).sum(axis=0)
    mean = filled.sum(axis=0) / count
    line = ax.plot(x, mean, marker="o" if len(x) <= 12 else None, markersize=3, label=label)[0]
    if len(values) > 1:
        low, high = np.nanmin(v, axis=0), np.nanmax(v, axis=0)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)


def write_curves(res: dict, out: Path, name: str) -> Path | None:
    """out/png_name(name) from a variant's result (metrics.json's variants[name]); None when it has no epochs."""
    history = {run: recs for run, recs in res.get("history", {}).items() if recs}
    if not history:
        return None  # a baseline: fitted, not trained by epochs
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for recs in history.values() for r in recs]
    losses = {k: per_epoch(history, k) for k in loss_keys(records)}
    off = always_zero(losses)
    shown = [k for k in losses if k not in off]
    vals = val_keys(records)
    n_panels = len(shown) + bool(vals)
    cols = min(PANEL_COLUMNS, n_panels)
    rows = math.ceil(n_panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.7 * rows + 0.6), squeeze=False)
    panels = list(axes.flat)
    for ax, key in zip(panels, shown):
        _band(ax, losses[key])
        ax.set_title("loss (weighted total)" if key == "total" else f"{key} loss", fontsize="small")
    if vals:
        ax = panels[len(shown)]
        for key in vals:
            _band(ax, per_epoch(history, key), label=head_of(key), scale=100.0)
        first = next(iter(res.get("per_seed", {}).values()), {})
        if first.get("confusion"):  # one row per class validation chooses among
            ax.axhline(100.0 / len(first["confusion"]), color="grey", linestyle=":", linewidth=1, label="chance")
        ax.set_ylim(0, 105)
        ax.set_title("validation accuracy % (per head)", fontsize="small")
        ax.legend(fontsize="x-small")
    for ax in panels[:n_panels]:
        ax.set_xlabel("epoch", fontsize="small")
        ax.tick_params(labelsize="x-small")
    for ax in panels[n_panels:]:
        ax.axis("off")
    runs = f"mean of {len(history)} runs (seeds x folds), band: min-max" if len(history) > 1 else "one run"
    fig.suptitle(f"{name}, per epoch: {runs}" + (f"; always 0 here: {', '.join(off)}" if off else ""),
                 fontsize="small")
    fig.tight_layout()
    path = Path(out) / png_name(name)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
