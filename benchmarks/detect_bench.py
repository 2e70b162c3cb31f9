"""How often a detector (`hog` unless told) finds a person in real clips, and its cost: per set, frames with a person box / frames sampled.

Frames are sampled as stage one samples them (extract.sampling.uniform_indices, FRAMES per clip) from
the sets in ../shared/data; a set not there is skipped. The detector runs on one thread
(cv2.setNumThreads(1), torch.set_num_threads(1)); ms per frame is its CPU time alone, decoding
left out. A frame counts when a box of class person is in it (every hog box is one). `--sheets DIR` also
writes one contact sheet per set, DIR/<set>.png: a row per clip, the best box thick green, the others
thin orange, each with its score. Run:

    python benchmarks/detect_bench.py [--frames 8] [--sheets /tmp/detect_sheets] [--sets ud810_ps7,kth_few]
    python benchmarks/detect_bench.py --detector detr --weights facebook/detr-resnet-50   # where the weights are
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import torch
import typer
from rich.console import Console
from rich.table import Table

from extract.detect import Boxes, make_detector
from extract.sampling import uniform_indices
from extract.video import is_video_candidate, open_source
from fgm_common.config import DetectConfig
from fgm_common.store import PERSON_CLASS

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETS = ("ud810_ps7", "kth_few", "demo_clips", "unlabeled")
THUMB_W = 160  # contact sheet tile width in px
BEST, OTHER, LABEL = (0, 200, 0), (255, 160, 0), (255, 0, 255)  # RGB


def clips(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_video_candidate(p))


def tile(rgb: np.ndarray, found: Boxes, label: str) -> np.ndarray:
    """One frame (H, W, 3) shrunk to THUMB_W wide with its boxes drawn, worst first so the best is on top."""
    h, w = rgb.shape[:2]
    th = round(THUMB_W * h / w)
    out = cv2.resize(rgb, (THUMB_W, th), interpolation=cv2.INTER_AREA)
    for k in reversed(range(len(found))):
        x0, y0, x1, y1 = np.round(found.xyxy[k] * [THUMB_W - 1, th - 1, THUMB_W - 1, th - 1]).astype(int)
        colour = BEST if k == 0 else OTHER
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, 2 if k == 0 else 1)
        cv2.putText(out, f"{found.scores[k]:.2f}", (x0 + 2, y0 + 10), cv2.FONT_HERSHEY_SIMPLEX, 0.33, colour, 1)
    cv2.putText(out, label, (2, th - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.3, LABEL, 1)
    return out


def write_sheet(rows: list[list[np.ndarray]], path: Path) -> None:
    """Tiles, a row per clip, padded with black to the tallest tile and the longest row, as one PNG."""
    th = max(t.shape[0] for row in rows for t in row)
    cols = max(len(row) for row in rows)
    blank = np.zeros((th, THUMB_W, 3), np.uint8)
    lines = [np.concatenate([np.pad(t, ((0, th - t.shape[0]), (0, 0), (0, 0))) for t in row]
                            + [blank] * (cols - len(row)), 1) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(lines, 0), cv2.COLOR_RGB2BGR))


def run_set(detector, folder: Path, frames: int, sheet: Path | None) -> tuple[int, int, int, float]:
    """(clips, frames with a box, frames sampled, ms per frame) over the set's clips."""
    found_in = sampled = 0
    seconds = 0.0
    rows = []
    videos = clips(folder)
    for video in videos:
        source = open_source(video)
        row = []
        for frame in source.iter_frames(uniform_indices(source.probe().n_frames, frames)):
            start = time.process_time()
            found = detector(frame.rgb)
            seconds += time.process_time() - start
            found_in, sampled = found_in + bool((found.classes == PERSON_CLASS).any()), sampled + 1
            if sheet is not None:
                row.append(tile(frame.rgb, found, f"{video.stem[:16]} {frame.index}"))
        rows.append(row)
    if sheet is not None and rows:
        write_sheet(rows, sheet)
    return len(videos), found_in, sampled, 1000 * seconds / max(sampled, 1)


def main(frames: int = typer.Option(8, help="frames sampled uniformly per clip"),
         sets: str = typer.Option(",".join(SETS), help="comma-separated folders of ../shared/data"),
         sheets: Path | None = typer.Option(None, help="write a contact sheet per set here"),
         detector: str = typer.Option("hog", help="a registered detector (extract/detect.py DETECTORS)"),
         weights: str = typer.Option(DetectConfig.weights, help="its weights: a hub tag or a local folder (detr)")
         ) -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    console = Console(width=110)
    detect = make_detector(DetectConfig(name=detector, weights=weights))
    table = Table(title=f"{detector} on {DATA}, {frames} uniform frames per clip, one thread")
    for col in ("set", "clips", "frames with a person box", "%", "ms / frame"):
        table.add_column(col, justify="left" if col == "set" else "right")
    for name in sets.split(","):
        folder = DATA / name
        if not folder.is_dir():
            console.print(f"  {folder} not there: skipped", style="dim")
            continue
        n_clips, found_in, sampled, ms = run_set(detect, folder, frames, sheets / f"{name}.png" if sheets else None)
        table.add_row(name, str(n_clips), f"{found_in}/{sampled}", f"{100 * found_in / max(sampled, 1):.1f}",
                      f"{ms:.1f}")
        console.print(f"  done {name}", style="dim")
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
