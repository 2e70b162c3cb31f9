"""`fgm-demo`: the whole pipeline on a built-in default, from nothing to validation metrics.

Synthesises a labelled video set (fgm-synth; by default the mixed task, whose classes need both
the look and the motion of an object), extracts it once (fgm-extract), then trains FGM-CLIP and
its single-stream baselines over the same store (fgm-train) over two seeds and prints the table,
with each stream's own accuracy beside the fused one.
Pretrained CLIP weights are used when they can be had; otherwise it goes on with random weights
and says so plainly, on screen and in everything it writes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from fgm_common.config import ExtractConfig, is_random_weights
from fgm_common.console import console, progress_bar

app = typer.Typer(add_completion=False, help=__doc__)


def pretrained_or_random(model: str, pretrained: str, cache_dir: str | None = None) -> tuple[str, str]:
    """(`pretrained`, "") when its weights can be had (downloaded into the cache now if need be), else
    ("none", the one line saying why and naming the ways out).

    Offline it is decided within the hub probe's timeout, with no hub call.
    """
    if is_random_weights(pretrained):
        return pretrained, ""
    from extract.weights import fetch, unavailable_line

    source = fetch(model, pretrained, cache_dir)
    return (pretrained, "") if source.available else ("none", unavailable_line(source))


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Working folder: videos/, cache/, run/.")] = Path("demo"),
    videos_per_class: Annotated[int, typer.Option(help="Synthetic clips per class.")] = 16,
    task: Annotated[str, typer.Option(help="fgm-synth task: 'mixed' (look x motion) or 'motion' (motion only).")] = "mixed",
    clip_model: Annotated[str, typer.Option(help="open_clip model for the features.")] = ExtractConfig.clip_model,
    pretrained: Annotated[str, typer.Option(help="Weights to try first: an open_clip tag or a checkpoint path "
                                                  "('none' skips the download attempt).")] = ExtractConfig.pretrained,
    clip_cache_dir: Annotated[Optional[str], typer.Option(help="A cache that holds the CLIP weights (open_clip's "
                                                               "cache_dir), or where to download them.")] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs per variant.")] = 30,
    variants: Annotated[str, typer.Option(help="Variants to train over the one extraction.")] =
        "full,flow_only,linear_probe",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds (two or more give a spread).")] = "0,1",
    clip_adapters: Annotated[bool, typer.Option(help="Learnable CLIP text context for the full model (fgm-train's "
                                                     "--clip-adapters). Off here: on a CPU it costs several times the "
                                                     "rest of a training step, and the demo is meant to finish in "
                                                     "minutes; the full model adapts the frame embeddings.")] = False,
) -> None:
    """Synthesise, extract once, train the full model and its single-stream baselines, print validation metrics."""
    from extract.synth import SynthConfig, write_dataset

    videos, cache, run = out / "videos", out / "cache", out / "run"
    console.rule(f"1/3 fgm-synth: the {task!r} task")
    try:
        synth = SynthConfig(videos_per_class=videos_per_class, task=task)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--task") from err
    with ThreadPoolExecutor(1) as pool:
        # torch and open_clip load and the weights are looked for while other processes render the clips
        weights = pool.submit(pretrained_or_random, clip_model, pretrained, clip_cache_dir)
        write_dataset(videos, synth, workers=2)
        pretrained, why_not = weights.result()
    console.rule("2/3 fgm-extract: CLIP + optical flow into a zarr store")
    if why_not:
        console.print(f"[yellow]{escape(why_not)}[/yellow]")
    if is_random_weights(pretrained):
        console.print("[bold yellow]NO PRETRAINED CLIP WEIGHTS: continuing with RANDOM weights. The figures below "
                      "measure the motion stream and the training pipeline, not pretrained CLIP.[/bold yellow]")
    from extract.api import extract, make_config
    from extract.runner import RunOptions

    # No --tokens: adapters over cached tokens cost many times the rest of a training step on a CPU
    # (docs/method.md); the demo's full model adapts the frame embeddings instead.
    bar = progress_bar(quiet=False)
    with bar:
        task = bar.add_task("extract", total=len(synth.classes) * synth.videos_per_class, rate="")
        summary = extract(videos, str(cache), make_config(clip_model=clip_model, pretrained=pretrained),
                          RunOptions(cache_dir=clip_cache_dir), on_result=lambda _res: bar.update(task, advance=1))
    console.print(f"{summary.extracted} videos extracted, {summary.skipped} already in the store, "
                  f"{len(summary.failed)} failed, in {summary.seconds:.0f} s")
    if summary.failed:
        raise typer.Exit(1)
    console.rule("3/3 fgm-train: the variants over the same store (no video decoded)")
    from train.experiments.experiment import Experiment, run_experiment  # after extraction: not on its way
    from train.fitting.config import TrainConfig

    seed_list = tuple(int(s) for s in seeds.split(","))
    run_experiment(Experiment(store=str(cache), dataset="folder", out=run, seeds=seed_list,
                              variants=tuple(v.strip() for v in variants.split(",") if v.strip()),
                              train=TrainConfig(epochs=epochs, seed=seed_list[0], clip_adapters=clip_adapters)))
    console.print(f"report: {run / 'report.md'}")
