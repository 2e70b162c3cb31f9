"""`fgm-extract info STORE` and `fgm-extract show STORE KEY`: look at a store (thin; extract/info.py, extract/show.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from extract.info import render_info, store_json, summarize
from extract.show import MOST_COLUMNS, show_entry
from fgm_common.console import console
from fgm_common.options import StoreArg
from fgm_common.store import FeatureStore, StoreError

info_app = typer.Typer(add_completion=False)
show_app = typer.Typer(add_completion=False)


@info_app.command()
def info(store: StoreArg,
         as_json: Annotated[bool, typer.Option("--json", help="The raw record instead: config, provenance, "
                                                              "classes, videos, failures, runs.")] = False) -> None:
    """Print what a store holds and exactly how it was made."""
    try:
        fs = FeatureStore.open(store)
    except StoreError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2)
    if as_json:
        console.print_json(json.dumps(store_json(fs)))
    else:
        render_info(summarize(fs), console)


@show_app.command()
def show(store: StoreArg,
         key: Annotated[str, typer.Argument(help="The entry's key: its video path relative to the input root, "
                                                 "e.g. walk/clip1.mp4 (`fgm-extract info` names some).")],
         out: Annotated[Optional[Path], typer.Option(help="PNG to write (default: <KEY sanitised>.png here).")] = None,
         columns: Annotated[int, typer.Option(min=1, help="Show at most this many sampled frames, evenly "
                                                          "spread.")] = MOST_COLUMNS) -> None:
    """Draw one entry to a PNG: its sampled frames (decoded again), its flow fields colour-coded, its histograms.

    Hue is the flow's direction: red = right, yellow-green = down, cyan = left, violet = up (a wheel is drawn).
    Brightness is its length over the longest in the entry (docs/store.md).
    Without the video (moved, changed) the picture has the flow and histograms only, and says so.
    """
    try:
        drawn = show_entry(store, key, out, columns)
    except (StoreError, OSError) as e:
        console.print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2)
    if drawn.note:
        console.print(f"[yellow]note:[/yellow] {drawn.note}")
    console.print(f"wrote {drawn.path}")
