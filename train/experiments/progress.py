"""The live display of one fgm-train run: the sweep's position (variant i of n, ETA) above the current run's epochs.

Two bars shown together (fgm_common.console.shown_together), each sized on its own: the sweep line
counts variants, a variant's share filling fold by fold and, within a fold, with the epochs of the
model trained on the whole fold (inner-fold models of the head blend come before it and do not move
it); below it, the epoch bar of the training run now going, removed when it ends. Quiet (--quiet):
no display, a plain log line every LOG_EVERY epochs and at each run's last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fgm_common.console import console, progress_bar, shown_together
from train.experiments.monitor import VAL_PREFIX

LOG_EVERY = 10
# Seconds of progress the sweep's ETA averages over: long enough to span several variants' folds,
# so a slow variant after fast ones (or the reverse) moves the estimate gradually.
SWEEP_ETA_WINDOW = 3600.0


class TrainProgress:
    """The display, entered around the whole run; `variant`, `fold`, `run` and `variant_done` move it along."""

    def __init__(self, n_variants: int, quiet: bool = False):
        self.sweep_bar = progress_bar(quiet, eta_window=SWEEP_ETA_WINDOW)
        self.runs = progress_bar(quiet)
        self.shown = shown_together(self.sweep_bar, self.runs, quiet=quiet)
        self.quiet, self.n = quiet, n_variants
        self.todo = n_variants  # the sweep line's total: variants trained here, not loaded from an earlier run
        self.done = 0.0  # sweep units (variants) finished here
        self.span = (0.0, 1.0)  # (start, width) in sweep units of the fold now training
        self.sweep = self.sweep_bar.add_task("sweep", total=n_variants, rate="")
        self.label = ""

    def __enter__(self) -> "TrainProgress":
        self.shown.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.shown.__exit__(*exc)

    def variant(self, index: int, name: str) -> None:
        """Variant `index` (1-based) of n starts."""
        self.label = f"variant {index}/{self.n} {name}"
        self.sweep_bar.update(self.sweep, description=self.label)

    def skip(self) -> None:
        """The current variant was finished in an earlier run: it leaves the sweep's count, not its ETA."""
        self.todo -= 1
        self.sweep_bar.update(self.sweep, total=max(self.todo, 1))

    def fold(self, seed_i: int, n_seeds: int, fold_i: int, n_folds: int) -> None:
        """Fold `fold_i` of seed `seed_i` (0-based) of the current variant starts; each is an equal share of it."""
        width = 1.0 / (n_seeds * n_folds)
        self.span = (self.done + (seed_i * n_folds + fold_i) * width, width)
        self.sweep_bar.update(self.sweep, completed=self.span[0],
                              description=f"{self.label} seed {seed_i + 1}/{n_seeds} fold {fold_i + 1}/{n_folds}")

    def variant_done(self) -> None:
        self.done += 1
        self.sweep_bar.update(self.sweep, completed=self.done)

    @contextmanager
    def run(self, variant: str, seed: int, fold: str, epochs: int, outer: bool) -> Iterator[Callable[[int, dict], None]]:
        """An epoch bar for one training run; yields on_epoch(epoch, record).

        `outer`: the model trained on the whole fold, whose epochs also move the sweep line.
        """
        task = self.runs.add_task(f"{variant} s{seed} {fold}", total=epochs, rate="")

        def on_epoch(epoch: int, record: dict) -> None:
            self.runs.update(task, completed=epoch, rate=epoch_line(record))
            if outer:
                self.sweep_bar.update(self.sweep, completed=self.span[0] + self.span[1] * epoch / max(epochs, 1))
            if self.quiet and (epoch % LOG_EVERY == 0 or epoch == epochs):  # log lines instead of a bar
                terms = " ".join(f"{k} {v:.4f}" for k, v in record.items() if k not in ("epoch", "lr"))
                console.print(f"{variant} seed {seed} {fold} epoch {epoch}/{epochs} lr {record['lr']:.2e} {terms}")

        try:
            yield on_epoch
        finally:
            self.runs.remove_task(task)


def epoch_line(record: dict) -> str:
    """The bar's rate field: the loss, the fused head's cross-entropy and, when recorded, its validation accuracy."""
    val = record.get(VAL_PREFIX + "fused")
    return f"loss {record['total']:.3f} ce {record['ce']:.3f}" + ("" if val is None else f" val {100 * val:.0f}%")
