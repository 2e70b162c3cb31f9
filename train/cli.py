"""`fgm-train CACHE --dataset NAME`: train FGM-CLIP (and ablations) over a feature store; no video is decoded."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from fgm_common.console import console
from fgm_common.options import Device, Quiet, StoreArg
from train.fitting.config import TrainConfig
from train.fitting.splits import SplitSpec

app = typer.Typer(add_completion=False, help=__doc__)

EPILOG = (
    "Examples:\n\n"
    "  fgm-train cache/ --dataset folder                         # the paper's recipe: Adam 1e-3, cosine, 100 epochs\n\n"
    "  fgm-train cache/ --dataset ud810 --split logo             # leave one person out\n\n"
    "  fgm-train cache/ --variants full,no_motion --seeds 0,1,2  # ablation, mean ± std over seeds\n\n"
    "  fgm-train cache/ --sweep ablations --seeds 0,1,2 --out runs/abl   # paper-style tables (ablations, baselines, all)\n\n"
    "  fgm-train cache/ --out runs/a --resume                    # continue an interrupted run exactly\n\n"
    "  fgm-train cache/ --tensorboard runs/tb                    # also watch the losses in TensorBoard"
)


def _csv(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


@app.command(epilog=EPILOG)
def train(
    # optional only so that --list-variants needs no store; a run without one is refused below
    store: Annotated[Optional[str], typer.Argument(help=StoreArg.__metadata__[0].help, show_default=False)] = None,
    dataset: Annotated[str, typer.Option(help="How labels, actors, views and splits are read: folder, csv, or a "
                                              "named dataset adapter.")] = "folder",
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, metrics.json, report.md, tables, "
                                                 "confusion PNGs.")] = Path("runs/latest"),
    variants: Annotated[Optional[str], typer.Option(help="Comma-separated registered variants (see --list-variants); "
                                                         "default full.", show_default=False)] = None,
    sweep: Annotated[Optional[str], typer.Option(help="A named variant list instead of --variants: ablations, "
                                                     "baselines or all (see --list-variants). Writes "
                                                     "table_quality/table_cost .md/.csv and sweep.png; with "
                                                     "--resume an interrupted sweep runs only what is unfinished.",
                                                show_default=False)] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds; several give mean ± std.")] = "0",
    split: Annotated[str, typer.Option(help="auto (the dataset's own protocol, e.g. KTH's person split; else grouped "
                                            "70/30 when actors are known, else the paper's stratified 70/30), "
                                            "stratified, group, kfold, logo, official, cross-view.")] = SplitSpec.protocol,
    annotations: Annotated[Optional[str], typer.Option(help="Annotation files the dataset's publisher ships "
                                                           "(FineGym split lists and categories, i3DPost codes).")] = None,
    val_fraction: Annotated[float, typer.Option(help="Validation share for 70/30-style splits.")] = SplitSpec.val_fraction,
    folds: Annotated[int, typer.Option(help="Folds for --split kfold.")] = SplitSpec.folds,
    val_view: Annotated[str, typer.Option(help="Camera held out for --split cross-view (default: each in turn).")] = SplitSpec.val_view,
    epochs: Annotated[int, typer.Option(help="Training epochs (paper: 100).")] = TrainConfig.epochs,
    batch_size: Annotated[int, typer.Option(help="Videos per batch.")] = TrainConfig.batch_size,
    lr: Annotated[float, typer.Option(help="Adam learning rate (paper: 1e-3), cosine-annealed.")] = TrainConfig.lr,
    frames: Annotated[int, typer.Option(help="Frames per video fed to the model (0 = as stored; for an "
                                              "fps-sampled store, the median of its videos' frame counts).")] = TrainConfig.n_frames,
    hidden: Annotated[int, typer.Option(help="Fusion width H.")] = TrainConfig.hidden,
    shots: Annotated[int, typer.Option(help="Few-shot: train on this many videos per class (0 = all).")] = 0,
    unseen_classes: Annotated[str, typer.Option(help="Zero-shot: comma-separated classes held out of training; "
                                                     "validation chooses among them through the text classifier.")] = "",
    clip_adapters: Annotated[bool, typer.Option(help="Full-model CLIP adapters: inside the last CLIP block over the "
                                                     "cached tokens (when the store has them) and learnable text "
                                                     "context. Slow on a CPU; off, an adapter on the frame "
                                                     "embeddings and fixed class texts.")] = TrainConfig.clip_adapters,
    resume: Annotated[bool, typer.Option(help="Continue from the checkpoints in --out.")] = False,
    tensorboard: Annotated[Optional[Path], typer.Option(
        metavar="DIR", help="Also log each training run's loss terms, learning rate and validation accuracy per "
                            "epoch as TensorBoard events under DIR/<variant>/seed<s>/<fold> (watch with "
                            "`tensorboard --logdir DIR`). Needs pip install 'fgm\\[tensorboard]'.",
        show_default=False)] = None,
    val_curves: Annotated[bool, typer.Option(help="Score the validation videos with each epoch-trained head after "
                                                  "every epoch, for the loss-curve PNGs and TensorBoard. Recorded, "
                                                  "never used to choose anything (fixed epochs; blend weights from "
                                                  "training videos); costs one pass over the validation videos per "
                                                  "epoch.")] = True,
    list_variants: Annotated[bool, typer.Option(help="List the registered variants and exit.")] = False,
    device: Device = "auto",
    quiet: Quiet = False,
) -> None:
    """Train over the cached features, validate on held-out videos, and write metrics.json and report.md."""
    from fgm_common.store import StoreError
    from train.experiments.experiment import Experiment, run_experiment
    from train.experiments.tensorboard_log import TensorBoardMissing
    from train.experiments.variants import SWEEPS, VARIANTS, get_sweep

    if list_variants:
        for name, fn in VARIANTS.items():
            console.print(f"{name:20s} {fn().description}")
        for name, names in SWEEPS.items():
            console.print(f"--sweep {name:12s} {','.join(names)}")
        return
    if store is None:
        console.print("[red]error:[/red] missing STORE: the feature store written by `fgm-extract VIDEOS --out STORE`")
        raise typer.Exit(2)
    try:
        seed_list = tuple(int(s) for s in _csv(seeds))
        if sweep and variants:
            raise ValueError("give either --sweep or --variants, not both")
        names = get_sweep(sweep) if sweep else _csv(variants or "full")
        exp = Experiment(
            store=store, dataset=dataset, out=out, resume=resume, quiet=quiet, seeds=seed_list, annotations=annotations,
            shots=shots, unseen_classes=_csv(unseen_classes), tensorboard=tensorboard, val_curves=val_curves,
            variants=names,
            train=TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed_list[0], device=device,
                              n_frames=frames, hidden=hidden, clip_adapters=clip_adapters),
            split=SplitSpec(protocol=split, val_fraction=val_fraction, folds=folds, val_view=val_view),
        )
        for v in exp.variants:
            if v not in VARIANTS:
                raise ValueError(f"unknown variant {v!r}; choose from {sorted(VARIANTS)}")
        run_experiment(exp)
    except (StoreError, ValueError, TensorBoardMissing) as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")  # a message may hold brackets: fgm[tensorboard]
        raise typer.Exit(2)
    console.print(f"wrote {out}/metrics.json, {out}/report.md, table_quality/table_cost .md/.csv, sweep.png and "
                  "loss-curve PNGs" + (f"; TensorBoard events under {tensorboard}" if tensorboard else ""))
