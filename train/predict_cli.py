"""`fgm-predict CHECKPOINT VIDEO...`: label new videos with a trained checkpoint (top-k classes, softmax scores)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fgm_common.console import console
from fgm_common.options import Device, Quiet
from train.inference.options import PredictOptions

app = typer.Typer(add_completion=False, help=__doc__)

EPILOG = (
    "Examples:\n\n"
    "  fgm-predict runs/latest/full/seed0/stratified/checkpoint.pt clip.mp4\n\n"
    "  fgm-predict CKPT videos/ --top-k 5 --json predictions.json   # every video under a folder\n\n"
    "Exit status: 0 all labelled, 1 some video could not be decoded (reported), 2 unusable checkpoint."
)


@app.command(epilog=EPILOG)
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="checkpoint.pt written by fgm-train.")],
    videos: Annotated[list[Path], typer.Argument(help="Video files, folders of videos, or manifests.")],
    top_k: Annotated[int, typer.Option(help="Classes shown per video, best first.")] = PredictOptions.top_k,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the predictions (with logits) "
                                                                    "to this JSON file.")] = None,
    batch_size: Annotated[int, typer.Option(help="Frames per CLIP batch while extracting.")] = PredictOptions.batch_size,
    device: Device = "auto",
    quiet: Quiet = False,
) -> None:
    """Extract the videos exactly as the checkpoint's training store was made, then print their top-k classes.

    The CLIP weights are rebuilt from the checkpoint's extract config and must hash like the training
    ones; otherwise the command refuses. Videos that fail to decode are reported and the rest labelled.
    """
    from extract.clip_model import ClipWeightsError
    from extract.clip_runtime import ClipRuntimeError
    from fgm_common.store import StoreError
    from train.inference.predict import run_predict

    try:
        report = run_predict(checkpoint, videos, PredictOptions(top_k, device, batch_size, quiet), json_out)
    except (ValueError, ClipWeightsError, ClipRuntimeError, StoreError) as e:  # PredictError: a ValueError
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    if report.failed:
        console.print(f"[yellow]{len(report.failed)} of {len(report.videos)} videos could not be labelled[/yellow]")
        raise typer.Exit(1)
