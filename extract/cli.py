"""`fgm-extract`: videos -> feature store (default command), plus `export`, `info`, `show` and `fidelity` subcommands."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from extract.flow import FLOW_BACKENDS
from extract.inspect_cli import info_app, show_app
from extract.runner import RunOptions
from fgm_common.config import DetectConfig, ExtractConfig, FlowConfig
from fgm_common.console import console, progress_bar, run_then_exit
from fgm_common.options import Device, Quiet, StoreArg

extract_app = typer.Typer(add_completion=False, help=__doc__)
export_app = typer.Typer(add_completion=False)
fidelity_app = typer.Typer(add_completion=False)

EPILOG = (
    "Examples:\n\n"
    "  fgm-extract videos/ --out cache/                       # folder per class, pretrained ViT-B-32\n\n"
    "  fgm-extract list.csv --out cache/ --workers 2          # manifest: path,label[,group][,split]\n\n"
    "  fgm-extract videos/ --out cache/ --pretrained none     # random CLIP weights (no download)\n\n"
    "  fgm-extract videos/ --out cache/ --backbone resnet50   # add ResNet-50 features beside CLIP\n\n"
    "  fgm-extract export cache/ features.h5                  # HDF5 copy for other tools\n\n"
    "  fgm-extract info cache/                                # what the store holds and how it was made\n\n"
    "  fgm-extract show cache/ walk/clip1.mp4                 # one entry's frames, flow and histograms as a PNG\n\n"
    "  fgm-extract fidelity cache/ --entries 20               # stored CLIP features vs torch fp32"
)


class StrictFailure(Exception):
    pass


@extract_app.command(epilog=EPILOG)
def extract(
    videos: Annotated[Path, typer.Argument(help="A folder of videos (label = parent folder), a frame-folder tree, "
                                                 "or a manifest: 'path label' lines or CSV with path,label[,group][,view][,split][,start_ms,end_ms].")],
    out: Annotated[str, typer.Option(help="Feature store to create or complete (folder or fsspec URL).")] = "cache",
    frames: Annotated[int, typer.Option(help="Frames sampled per video, uniformly over its length (TSN segments).")] = ExtractConfig.num_frames,
    fps: Annotated[float, typer.Option(help="Sample at this rate instead of a fixed count (0 = use --frames).")] = 0.0,
    clip_model: Annotated[str, typer.Option(help="open_clip model name, e.g. ViT-B-32, ViT-L-14, RN50; "
                                                  "fgm-tiny-vit for tests.")] = ExtractConfig.clip_model,
    pretrained: Annotated[str, typer.Option(help="Weights: an open_clip tag (openai, laion2b_s34b_b79k), a local "
                                                  "checkpoint path, or 'none' for random weights.")] = ExtractConfig.pretrained,
    clip_cache_dir: Annotated[Optional[str], typer.Option(help="Where open_clip looks for / stores downloaded weights.")] = None,
    random_seed: Annotated[int, typer.Option(help="Seed of random weights with --pretrained none.")] = ExtractConfig.random_seed,
    tokens: Annotated[bool, typer.Option(help="Also store the patch tokens entering the last CLIP block "
                                               "(needed for adapter fine-tuning in fgm-train).")] = False,
    clip_runtime: Annotated[str, typer.Option(help="Where the frozen image tower runs: torch, onnx (ONNX Runtime "
                                                   "fp32) or onnx-int8 (dynamic int8 weights; needs fgm[onnx]). "
                                                   "Checked against torch fp32 on the first batch; recorded in the "
                                                   "store, which never mixes runtimes (docs/clip-runtime.md).")
                            ] = ExtractConfig.clip_runtime,
    preprocess: Annotated[str, typer.Option(help="How frames become CLIP's input: pil (open_clip's own "
                                                 "transform) or opencv (the same resize and crop with OpenCV's "
                                                 "filters: faster, embeddings differ slightly). Recorded in the "
                                                 "store (docs/clip-runtime.md).")] = ExtractConfig.preprocess,
    backbone: Annotated[Optional[list[str]], typer.Option(help="Also store per-frame features of this frozen "
                                                               "backbone beside CLIP (repeatable): resnet50. May be "
                                                               "added to an existing store: only its videos are "
                                                               "decoded again.")] = None,
    backbone_weights: Annotated[Optional[str], typer.Option(help="Weights of the --backbone models: a torchvision "
                                                                 "tag (default IMAGENET1K_V2, fetched into "
                                                                 "$TORCH_HOME/hub/checkpoints), a local state_dict "
                                                                 ".pth, or 'none' for random weights (seeded by "
                                                                 "--random-seed).")] = None,
    flow: Annotated[str, typer.Option(help="Optical flow backend: auto (CUDA when OpenCV has it, else dis), "
                                            + ", ".join(FLOW_BACKENDS) + ".")] = "auto",
    flow_pairs: Annotated[str, typer.Option(help="'native': flow between each sampled frame and the next native "
                                                  "frame (default: sees fine and fast motion); 'sampled': between "
                                                  "consecutive sampled frames.")] = FlowConfig.pairs,
    flow_size: Annotated[int, typer.Option(help="Short side (px) frames are resized to before flow.")] = FlowConfig.compute_size,
    flow_grid: Annotated[int, typer.Option(help="Stored flow fields are GRID x GRID (float16).")] = FlowConfig.grid,
    detector: Annotated[str, typer.Option(help="Find people (and objects) in every sampled frame and store their "
                                               "boxes, tracks and flow (for fgm-train's region variants): none, "
                                               "hog (OpenCV's built-in people detector, offline) or detr (needs "
                                               "fgm[detr]). Part of the store's config.")] = DetectConfig.name,
    detector_top_k: Annotated[int, typer.Option(min=1, help="Boxes kept per frame, best first.")] = DetectConfig.top_k,
    detector_weights: Annotated[str, typer.Option(help="detr weights: a hub tag (empty = the "
                                                       "detector's default, docs/design-choices.md), a local "
                                                       "directory or file, or 'none' (random, for tests).")] = DetectConfig.weights,
    template: Annotated[Optional[list[str]], typer.Option(help="Text template with {label}; repeat for several.")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="Label entries with a dataset adapter (kth, ucf-sports, ...; see "
                                                       "docs/datasets.md) and encode its class descriptions.")] = None,
    annotations: Annotated[Optional[str], typer.Option(help="Annotation file/folder the dataset's publisher ships "
                                                           "(FineGym split lists and categories, i3DPost codes).")] = None,
    descriptions: Annotated[Optional[Path], typer.Option(help="Per-class sentences: JSON {class: [...]} or 'class: "
                                                              "sentence' lines. Default: VIDEOS/descriptions.json if present.")] = None,
    workers: Annotated[int, typer.Option(help="Local dask worker processes (1 = in this process).")] = RunOptions.workers,
    scheduler: Annotated[Optional[str], typer.Option(help="Address of an existing dask.distributed scheduler.")] = None,
    device: Device = "auto",
    batch_size: Annotated[int, typer.Option(help="Frames per CLIP batch.")] = RunOptions.batch_size,
    decode_threads: Annotated[int, typer.Option(min=0, help="Threads per process that decode, compute flow and "
                                                           "preprocess, each on its own videos. 0 = auto: 1 when CLIP "
                                                           "runs on the CPU (torch uses every core), else up to 4.")] = RunOptions.decode_threads,
    retry_failed: Annotated[bool, typer.Option(help="Try again videos that failed in an earlier run.")] = False,
    lease_seconds: Annotated[float, typer.Option(min=1, help="Processes sharing a store split its videos: a video stays "
                                                             "another's until its lease lapses this long after that "
                                                             "process last renewed it (e.g. it was killed).")] = RunOptions.lease_seconds,
    verify_hash: Annotated[bool, typer.Option(help="Re-hash every source file instead of trusting size+mtime.")] = False,
    strict: Annotated[bool, typer.Option(help="Stop at the first video that fails (exit 1).")] = False,
    quiet: Quiet = False,
) -> None:
    """Decode videos, sample frames, run frozen CLIP and optical flow, and write a zarr feature store.

    Resumable: rerunning skips every finished, unchanged video; a killed run loses only the videos in flight.
    A store made with other settings is never mixed into: the command refuses and says why.
    """
    from extract.api import extract as run
    from extract.api import make_config
    from extract.clip_runtime import ClipRuntimeError
    from extract.errors import BackboneWeightsError, ClipWeightsError
    from fgm_common.config import is_random_weights
    from fgm_common.store import StoreError

    try:
        settings = {"templates": tuple(template)} if template else {}
        flow_config = FlowConfig(backend=flow, pairs=flow_pairs, compute_size=flow_size, grid=flow_grid)
        config = make_config(frames=frames, fps=fps, flow=flow_config, backbone_weights=backbone_weights,
                             clip_model=clip_model, pretrained=pretrained, random_seed=random_seed, tokens=tokens,
                             clip_runtime=clip_runtime, preprocess=preprocess, backbones=tuple(backbone or ()),
                             detect=DetectConfig(detector, detector_top_k, detector_weights), **settings)
    except (ValueError, FileNotFoundError, RuntimeError) as e:  # a detector's unavailable weights too
        console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2)
    if is_random_weights(pretrained):
        console.print("[bold yellow]WARNING: --pretrained none: CLIP weights are RANDOM. Features carry no pretrained "
                      "knowledge; the store records this.[/bold yellow]")
    if config.backbones and is_random_weights(config.backbone_weights):
        console.print(f"[bold yellow]WARNING: --backbone-weights none: {', '.join(config.backbones)} weights are "
                      "RANDOM. Features carry no pretrained knowledge; the store records this.[/bold yellow]")
    options = RunOptions(workers, scheduler, device, batch_size, retry_failed, verify_hash, clip_cache_dir,
                         decode_threads, lease_seconds)

    def on_found(discovery) -> None:
        console.print(f"{len(discovery.items)} videos found in {videos}"
                      + (f", {len(discovery.ignored)} other files ignored" if discovery.ignored else ""))

    bar = progress_bar(quiet)
    task = None
    t0 = time.perf_counter()
    frames_done = 0

    def on_start(n: int) -> None:
        nonlocal task
        if n == 0:
            console.print("nothing to extract: every video is already in the store (0 decoded)")
        else:
            task = bar.add_task("extract", total=n, rate="")

    def on_result(res) -> None:
        nonlocal frames_done
        frames_done += res.frames
        if not res.ok:
            console.print(f"[yellow]skipped[/yellow] {res.key}: {res.reason}: {res.message}")
        if task is not None:
            dt = max(time.perf_counter() - t0, 1e-6)
            done = bar.tasks[0].completed + 1
            bar.update(task, advance=1, rate=f"{done / dt:.2f} videos/s {frames_done / dt:.1f} frames/s")
        if strict and not res.ok:
            raise StrictFailure(res.key)

    def on_note(message: str) -> None:
        console.print(f"note: {message}")

    try:
        with bar:
            summary = run(videos, out, config, options, dataset, annotations, descriptions,
                          on_found, on_start, on_result, on_note)
    except StrictFailure as e:
        console.print(f"[red]--strict: stopped at the first failure ({e}); finished videos are kept[/red]")
        raise typer.Exit(1)
    except (StoreError, ClipWeightsError, ClipRuntimeError, BackboneWeightsError, ValueError,
            FileNotFoundError) as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2)
    _print_summary(summary, out)
    if summary.failed or summary.previously_failed:
        raise typer.Exit(1)


def _print_summary(summary, out: str) -> None:
    from rich.table import Table

    table = Table(title=f"fgm-extract -> {out}", show_header=False)
    for name, value in (
        ("videos found", summary.total), ("extracted now", summary.extracted),
        ("extracted by other processes sharing the store", summary.elsewhere),
        ("  of which in the store but lacking a backbone", summary.lacking_backbone),
        ("already in store (not decoded)", summary.skipped), ("failed now", len(summary.failed)),
        ("failed before, unchanged (not retried)", summary.previously_failed),
        ("other files ignored", summary.ignored), ("frames encoded", summary.frames),
        ("sentences encoded", summary.text_encoded), ("seconds", f"{summary.seconds:.1f}"),
    ):
        table.add_row(name, str(value))
    console.print(table)
    for res in summary.failed:
        console.print(f"  failed: {res.key} ({res.reason}) {res.message}")
    if summary.previously_failed:
        console.print("  (use --retry-failed to try earlier failures again; `fgm-extract info` lists them)")


@export_app.command()
def export(store: StoreArg, out: Annotated[Path, typer.Argument(help="HDF5 file to write.")]) -> None:
    """Copy every complete entry and the text embeddings of a store into one HDF5 file (h5py)."""
    from extract.export import export_hdf5
    from fgm_common.store import StoreError

    try:
        n = export_hdf5(store, out)
    except StoreError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2)
    console.print(f"wrote {n} videos to {out}")


@fidelity_app.command()
def fidelity(store: StoreArg,
             entries: Annotated[int, typer.Option(help="Measure this many entries, spread over the store "
                                                       "(0 = all).")] = 0,
             device: Device = "auto",
             clip_cache_dir: Annotated[Optional[str], typer.Option(help="Where the CLIP weights are cached.")] = None,
             quiet: Quiet = False) -> None:
    """Re-measure the stored CLIP features against torch fp32 on their own videos (decoded again).

    Exit 1 when the worst frame is below the store's runtime threshold (docs/clip-runtime.md).
    """
    from extract.clip_model import ClipWeightsError
    from extract.fidelity import measure_fidelity
    from fgm_common.store import StoreError

    bar = progress_bar(quiet)
    task = None

    def on_entry(n: int) -> None:  # n entries chosen, then 0 once per entry measured
        nonlocal task
        if task is None:
            task = bar.add_task("fidelity", total=n, rate="")
        else:
            bar.update(task, advance=1)

    try:
        with bar:
            report = measure_fidelity(store, entries, device, clip_cache_dir, on_entry=on_entry)
    except (StoreError, ClipWeightsError, ValueError) as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2)
    for key, why in report.skipped.items():
        console.print(f"[yellow]skipped[/yellow] {key}: {why}")
    tokens = "" if report.tokens_min_cosine is None else f", tokens min {report.tokens_min_cosine:.6f}"
    console.print(f"{report.runtime}: {report.frames} frames of {len(report.measured)} entries against torch fp32: "
                  f"min cosine {report.min_cosine:.6f}, median {report.median_cosine:.6f}{tokens}")
    if report.threshold is None:
        console.print("a torch store: nothing to refuse (these figures show the re-computation agrees)")
    elif report.passed:
        console.print(f"[green]passes[/green] (threshold {report.threshold})")
    else:
        console.print(f"[red]below {report.threshold}[/red]: these features stray from torch fp32")
    if not report.passed:
        raise typer.Exit(1)


SUBCOMMANDS = {"export": export_app, "info": info_app, "show": show_app, "fidelity": fidelity_app}


def dispatch() -> None:
    """`fgm-extract export|info|show|fidelity ...` go to their subcommand, anything else extracts; ends in SystemExit."""
    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        app = SUBCOMMANDS[sys.argv.pop(1)]
        sys.argv[0] = f"{sys.argv[0]} {app.registered_commands[0].callback.__name__}"
        app()
    else:
        extract_app()


def main() -> None:
    """Console entry point: `dispatch`, then the end of the process without the interpreter's teardown of
    torch (fgm_common/console.py); in-process callers that want SystemExit call `dispatch`."""
    run_then_exit(dispatch)


if __name__ == "__main__":
    main()
