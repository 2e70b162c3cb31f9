"""Where fgm keeps what it can make again (exported towers, local copies of remote stores): one root for all."""

from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE = "FGM_CACHE_DIR"


def cache_root(cache_dir: str | None = None) -> Path:
    """`cache_dir`, else $FGM_CACHE_DIR, else $XDG_CACHE_HOME/fgm (~/.cache/fgm)."""
    return Path(cache_dir or os.environ.get(ENV_CACHE)
                or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fgm")
