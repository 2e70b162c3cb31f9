"""Command-line options shared by fgm-extract, fgm-train and fgm-predict, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

StoreArg = Annotated[str, typer.Argument(help="Feature store: a folder written by fgm-extract, or an fsspec URL.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars: plain log lines, for log files.")]
Device = Annotated[str, typer.Option(help="'auto' (CUDA when torch sees a GPU, else CPU), 'cpu' or 'cuda'.")]
Seed = Annotated[int, typer.Option(help="Random seed.")]
OutDir = Annotated[Path, typer.Option("--out", help="Output folder.")]
