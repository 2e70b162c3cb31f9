"""The real `fgm-extract` command against the sequential loop a user would write instead, side by side.

The loop, per video: decode every frame with cv2, take 16 uniformly (segment midpoints, as fgm),
open_clip's preprocessing, `encode_image` on the 16 at once, decode again, Farneback on 128-px gray
frames for the sampled-to-next-native pairs, `np.save` of both. Both run as fresh processes on the
same clips (ViT-B-32, random weights), in alternating order round by round, and the benchmark prints
wall time and frames/s of each, the loop with torch and each `--clip-runtime` of fgm-extract, and the
ratios to the loop (goals of issue 12: torch >= 1.0x, onnx-int8 >= 2x).

    python benchmarks/extract_vs_loop.py [--videos DIR] [--rounds 2] [--runtimes torch,onnx-int8,onnx-int8+opencv]

A runtime written `RUNTIME+opencv` runs fgm-extract with `--preprocess opencv` as well.

Uses ../shared/data/ud810_ps7 when present. Wall times include start-up (imports, model build,
the ONNX export on the first onnx run of a fresh cache, which is why each runtime runs once
before the rounds).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "ud810_ps7"
FRAMES = 16

LOOP = r"""
import sys, pathlib, cv2, numpy as np, torch, open_clip
from PIL import Image
videos, out, model_name = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
torch.manual_seed(0)
model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None)
model.eval()
out.mkdir(parents=True, exist_ok=True)
def read_all(path):
    cap, frames = cv2.VideoCapture(str(path)), []
    ok, f = cap.read()
    while ok:
        frames.append(f)
        ok, f = cap.read()
    return frames
n_frames = 0
for path in sorted(p for p in videos.rglob("*") if p.suffix.lower() in {".mp4", ".avi", ".mov", ".mkv"}):
    frames = read_all(path)
    idx = ((np.arange(16) + 0.5) * len(frames) / 16).astype(int)
    rgb = [cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB) for i in idx]
    with torch.inference_mode():
        emb = model.encode_image(torch.stack([preprocess(Image.fromarray(f)) for f in rgb])).numpy()
    frames = read_all(path)  # decoded again, as a simple script would for the flow
    def gray(f):
        h, w = f.shape[:2]
        return cv2.cvtColor(cv2.resize(f, (128 * w // min(h, w), 128 * h // min(h, w))), cv2.COLOR_BGR2GRAY)
    flows = [cv2.calcOpticalFlowFarneback(gray(frames[i]), gray(frames[min(i + 1, len(frames) - 1)]), None,
                                          0.5, 3, 15, 3, 5, 1.2, 0) for i in idx]
    np.save(out / f"{path.stem}_clip.npy", emb)
    np.save(out / f"{path.stem}_flow.npy", np.stack(flows))
    n_frames += len(idx)
print("FRAMES", n_frames)
"""


def run_loop(videos: Path, out: Path, model: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LOOP, str(videos), str(out), model], capture_output=True,
                          text=True, cwd=ROOT, check=True)
    return time.perf_counter() - t0, int(done.stdout.split("FRAMES")[-1])


def run_fgm(videos: Path, out: Path, model: str, spec: str, cache: Path) -> float:
    runtime, _, preprocess = spec.partition("+")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "extract.cli", str(videos), "--out", str(out), "--clip-model", model,
                    "--pretrained", "none", "--frames", str(FRAMES), "--clip-runtime", runtime,
                    "--preprocess", preprocess or "pil",
                    "--clip-cache-dir", str(cache), "--quiet"], capture_output=True, text=True, cwd=ROOT, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=REAL if REAL.exists() else None)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--runtimes", default="torch,onnx-int8")
    args = ap.parse_args()
    runtimes = args.runtimes.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        videos = args.videos
        if videos is None:
            from extract.synth import SynthConfig, write_dataset

            videos = Path(tmp) / "synth"
            write_dataset(videos, SynthConfig(videos_per_class=4, size=224), progress=False)
        cache = Path(tmp) / "cache"
        for rt in runtimes:  # warm the export cache and the page cache; not timed
            run_fgm(videos, Path(tmp) / f"warm-{rt}.zarr", args.model, rt, cache)
        times: dict[str, list[float]] = {"loop": [], **{rt: [] for rt in runtimes}}
        frames = 0
        for r in range(args.rounds):
            order = ["loop", *runtimes] if r % 2 == 0 else [*runtimes[::-1], "loop"]
            for name in order:
                if name == "loop":
                    dt, frames = run_loop(videos, Path(tmp) / f"loop{r}", args.model)
                else:
                    dt = run_fgm(videos, Path(tmp) / f"{name}{r}.zarr", args.model, name, cache)
                times[name].append(dt)
                print(f"round {r} {name:10s} {dt:6.1f} s", flush=True)
    loop = float(np.median(times["loop"]))
    print(f"\n{frames} sampled frames; medians over {args.rounds} rounds (wall, start-up included)")
    print(f"{'':30s} {'wall s':>8s} {'frames/s':>9s} {'vs loop':>8s}")
    print(f"{'hand-written loop':30s} {loop:8.1f} {frames / loop:9.1f} {1.0:8.2f}x")
    for rt in runtimes:
        t = float(np.median(times[rt]))
        print(f"{'fgm-extract ' + rt:30s} {t:8.1f} {frames / t:9.1f} {loop / t:8.2f}x")


if __name__ == "__main__":
    main()
