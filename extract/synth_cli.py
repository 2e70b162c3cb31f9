"""`fgm-synth OUT [--task motion|mixed]`: write a built-in synthetic set (thin: parse, build a SynthConfig, write)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from extract.synth import (
    CLASS_DESCRIPTIONS, DEFAULT_CLASSES, DEFAULT_TASK, MIXED_CLASSES, PEOPLE_CLASSES, TASKS, SynthConfig,
    write_dataset,
)

HELP = "\n\n".join((
    "Write a small labelled video set: one folder of videos per class under OUT, plus "
    "OUT/descriptions.json (sentences for the CLIP text tower) and OUT/synth_config.json.",
    "--task motion (default): classes differ in MOTION only. Classes come in pairs that share every "
    "frame and differ only in frame order: a clip of one member is a reordering (time reversal, or a "
    "faster replay of one swing) of a clip drawn exactly as for the other. Shape, colour, size, "
    "background, noise, position, path extent and length are random per clip and independent of the "
    "class, so appearance alone (any frame, or the unordered set of frames) cannot separate a pair: a "
    "model has to use motion. That is what fine-grained action recognition needs and what frame-wise "
    f"CLIP features miss. Classes: {', '.join(DEFAULT_CLASSES)}.",
    "--task mixed: classes need BOTH appearance and motion. Three fixed looks that differ in shape and "
    "colour (a large red disk, green square or blue triangle on a greyish background) times two "
    "motions that look alike frame by frame (circling clockwise, and the same clip played backwards). "
    "Appearance alone reaches about 1/2 (it finds the look, not the direction), motion alone about "
    f"1/3 (the direction, not the look); only both reach 100%. Classes: {', '.join(MIXED_CLASSES)}.",
    "--task people: a drawn person, 55-70% of the frame high, anywhere in it, makes one of six arm "
    "gestures while a textured disk moves elsewhere in the frame, unrelated to the class. Pairs: both "
    "arms raised sideways or forwards (same start and end pose, another path), and one arm raised or "
    "waved on the right of the picture or, mirrored, on the left. For region motion tokens: extract "
    f"with --detector hog, train with --sweep regions. Classes: {', '.join(PEOPLE_CLASSES)}.",
    "See docs/synth.md. Re-running into the same OUT keeps the videos already there (same seed, same "
    "clips); a folder made with another task or other render settings is refused.",
))

app = typer.Typer(add_completion=False, help=HELP)
console = Console(stderr=True)


@app.command(help=HELP)
def main(
    out: Path = typer.Argument(..., help="folder to write into (created if missing)"),
    task: str = typer.Option(DEFAULT_TASK, help=f"which set: {' or '.join(TASKS)} (see above)"),
    videos_per_class: int = typer.Option(20, help="clips per class"),
    size: int = typer.Option(112, help="frame width and height in pixels"),
    seed: int = typer.Option(0, help="random seed; the same seed gives the same clips"),
    classes: str = typer.Option("", help="comma-separated subset of the task's class names (default: all)"),
) -> None:
    names = tuple(c.strip() for c in classes.split(",") if c.strip()) or None
    try:
        cfg = SynthConfig(videos_per_class=videos_per_class, task=task, classes=names, size=size, seed=seed)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    try:
        paths = write_dataset(out, cfg, progress=True)
    except FileExistsError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from err
    console.print(f"{len(paths)} videos of {len(cfg.classes)} classes ({cfg.task} task) in {out}")
    for name in cfg.classes:
        console.print(f"  {name}: {CLASS_DESCRIPTIONS[name][0]}")
