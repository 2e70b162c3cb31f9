"""Stage-one throughput and memory, measured side by side in one run, for each CLIP runtime.

For each `--clip-runtime` (torch, onnx, onnx-int8 by default): (a) frames/s of the CLIP image
tower alone on the sampled frames (already decoded and preprocessed) and (b) frames/s of the full
extraction of the same videos (decode, flow, preprocessing, CLIP, zarr writes) with that runtime;
then b / a per runtime, and b of each runtime over (a) of torch fp32, today's limit (issue 12's
goals on a 2-core CPU: onnx-int8 >= 2.0, onnx >= 1.0). Also the extra peak RSS while extracting
one short and one long video (each in a fresh process, above the RSS after loading the towers).

Every (a) and (b) of a round run in turn, in reversed order in odd rounds, and ratios are medians of
per-round ratios, so slow drift in the machine's speed (large on shared machines) cancels. With
CLIP on the CPU nothing is idle to overlap with, so the benchmark also prints the producer's own
CPU time per frame (decode, flow, preprocessing; one thread) and the bound it sets on b / a.

    python benchmarks/extract_bench.py [--model ViT-B-32] [--videos DIR] [--runtimes torch,onnx,onnx-int8]
                                       [--preprocess pil] [--long-seconds 600] [--no-rss] [--device auto]
Random CLIP weights (architecture is what costs time). Uses ../shared/data/ud810_ps7 when present.
`--device auto` runs CLIP on CUDA when torch sees a GPU (flow then picks OpenCV CUDA if it has it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "ud810_ps7"


def sampled_frames(items, config) -> list[np.ndarray]:
    from extract.sampling import uniform_indices
    from extract.video import open_source

    frames = []
    for item in items:
        src = open_source(item.path)
        idx = uniform_indices(src.probe().n_frames, config.num_frames)
        frames += [f.rgb for f in src.iter_frames(idx)]
    return frames


def clip_alone(tower, batches: list) -> float:
    """frames/s of an image tower (extract.clip_runtime) alone on preprocessed (b, 3, S, S) batches,
    `tower.parallel` batches at a time, as fgm-extract runs it."""
    from concurrent.futures import ThreadPoolExecutor

    tower.encode(batches[0], False)  # warm-up
    with ThreadPoolExecutor(tower.parallel, initializer=tower.init_thread) as pool:  # each thread set as fgm-extract sets it
        t0 = time.perf_counter()
        list(pool.map(lambda b: tower.encode(b, False), batches))
        return sum(len(b) for b in batches) / (time.perf_counter() - t0)


def full_pipeline(config, items, store_url: str, batch: int, device: str, cache_dir: str) -> tuple[float, int]:
    """frames/s of Extractor.run over items[1:] (start-up and a first video excluded), and failures."""
    from extract.pipeline import Extractor
    from fgm_common.store import FeatureStore

    FeatureStore.create_or_open(store_url, config, {})
    ex = Extractor(config, store_url, device=device, batch_size=batch, cache_dir=cache_dir)
    ex.run(items[:1])  # warm-up (numba-free, but first-call allocations)
    t0 = time.perf_counter()
    results = ex.run(items[1:])
    dt = time.perf_counter() - t0
    return sum(r.frames for r in results) / dt, sum(not r.ok for r in results)


def producer_cpu_ms(config, items, store_url: str) -> float:
    """CPU ms per sampled frame of the producer's work alone (hash, probe, decode, flow, preprocessing)."""
    import torch

    from extract.batching import Frame
    from extract.pipeline import Extractor
    from fgm_common.store import FeatureStore

    FeatureStore.create_or_open(store_url, config, {})
    ex = Extractor(config, store_url, device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # process CPU time then counts this one thread, not idle pool threads
    try:
        t0 = time.process_time()
        frames = sum(isinstance(msg, Frame) for _, msg in ex._messages(items))  # one decode thread on CPU
        return 1000 * (time.process_time() - t0) / frames
    finally:
        torch.set_num_threads(threads)


def producer_fps(config, items, store_url: str, threads: int) -> float:
    """frames/s of the producer side alone (no CLIP) with `threads` decode threads: what can feed a GPU."""
    from extract.batching import Frame
    from extract.pipeline import Extractor
    from fgm_common.store import FeatureStore

    FeatureStore.create_or_open(store_url, config, {})
    ex = Extractor(config, store_url, device="cpu", decode_threads=threads)
    t0 = time.perf_counter()
    frames = sum(isinstance(msg, Frame) for _, msg in ex._messages(items))
    return frames / (time.perf_counter() - t0)


RSS_PROBE = """
import sys, threading, time, psutil
from extract.inputs import VideoItem
from extract.pipeline import Extractor
from fgm_common.config import ExtractConfig
from fgm_common.store import FeatureStore
video, store, model, sampling, frames, fps, device = sys.argv[1:8]
cfg = ExtractConfig(clip_model=model, pretrained="none", sampling=sampling, num_frames=int(frames), fps=float(fps))
FeatureStore.create_or_open(store, cfg, {})
ex = Extractor(cfg, store, device=device)
proc, peak, stop = psutil.Process(), [0], threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], proc.memory_info().rss)
        time.sleep(0.02)
base = proc.memory_info().rss
threading.Thread(target=sample, daemon=True).start()
res = ex.run([VideoItem("v", video)])
stop.set()
print("RSS", base / 2**20, (peak[0] - base) / 2**20, res[0].ok, res[0].frames)
"""


def extraction_rss_mb(video: Path, model: str, sampling: str, frames: int, fps: float, device: str) -> dict:
    """RSS of a fresh process after loading the towers (base) and the extra peak while extracting one video."""
    with tempfile.TemporaryDirectory() as d:
        args = [sys.executable, "-c", RSS_PROBE, str(video), f"{d}/s.zarr", model, sampling, str(frames), str(fps), device]
        out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT).stdout.split("RSS")[-1].split()
    return {"base_mb": float(out[0]), "extra_peak_mb": float(out[1]), "ok": out[2] == "True", "frames": int(out[3])}


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
    ap.add_argument("--rounds", type=int, default=3, help="alternating (a)/(b) rounds; medians are reported")
    ap.add_argument("--device", default="auto", help="where CLIP runs: auto (CUDA when present), cpu, cuda")
    ap.add_argument("--runtimes", default="torch,onnx,onnx-int8", help="--clip-runtime values, comma-separated")
    ap.add_argument("--preprocess", default="pil", help="--preprocess of the full extraction")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-memory probes (minutes on a CPU)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from dataclasses import replace

    from extract.clip_model import load_clip
    from extract.clip_runtime import image_tower
    from extract.flow import resolve_backend
    from extract.inputs import discover
    from extract.preprocess import preprocessor
    from fgm_common.config import ExtractConfig, FlowConfig
    from fgm_common.options import resolve_device

    runtimes = args.runtimes.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        videos = args.videos
        if videos is None:
            from extract.synth import SynthConfig, write_dataset

            videos = Path(tmp) / "synth"
            write_dataset(videos, SynthConfig(videos_per_class=4, size=224), progress=False)
        items = discover(videos).items
        config = ExtractConfig(clip_model=args.model, pretrained="none", num_frames=args.frames,
                               flow=FlowConfig(backend=resolve_backend("auto")), preprocess=args.preprocess)
        device = resolve_device(args.device)
        clip = load_clip(args.model, "none", device=device)
        towers = {rt: image_tower(rt, clip, False, f"{tmp}/cache") for rt in runtimes}  # exports once
        frames = sampled_frames(items[1:], config)
        prep = preprocessor(args.preprocess, clip.preprocess)
        batches = [prep(frames[i : i + args.batch]) for i in range(0, len(frames), args.batch)]
        runs_a: dict[str, list[float]] = {rt: [] for rt in runtimes}
        runs_b: dict[str, list[float]] = {rt: [] for rt in runtimes}
        jobs = [(part, rt) for rt in runtimes for part in "ab"]
        for r in range(args.rounds):
            for part, rt in (jobs if r % 2 == 0 else jobs[::-1]):
                if part == "a":
                    runs_a[rt].append(clip_alone(towers[rt], batches))
                else:
                    cfg = replace(config, clip_runtime=rt)
                    fps_b, failed = full_pipeline(cfg, items, f"{tmp}/bench{r}-{rt}.zarr", args.batch, device,
                                                  f"{tmp}/cache")
                    runs_b[rt].append(fps_b)
        med = {rt: (float(np.median(runs_a[rt])), float(np.median(runs_b[rt]))) for rt in runtimes}
        per_round = {rt: [y / x for x, y in zip(runs_a[rt], runs_b[rt])] for rt in runtimes}
        base = "torch" if "torch" in runtimes else runtimes[0]
        vs_base = {rt: float(np.median([y / x for x, y in zip(runs_a[base], runs_b[rt])])) for rt in runtimes}
        a = med[base][0]  # torch fp32 CLIP alone: the producer bound below is against it
        cpu = {}
        if device == "cpu":  # the producer can only take CLIP's time when they share the cores
            cpu["clip_cpu_ms_per_frame"] = torch.get_num_threads() * 1000.0 / a  # every intra-op thread busy
            cpu["producer_cpu_ms_per_frame"] = producer_cpu_ms(config, items[1:], f"{tmp}/producer.zarr")
            cpu["ratio_if_producer_takes_clip_time"] = cpu["clip_cpu_ms_per_frame"] / (
                cpu["clip_cpu_ms_per_frame"] + cpu["producer_cpu_ms_per_frame"])
        # beside a GPU the producer is the limit: how its throughput grows with decode threads
        threads = sorted({1, min(4, os.cpu_count() or 1)})
        feed = {n: producer_fps(config, items[1:], f"{tmp}/feed{n}.zarr", n) for n in threads}

        # fps mode is also run at a quarter of the long length: past one full CLIP batch (32 frames),
        # the extra peak should stay flat in length apart from the video's own output (~15 KB a frame)
        lengths = {"short": 10.0, "quarter": args.long_seconds / 4, "long": args.long_seconds}
        videos_ = {} if args.no_rss else {k: write_video(Path(tmp) / f"{k}.avi", sec) for k, sec in lengths.items()}
        rss = {} if args.no_rss else {
            "short_uniform": extraction_rss_mb(videos_["short"], args.model, "uniform", args.frames, 0, device),
            "long_uniform": extraction_rss_mb(videos_["long"], args.model, "uniform", args.frames, 0, device),
            "short_fps1": extraction_rss_mb(videos_["short"], args.model, "fps", args.frames, 1.0, device),
            "quarter_fps1": extraction_rss_mb(videos_["quarter"], args.model, "fps", args.frames, 1.0, device),
            "long_fps1": extraction_rss_mb(videos_["long"], args.model, "fps", args.frames, 1.0, device),
        }
    figures = {"model": args.model, "videos": str(videos), "n_videos": len(items) - 1, "frames": len(frames),
               "preprocess": args.preprocess, "clip_alone_fps": {rt: m[0] for rt, m in med.items()},
               "full_pipeline_fps": {rt: m[1] for rt, m in med.items()}, "full_over_own_clip": per_round,
               f"full_over_{base}_clip_alone": vs_base, "failed": failed, "rounds_a": runs_a, "rounds_b": runs_b,
               "device": device, "flow_backend": config.flow.backend, **cpu,
               "producer_alone_fps_by_decode_threads": feed,
               "long_seconds": args.long_seconds, "peak_rss_mb": rss}
    table = Table(title=f"extraction throughput ({args.model}, random weights, CLIP on {device}, "
                        f"flow {config.flow.backend}, preprocess {args.preprocess})", show_header=False)
    table.add_row("videos / sampled frames", f"{len(items) - 1} / {len(frames)}")
    for rt, (fa, fb) in med.items():
        table.add_row(f"{rt}: (a) CLIP tower alone / (b) full extraction, frames/s", f"{fa:.2f} / {fb:.2f}")
        table.add_row(f"{rt}: b / own a; b / {base} a (medians of per-round ratios)",
                      f"{np.median(per_round[rt]):.3f}; {vs_base[rt]:.3f}")
        table.add_row(f"{rt}: rounds (a) / (b), frames/s",
                      " ".join(f"{x:.1f}" for x in runs_a[rt]) + " / " + " ".join(f"{x:.1f}" for x in runs_b[rt]))
    if cpu:
        table.add_row("CPU ms per frame: CLIP (all threads) / producer (one thread)",
                      f"{cpu['clip_cpu_ms_per_frame']:.1f} / {cpu['producer_cpu_ms_per_frame']:.1f}")
        table.add_row("b / a if every producer CPU ms came out of CLIP's time",
                      f"{cpu['ratio_if_producer_takes_clip_time']:.3f}")
    table.add_row("producer alone (no CLIP), frames/s by decode threads",
                  ", ".join(f"{n}: {v:.1f}" for n, v in feed.items()))
    for k, v in rss.items():
        length = f"{lengths[k.split('_')[0]]:.0f} s"
        table.add_row(f"{k} ({length} video, {v['frames']} frames): RSS after loading / extra peak while extracting, MB",
                      f"{v['base_mb']:.0f} / {v['extra_peak_mb']:.0f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
