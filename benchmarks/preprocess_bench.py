"""CLIP preprocessing in PIL and in OpenCV (`--preprocess`), side by side: time, pixel and embedding difference.

On the same frames (4 spread over each ud810 clip when ../shared/data is present, else random
smooth frames of 640 x 480), in alternating rounds: ms per frame of each registered preprocessing
(one thread), the difference of their model inputs in 0-255 levels, and the cosine of the CLIP
embeddings they give (random weights: this says how far the inputs move the features, not how
either affects accuracy).

    python benchmarks/preprocess_bench.py [--model ViT-B-32] [--frames 64] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    import cv2
    import torch
    from onnx_quant_bench import real_frames

    from extract.clip_model import load_clip
    from extract.clip_runtime import cosines
    from extract.preprocess import PREPROCESSORS, geometry, preprocessor

    cv2.setNumThreads(1)  # as beside CPU CLIP in fgm-extract
    clip = load_clip(args.model, "none", 0, "cpu")
    frames = real_frames(args.frames)
    source = "ud810 frames"
    if frames is None:
        rng = np.random.default_rng(0)
        y, x = np.mgrid[0:480, 0:640]
        frames = [np.clip(np.stack([x % 255, y % 255, (x + y) % 255], -1) + rng.integers(-20, 21, (480, 640, 3)),
                          0, 255).astype(np.uint8) for _ in range(args.frames)]
        source = "random smooth frames"
    runs = {name: preprocessor(name, clip.preprocess) for name in sorted(PREPROCESSORS)}
    times: dict[str, list[float]] = {n: [] for n in runs}
    for r in range(args.rounds):
        for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            t0 = time.perf_counter()
            runs[name](frames)
            times[name].append(1000 * (time.perf_counter() - t0) / len(frames))
    inputs = {n: f(frames) for n, f in runs.items()}  # (N, 3, S, S) each
    levels = 255 * geometry(clip.preprocess).std[:, None, None]  # input units back to 0-255 levels
    diff = np.abs((inputs["pil"] - inputs["opencv"]).numpy()) * levels
    with torch.inference_mode():
        emb = {n: clip.encode_batch(x)[0] for n, x in inputs.items()}  # (N, D)
    cos = cosines(emb["opencv"], emb["pil"])
    print(f"{args.model}, random weights, {len(frames)} {source}, medians of {args.rounds} rounds, one thread")
    for n in runs:
        print(f"{n:8s} {np.median(times[n]):6.2f} ms a frame")
    print(f"opencv vs pil input: mean {diff.mean():.2f}, max {diff.max():.1f} levels of 255")
    print(f"opencv vs pil embedding cosine: min {cos.min():.5f}, median {np.median(cos):.5f}")


if __name__ == "__main__":
    main()
