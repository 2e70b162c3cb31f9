"""Which flow pairs should be the default? Measured side by side in one run.

Extracts the same fgm-synth videos twice, once with flow between consecutive sampled frames
(`--flow-pairs sampled`, Eq. 5 literally) and once between each sampled frame and its next native
frame (`--flow-pairs native`), then trains the same `full` model on each store with the same seeds
and split, and prints validation accuracy (mean ± std over seeds).

    python benchmarks/flow_pairs_bench.py [--per-class 40] [--epochs 30] [--seeds 0,1,2] [--videos DIR]
The synthetic classes differ only in motion, so CLIP weights do not matter: the tiny random-weight
CLIP is used to keep extraction fast. With --videos, a folder per class of real clips is used instead.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def extract(videos: Path, out: Path, pairs: str, frames: int) -> None:
    from extract.api import extract as run, make_config
    from fgm_common.config import FlowConfig

    config = make_config(frames=frames, clip_model="fgm-tiny-vit", pretrained="none",
                         flow=FlowConfig(backend="auto", pairs=pairs))
    summary = run(videos, str(out), config)
    if summary.failed:
        raise SystemExit(f"{len(summary.failed)} videos failed to extract: {summary.failed[0]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--videos", type=Path, help="a labelled folder instead of fgm-synth data")
    ap.add_argument("--split", default="auto")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from extract.synth import SynthConfig, write_dataset
    from train.experiments.experiment import Experiment, run_experiment
    from train.fitting.splits import SplitSpec
    from train.fitting.config import TrainConfig

    seeds = tuple(int(s) for s in args.seeds.split(","))
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        videos = args.videos
        if videos is None:
            videos = Path(tmp) / "videos"
            write_dataset(videos, SynthConfig(videos_per_class=args.per_class, size=args.size), progress=False)
        for pairs in ("sampled", "native"):
            store = Path(tmp) / f"{pairs}.zarr"
            extract(videos, store, pairs, args.frames)
            exp = Experiment(store=str(store), out=Path(tmp) / f"run-{pairs}", seeds=seeds, variants=("full",),
                             quiet=True, split=SplitSpec(protocol=args.split),
                             train=TrainConfig(epochs=args.epochs, hidden=128, motion_dim=128))
            res = run_experiment(exp)["variants"]["full"]
            rows[pairs] = {"accuracy": res["mean"]["accuracy"], "accuracy_std": res["std"]["accuracy"],
                           "f1": res["mean"]["f1"], "per_seed": {s: r["accuracy"] for s, r in res["per_seed"].items()}}
    table = Table(title=f"flow pairs: validation accuracy of `full`, {videos if args.videos else 'fgm-synth'}, "
                        f"seeds {list(seeds)}, {args.epochs} epochs, tiny random-weight CLIP")
    for col in ("flow pairs", "accuracy %", "macro F1 %", "per seed"):
        table.add_column(col)
    for pairs, r in rows.items():
        table.add_row(pairs, f"{100 * r['accuracy']:.1f} ± {100 * r['accuracy_std']:.1f}", f"{100 * r['f1']:.1f}",
                      ", ".join(f"{100 * v:.0f}" for v in r["per_seed"].values()))
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
