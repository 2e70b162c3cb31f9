"""PredictOptions: how fgm-predict runs; light to import, so the command reads its defaults without loading torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PredictOptions:
    """How to run, not what to compute: nothing here changes a logit."""

    top_k: int = 3
    device: str = "auto"
    batch_size: int = 32  # frames per CLIP batch while extracting, videos per model batch
    quiet: bool = False
