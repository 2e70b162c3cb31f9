"""Two fgm-extract processes sharing one store against one process alone: wall times, the split, the lease cost.

Each round extracts the same videos twice on fresh stores, in turn (the order flips every round, so
slow drift in a shared machine's speed cancels): once by one process, once by two processes started
at once on one store, made empty just before (wall time until both exit; their run records must
split the videos between them, each once). It then prints the medians, the speed-up, the per-video
time of one process and the time one video's lease costs on the store (take, renew, release: what
sharing adds per video).
The load average is printed at every run: other work on the machine skews the figures.

    python benchmarks/sharing_bench.py [--videos DIR] [--model ViT-B-32] [--rounds 2] [--out DIR]
Random CLIP weights (the architecture is what costs time). Uses ../shared/data/ud810_ps7 by default.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "ud810_ps7"


def command(videos: Path, out: Path, model: str) -> list[str]:
    return [sys.executable, "-m", "extract.cli", str(videos), "--out", str(out), "--clip-model", model,
            "--pretrained", "none", "--device", "cpu", "--quiet"]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(videos: Path, out: Path, model: str, processes: int) -> tuple[float, list[dict]]:
    """Wall seconds until `processes` fgm-extract processes started at once on a fresh store all exit,
    and their run records."""
    from extract.api import make_config
    from fgm_common.store import FeatureStore

    shutil.rmtree(out, ignore_errors=True)
    # The empty store is made first, as it is for every configuration: two processes creating one store
    # at the same instant can collide (one sees the other's folders before its version attribute).
    FeatureStore.create_or_open(str(out), make_config(clip_model=model, pretrained="none"), {})
    started = time.perf_counter()
    procs = [subprocess.Popen(command(videos, out, model), cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(processes)]
    outputs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - started
    if any(p.returncode for p in procs):
        raise SystemExit("fgm-extract failed:\n" + "\n".join(outputs))
    return wall, FeatureStore.open(str(out)).runs()


def seconds_per_video(store: Path) -> float:
    """Steady-state seconds per video of a run: the span between its first and last entry written, over the
    videos between them (start-up, torch import and tower loading excluded; a local store's file times)."""
    done = sorted(p.stat().st_mtime for p in (store / "videos").glob("*/zarr.json"))
    return (done[-1] - done[0]) / max(len(done) - 1, 1)


def lease_ms(store: Path, n: int = 200) -> float:
    """Milliseconds one video's lease costs on `store`: take, one renewal, release."""
    from extract.claims import Leases

    leases = Leases(str(store), "bench")
    keys = [f"bench/{i}.mp4" for i in range(n)]
    started = time.perf_counter()
    for key in keys:
        leases.take(key)
    leases.renew()
    for key in keys:
        leases.release(key)
    return (time.perf_counter() - started) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, default=REAL)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="Folder for the stores (a temporary one by default).")
    args = parser.parse_args()
    from extract.inputs import discover

    n = len(discover(args.videos).items)
    work = args.out or Path(tempfile.mkdtemp(prefix="sharing_bench_"))
    walls: dict[int, list[float]] = {1: [], 2: []}
    per_video: list[float] = []
    for r in range(args.rounds):
        for processes in ((1, 2) if r % 2 == 0 else (2, 1)):
            before = load()
            wall, runs = timed(args.videos, work / f"p{processes}.zarr", args.model, processes)
            split = [run["extracted"] for run in runs]
            if sum(split) != n or len(runs) != processes:
                raise SystemExit(f"{processes} processes extracted {split} of {n} videos")
            walls[processes].append(wall)
            if processes == 1:
                per_video.append(seconds_per_video(work / "p1.zarr"))
            print(f"round {r} {processes} process(es): {wall:.1f} s wall, extracted {split}, "
                  f"load average {before} before, {load()} after", flush=True)
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    print(f"videos: {n} ({args.videos}), model {args.model}, random weights, {os.cpu_count()} cores")
    print(f"one process: {one:.1f} s wall (median of {len(walls[1])}); two processes: {two:.1f} s wall "
          f"(median of {len(walls[2])}); speed-up {one / two:.2f}x")
    print(f"one process, seconds per video between its first and last entry: {statistics.median(per_video):.3f}")
    print(f"a video's lease on a local store (take, renew, release): {lease_ms(work / 'p1.zarr'):.2f} ms")
    if args.out is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
