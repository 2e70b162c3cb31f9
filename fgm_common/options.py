"""Command-line options shared by fgm-extract, fgm-train and fgm-predict, defined once."""

from __future__ import annotations

from typing import Annotated

import typer

StoreArg = Annotated[str, typer.Argument(help="Feature store: a folder written by fgm-extract, or an fsspec URL.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars: plain log lines, for log files.")]
Device = Annotated[str, typer.Option(help="'auto' (CUDA when torch sees a GPU, else CPU), 'cpu' or 'cuda'.")]


def resolve_device(name: str = "auto") -> str:
    """What a --device value means: 'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; others as given."""
    if name != "auto":
        return name
    import torch  # only the commands that run models pay for importing torch

    return "cuda" if torch.cuda.is_available() else "cpu"
