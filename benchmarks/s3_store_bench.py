"""The store on S3 against a local folder: one entry's write, the requests it makes, and fgm-train's load of a store.

A moto server runs in a process of its own on loopback (`moto[server]`, the test extra), so the
figures have no network in them: real S3 adds some 10-50 ms per request, which is why the request
counts are printed (they are what scales). Every request s3fs sends is counted by operation
(s3fs logs one line per call). Measured:

- write: `FeatureStore.write_entry` of one video's arrays at the default sizes (16 frames, ViT-B-32
  width, a 56 x 56 flow grid), each time a new key as extraction writes them; median of --writes;
- lease: what sharing adds per video (extract/claims.py: take, then release);
- load: `train.fitting.data.load_features` of a store of --entries such videos (median of --rounds);
  on S3 also through the local copy fgm-train makes (fgm_common/store/mirror.py), first and up to date;
  the store is written once per place by the same calls;
- extraction: the requests of a whole `fgm-extract` run per video (plan, lease, entry, failure
  record, release), from two runs of the tiny random model over 6 and 12 synthetic videos: the
  difference over 6 is what each more video costs, the rest is the run's own (config, text, run record).

    python benchmarks/s3_store_bench.py [--writes 30] [--entries 60] [--rounds 3]
The load average is printed: other work on the machine skews the figures.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER = """
import logging, threading
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.WARNING)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
threading.Event().wait()
"""
T, D, GRID, BINS = 16, 512, 56, 8  # the defaults' sizes: ExtractConfig and ViT-B-32


class Calls(logging.Handler):
    """Counts the S3 calls s3fs makes, by operation."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.ops: Counter = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("CALL:"):
            self.ops[record.args[0]] += 1

    def take(self) -> Counter:
        ops, self.ops = self.ops, Counter()
        return ops


def entry_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One video at the default sizes: clip (T, D), flow (T-1, 2, G, G), flow_hist (T-1, 2*bins), times."""
    from fgm_common.store import CLIP, FLOW, FLOW_HIST, FLOW_TS, FRAME_INDEX, TIMESTAMPS

    ts = np.arange(T) * 40.0
    return {CLIP: rng.normal(size=(T, D)).astype(np.float32), TIMESTAMPS: ts, FRAME_INDEX: np.arange(T) * 3,
            FLOW: rng.normal(size=(T - 1, 2, GRID, GRID)).astype(np.float16),
            FLOW_HIST: rng.random((T - 1, 2 * BINS), dtype=np.float32), FLOW_TS: np.stack([ts[:-1], ts[1:]], 1)}


def new_store(url: str):
    from fgm_common.config import ExtractConfig
    from fgm_common.store import FeatureStore

    return FeatureStore.create_or_open(url, ExtractConfig(clip_model="ViT-B-32", pretrained="none"), {})


def time_writes(url: str, n: int, calls: Calls) -> tuple[float, Counter]:
    """Median seconds of one write_entry, and the S3 calls of one."""
    store, rng = new_store(url), np.random.default_rng(0)
    arrays = [entry_arrays(rng) for _ in range(n)]
    times = []
    calls.take()
    for i, a in enumerate(arrays):
        t0 = time.perf_counter()
        store.write_entry(f"cls{i % 3}/video_{i:04d}.mp4", a, {"label": f"cls{i % 3}"})
        times.append(time.perf_counter() - t0)
    ops = calls.take()
    return statistics.median(times), Counter({k: v / n for k, v in ops.items()})


def time_lease(url: str, n: int, calls: Calls) -> tuple[float, Counter]:
    from extract.claims import Leases

    leases = Leases(url, "bench")
    times = []
    calls.take()
    for i in range(n):
        t0 = time.perf_counter()
        leases.take(f"cls0/lease_{i:04d}.mp4")
        leases.release(f"cls0/lease_{i:04d}.mp4")
        times.append(time.perf_counter() - t0)
    ops = calls.take()
    return statistics.median(times), Counter({k: v / n for k, v in ops.items()})


def fill(url: str, n: int) -> None:
    """A store of n entries of 3 classes, with a text side, as fgm-train reads it."""
    store, rng = new_store(url), np.random.default_rng(1)
    for i in range(n):
        store.write_entry(f"cls{i % 3}/video_{i:04d}.mp4", entry_arrays(rng), {"label": f"cls{i % 3}"})
    classes = ["cls0", "cls1", "cls2"]
    store.set_text(classes, classes, [0, 1, 2], rng.normal(size=(3, D)), ["scene"], rng.normal(size=(1, D)))


def time_load(url: str, rounds: int, calls: Calls) -> tuple[float, int]:
    from fgm_common.datasets import get_dataset
    from fgm_common.store import FeatureStore
    from train.fitting.data import load_features

    times = []
    calls.take()
    for _ in range(rounds):
        t0 = time.perf_counter()
        load_features(FeatureStore.open(url), get_dataset("folder"))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), sum(calls.take().values()) // rounds


def time_copied_load(url: str, cache: str, calls: Calls) -> list[tuple[str, float, int]]:
    """fgm-train's way (train/experiments/experiment.py): a local copy made, then loaded; first copy, then up to date."""
    from fgm_common.datasets import get_dataset
    from fgm_common.store import FeatureStore
    from fgm_common.store.mirror import local_copy
    from train.fitting.data import load_features

    out = []
    calls.take()
    for name in ("first copy + load", "up-to-date copy + load"):
        t0 = time.perf_counter()
        load_features(FeatureStore.open(local_copy(url, cache)), get_dataset("folder"))
        out.append((name, time.perf_counter() - t0, sum(calls.take().values())))
    return out


def extraction_requests(bucket: str, calls: Calls, tmp: str) -> tuple[Counter, Counter]:
    """S3 calls of one in-process extraction of 6 tiny videos and of 12: (per more video, per run)."""
    from extract.api import extract, make_config
    from extract.runner import RunOptions
    from extract.synth import SynthConfig, write_dataset

    config = make_config(clip_model="fgm-tiny-vit", pretrained="none", frames=6)
    totals = {}
    for per_class in (2, 4):
        videos = Path(tmp) / f"videos{per_class}"
        write_dataset(videos, SynthConfig(videos_per_class=per_class, classes=("circle_clockwise", "swing_slow",
                      "circle_counterclockwise"), size=48, min_frames=12, max_frames=20, seed=0), progress=False)
        calls.take()
        extract(videos, f"{bucket}/extract{per_class}.zarr", config, RunOptions(device="cpu"))
        totals[3 * per_class] = calls.take()
    per_video = Counter({k: (totals[12][k] - totals[6][k]) / 6 for k in totals[12] | totals[6]})
    run = Counter({k: totals[6][k] - 6 * per_video[k] for k in per_video})
    return +per_video, +run


def fmt(ops: Counter) -> str:
    return f"{sum(ops.values()):.1f} requests (" + ", ".join(f"{k} {v:g}" for k, v in sorted(ops.items())) + ")"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=30)
    parser.add_argument("--entries", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                          AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
        import s3fs

        calls = Calls()
        s3fs_log = logging.getLogger("s3fs")
        s3fs_log.addHandler(calls)
        s3fs_log.setLevel(logging.DEBUG)
        s3fs_log.propagate = False  # counted, not printed
        bucket = f"s3://bench-{uuid.uuid4().hex[:8]}"
        s3fs.S3FileSystem().mkdir(bucket[5:])
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        with tempfile.TemporaryDirectory() as tmp:
            places = {"local": f"{tmp}/", "s3 (moto, loopback)": f"{bucket}/"}
            for place, root in places.items():
                sec, ops = time_writes(root + "writes.zarr", args.writes, calls)
                print(f"write_entry  {place:20s} median {sec * 1e3:7.1f} ms" + (f"  {fmt(ops)}" if ops else ""))
            for place, root in places.items():
                sec, ops = time_lease(root + "writes.zarr", args.writes, calls)
                print(f"lease        {place:20s} median {sec * 1e3:7.1f} ms" + (f"  {fmt(ops)}" if ops else ""))
            for place, root in places.items():
                fill(root + "train.zarr", args.entries)
                sec, n = time_load(root + "train.zarr", args.rounds, calls)
                print(f"load {args.entries} entries {place:20s} median {sec:6.2f} s"
                      + (f"  {n} requests ({n / args.entries:.1f} per entry)" if n else ""))
            for name, sec, n in time_copied_load(f"{bucket}/train.zarr", f"{tmp}/cache", calls):
                print(f"load {args.entries} entries s3, {name:24s} {sec:6.2f} s  {n} requests")
            per_video, run = extraction_requests(bucket, calls, tmp)
            print(f"fgm-extract on s3: per video {fmt(per_video)}; per run {fmt(run)}")
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
