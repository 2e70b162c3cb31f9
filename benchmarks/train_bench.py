"""Stage-two training throughput over a cached store, and the share of each step spent waiting for data.

Builds a feature store of N entries whose feature VALUES ARE SYNTHETIC (random arrays of the real
shapes a default ViT-B-32 extraction writes: clip (16, 512) f32, flow (16, 2, 56, 56) f16, flow_hist
(16, 16) f32, random text embeddings), so the figures time the training loop, never accuracy. Then:
load_features (s), and Trainer.fit of the `full` and `no_motion` variants (batch 32, device auto):
videos/s, the data-wait share of each step (FoldRun.data_wait_share; goal under 10%), and how the
epoch time splits between steps, the per-epoch k-means refresh (Eq. 13) and the checkpoint save.
The `full` variant runs without its CLIP-tower parts (token adapters, learnable text context): a
synthetic store has neither tokens nor real CLIP weights, and both would only make steps longer.

    python benchmarks/train_bench.py [--entries 2000] [--epochs 1] [--json OUT] [--store DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

T, D, GRID, BINS, CLASSES = 16, 512, 56, 8, 10  # frames, CLIP dim, flow grid, histogram bins, classes
VARIANTS = ("full", "no_motion")


def build_store(url: str, entries: int, seed: int = 0) -> float:
    """Write `entries` synthetic entries (labels = folder names) and random text; returns seconds taken."""
    from fgm_common.config import ExtractConfig, FlowConfig
    from fgm_common.store import FeatureStore
    from fgm_common.texts import SCENE_BANK, class_sentences

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    config = ExtractConfig(num_frames=T, pretrained="none", flow=FlowConfig(grid=GRID, hist_bins=BINS))
    store = FeatureStore.create_or_open(url, config, {"synthetic": "train_bench.py: random feature values"})
    have = {e.key for e in store.entries()}
    classes = [f"action_{c:02d}" for c in range(CLASSES)]
    for i in range(entries):
        key = f"{classes[i % CLASSES]}/video_{i:05d}.mp4"
        if key in have:
            continue
        arrays = {
            "clip": rng.standard_normal((T, D), dtype=np.float32),  # (T, D)
            "flow": rng.standard_normal((T, 2, GRID, GRID), dtype=np.float32).astype(np.float16),  # (T, 2, G, G)
            "flow_hist": rng.random((T, 2 * BINS), dtype=np.float32),  # (T, 2*bins)
        }
        store.write_entry(key, arrays, {"label": classes[i % CLASSES], "synthetic": True})
    sentences, owner = class_sentences(classes, config.templates, {})
    store.set_text(classes, sentences, owner, rng.standard_normal((len(sentences), D), dtype=np.float32),
                   list(SCENE_BANK), rng.standard_normal((len(SCENE_BANK), D), dtype=np.float32))
    return time.perf_counter() - t0


def gather_ms(fs, batch: int, device: torch.device, reps: int = 30) -> float:
    """Mean ms to gather one random batch and move it to the device: what each step waits for."""
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(reps):
        idx = torch.randperm(len(fs), generator=gen)[:batch]
        _ = {k: v.to(device) for k, v in fs.batch(idx).items()}
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - t0) / reps


def _timed(obj, name: str, totals: dict) -> None:
    """Wrap obj.name so that its wall time adds up in totals[name] (measurement only)."""
    fn = getattr(obj, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[name] = totals.get(name, 0.0) + time.perf_counter() - t0

    setattr(obj, name, wrapper)


def fit_variant(fs, name: str, epochs: int, out: Path) -> dict:
    """Trainer.fit on every entry for `epochs`: videos/s, data-wait share, k-means and save shares."""
    from train.fitting.splits import Fold
    from train.fitting.config import TrainConfig
    from train.fitting.trainer import Trainer, new_model
    from train.experiments.variants import get_variant

    cfg = TrainConfig(variant=name, epochs=epochs, batch_size=32, device="auto")
    model = new_model(fs, cfg, get_variant(name))  # no CLIP parts: see the module docstring
    fold = Fold("all", np.arange(len(fs)), np.zeros(0, dtype=np.int64))
    trainer = Trainer(fs, fold, cfg, model, out / name / "checkpoint.pt")
    totals: dict[str, float] = {}
    _timed(trainer, "refresh_clusters", totals)
    _timed(trainer, "save", totals)
    run = trainer.fit()
    secs = run.train_seconds
    return {"variant": name, "epochs": epochs, "train_seconds": secs, "videos_per_s": epochs * len(fs) / secs,
            "data_wait_share": run.data_wait_share, "kmeans_share": totals.get("refresh_clusters", 0.0) / secs,
            "save_share": totals.get("save", 0.0) / secs, "device": str(trainer.device)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=2000, help="synthetic store entries (default 2000)")
    ap.add_argument("--epochs", type=int, default=1, help="epochs per variant (default 1)")
    ap.add_argument("--store", type=Path, help="keep the synthetic store here (reused when rerun)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from fgm_common.datasets import get_dataset
    from fgm_common.store import FeatureStore
    from train.parts.align import dtw_weights
    from train.fitting.data import load_features

    console = Console()
    dtw_weights(torch.randn(1, 4, 8), torch.randn(1, 3, 8))  # numba compiles tslearn's DTW once (~7 s), untimed
    with tempfile.TemporaryDirectory(prefix="fgm-train-bench-") as tmp:
        url = str(args.store or Path(tmp) / "store")
        build_s = build_store(url, args.entries)
        fs = load_features(FeatureStore.open(url), get_dataset("folder"))
        if len(fs) != args.entries:
            raise SystemExit(f"{url} holds {len(fs)} entries, not {args.entries}: use another --store")
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # what device "auto" picks
        wait_ms = gather_ms(fs, 32, device)
        runs = [fit_variant(fs, name, args.epochs, Path(tmp) / "runs") for name in VARIANTS]
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    figures = {"synthetic_feature_values": True, "entries": args.entries, "shapes": fs.dims,
               "store_build_seconds": build_s, "load_seconds": fs.load_seconds, "gather_ms_per_batch": wait_ms,
               "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load_average_1min": load_avg,
               "platform": platform.platform(), "runs": runs}

    table = Table(title=f"training over {args.entries} cached entries (SYNTHETIC feature values), batch 32, "
                        f"{runs[0]['device']}")
    for col in ("variant", "load s", "videos/s", "data-wait share", "k-means share", "save share", "epochs"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for r in runs:
        table.add_row(r["variant"], f"{fs.load_seconds:.2f}", f"{r['videos_per_s']:.1f}",
                      f"{100 * r['data_wait_share']:.2f}%", f"{100 * r['kmeans_share']:.1f}%",
                      f"{100 * r['save_share']:.1f}%", str(r["epochs"]))
    console.print(table)
    console.print(f"feature values are SYNTHETIC (random arrays of the real shapes {fs.dims}); `full` runs without "
                  f"token adapters and text context. Store built in {build_s:.1f} s; one batch gathered and moved "
                  f"in {wait_ms:.1f} ms; {torch.get_num_threads()} torch threads on {os.cpu_count()} CPUs, "
                  f"1-min load average {load_avg:.2f}.")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
