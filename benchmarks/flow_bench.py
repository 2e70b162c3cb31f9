"""Pairs per second of every CPU flow backend at compute sizes 128 and 224, printed as a rich table.

Frames come from ../shared/data/ud810_ps7 (640x480 people raising arms) when that folder exists,
else from a synthetic drifting texture. Pairs are STEP native frames apart, about what 16 frames
sampled uniformly from these 60-115 frame clips give. Two rates per cell: the backend alone on
prepared gray frames, and FlowComputer end to end (gray + resize + flow + compact + histogram),
which is what stage one pays. Run: python benchmarks/flow_bench.py
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from extract.flow import FLOW_BACKENDS, FlowComputer, make_backend, prepare_gray
from fgm_common.config import FlowConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ud810_ps7"
SIZES = (128, 224)
STEP = 4  # native frames between the two frames of a pair
MIN_SECONDS = 1.5  # time each cell at least this long ...
MIN_PAIRS, MAX_PAIRS = 3, 400  # ... with at least / at most this many pairs


def real_pairs(limit: int = 24) -> list[tuple[np.ndarray, np.ndarray]]:
    """RGB frame pairs from the middle half of one clip per ud810_ps7 class: [((480, 640, 3), ...)]."""
    pairs = []
    clips = sorted(p for d in sorted(DATA.iterdir()) if d.is_dir() for p in sorted(d.glob("*.avi"))[:1])
    for clip in clips:
        cap = cv2.VideoCapture(str(clip))
        frames = []
        while (ok_bgr := cap.read())[0]:
            frames.append(cv2.cvtColor(ok_bgr[1], cv2.COLOR_BGR2RGB))
        cap.release()
        # the middle half: these clips open and close on a person standing still
        n = len(frames)
        pairs += [(frames[i], frames[i + STEP]) for i in range(n // 4, 3 * n // 4 - STEP, STEP)]
    return pairs[:: max(1, len(pairs) // limit)][:limit]


def synthetic_pairs(n: int = 24) -> list[tuple[np.ndarray, np.ndarray]]:
    """Blurred-noise 480x640 RGB texture drifting 2 px right and 1 px down per pair."""
    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.integers(0, 256, (560, 720), dtype=np.uint8), (0, 0), 2.0)
    frame = lambda k: np.repeat(big[k : k + 480, 2 * k : 2 * k + 640, None], 3, axis=2)  # noqa: E731
    return [(frame(k), frame(k + 1)) for k in range(n)]


def rate(fn, pairs) -> tuple[float, list]:
    """Pairs per second of fn over `pairs` (cycled), after one warm-up call; also the outputs."""
    fn(*pairs[0])
    outputs, start, i = [], time.perf_counter(), 0
    while i < MAX_PAIRS and (i < MIN_PAIRS or time.perf_counter() - start < MIN_SECONDS):
        outputs.append(fn(*pairs[i % len(pairs)]))
        i += 1
    return i / (time.perf_counter() - start), outputs


def main() -> None:
    console = Console(width=110)
    real = DATA.is_dir()
    pairs = real_pairs() if real else synthetic_pairs()
    source = f"{len(pairs)} pairs from {DATA}" if real else f"{len(pairs)} synthetic pairs"
    backends = [n for n in FLOW_BACKENDS if not n.startswith("cuda-")]
    table = Table(title=f"CPU optical flow, {source}, step {STEP}, cv2 threads {cv2.getNumThreads()}")
    for col in ("backend", "compute size", "flow w x h", "flow pairs/s", "FlowComputer pairs/s",
                "mean |flow| % width"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for name in backends:
        backend = make_backend(name)
        for size in SIZES:
            grays = [(prepare_gray(a, size), prepare_gray(b, size)) for a, b in pairs]
            flow_rate, flows = rate(backend, grays)
            full_rate, _ = rate(FlowComputer(FlowConfig(name, compute_size=size)), pairs)
            w = grays[0][0].shape[1]
            magnitude = np.mean([np.hypot(f[..., 0], f[..., 1]).mean() * 100 / w for f in flows])
            h = grays[0][0].shape[0]
            table.add_row(name, str(size), f"{w}x{h}", f"{flow_rate:,.1f}", f"{full_rate:,.1f}",
                          f"{magnitude:.2f}")
            console.print(f"  done {name} @ {size}", style="dim")
    console.print(table)


if __name__ == "__main__":
    main()
