"""Stage-one throughput and memory, measured side by side in one run.

(a) frames/s of the CLIP image encoder alone on the sampled frames (already decoded and preprocessed);
(b) frames/s of the full extraction of the same videos (decode, flow, CLIP, zarr writes);
their ratio (goal: b within 10% of a, because decode, flow and writes overlap CLIP compute);
and peak RSS of extracting one short and one long video, each in a fresh process.

    python benchmarks/extract_bench.py [--model ViT-B-32] [--videos DIR] [--long-seconds 600]
Random CLIP weights (architecture is what costs time). Uses ../shared/data/ud810_ps7 when present.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "ud810_ps7"


def sampled_frames(items, config) -> list[np.ndarray]:
    from extract.video import open_source, uniform_indices

    frames = []
    for item in items:
        src = open_source(item.path)
        idx = uniform_indices(src.probe().n_frames, config.num_frames)
        frames += [f.rgb for f in src.iter_frames(idx)]
    return frames


def clip_alone(clip, frames: list[np.ndarray], batch: int) -> float:
    """frames/s of the image tower alone on preprocessed batches (preprocessing done beforehand)."""
    batches = [clip.preprocess_frames(frames[i : i + batch]) for i in range(0, len(frames), batch)]
    clip.encode_batch(batches[0])  # warm-up
    t0 = time.perf_counter()
    for b in batches:
        clip.encode_batch(b)
    return len(frames) / (time.perf_counter() - t0)


def full_pipeline(config, items, store_url: str, batch: int) -> tuple[float, int]:
    from extract.pipeline import Extractor
    from fgm_common.store import FeatureStore

    FeatureStore.create_or_open(store_url, config, {})
    ex = Extractor(config, store_url, device="cpu", batch_size=batch)
    ex.run(items[:1])  # warm-up (numba-free, but first-call allocations)
    t0 = time.perf_counter()
    results = ex.run(items[1:])
    dt = time.perf_counter() - t0
    return sum(r.frames for r in results) / dt, sum(not r.ok for r in results)


def peak_rss_mb(video: Path, model: str, extra: list[str]) -> float:
    """Peak RSS (MB) of a fresh process extracting one video."""
    code = (
        "import resource, sys\n"
        "from extract.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    with tempfile.TemporaryDirectory() as d:
        args = [sys.executable, "-c", code, str(video), "--out", f"{d}/s.zarr", "--clip-model", model,
                "--pretrained", "none", "-q", *extra]
        out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT).stdout
    return float(out.split("PEAK")[-1])


def write_video(path: Path, seconds: float, fps: float = 30.0, size=(640, 480)) -> Path:
    import cv2

    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    base = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    for t in range(int(seconds * fps)):
        writer.write(np.roll(base, t * 3, axis=1))
    writer.release()
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--videos", type=Path, default=REAL if REAL.exists() else None)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--long-seconds", type=float, default=600.0)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from extract.clip_model import load_clip
    from extract.flow import resolve_backend
    from extract.inputs import discover
    from fgm_common.config import ExtractConfig

    with tempfile.TemporaryDirectory() as tmp:
        videos = args.videos
        if videos is None:
            from extract.synth import SynthConfig, write_dataset

            videos = Path(tmp) / "synth"
            write_dataset(videos, SynthConfig(videos_per_class=4, size=224), progress=False)
        items = discover(videos).items
        config = ExtractConfig(clip_model=args.model, pretrained="none", num_frames=args.frames,
                               flow_backend=resolve_backend("auto"))
        clip = load_clip(args.model, "none", device="cpu")
        frames = sampled_frames(items[1:], config)
        a = clip_alone(clip, frames, args.batch)
        b, failed = full_pipeline(config, items, f"{tmp}/bench.zarr", args.batch)

        short = write_video(Path(tmp) / "short.avi", 10)
        long = write_video(Path(tmp) / "long.avi", args.long_seconds)
        tiny = ["--frames", str(args.frames)]
        rss = {
            "short_uniform": peak_rss_mb(short, args.model, tiny),
            "long_uniform": peak_rss_mb(long, args.model, tiny),
            "short_fps2": peak_rss_mb(short, args.model, ["--fps", "2"]),
            "long_fps2": peak_rss_mb(long, args.model, ["--fps", "2"]),
        }
    figures = {"model": args.model, "videos": str(videos), "n_videos": len(items) - 1, "frames": len(frames),
               "clip_alone_fps": a, "full_pipeline_fps": b, "ratio": b / a, "failed": failed,
               "long_seconds": args.long_seconds, "peak_rss_mb": rss}
    table = Table(title=f"extraction throughput ({args.model}, random weights, CPU)", show_header=False)
    table.add_row("videos / sampled frames", f"{len(items) - 1} / {len(frames)}")
    table.add_row("(a) CLIP image encoder alone, frames/s", f"{a:.2f}")
    table.add_row("(b) full extraction, frames/s", f"{b:.2f}")
    table.add_row("b / a", f"{b / a:.3f}")
    for k, v in rss.items():
        table.add_row(f"peak RSS MB, {k} ({'10 s' if k.startswith('short') else f'{args.long_seconds:.0f} s'} video)", f"{v:.0f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
