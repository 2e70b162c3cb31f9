"""The CLIP image tower's speed and fidelity under ONNX Runtime int8 settings, side by side in one run.

Exports the tower once (fp32), quantises it with each candidate setting of
`onnxruntime.quantization.quantize_dynamic`, and times torch fp32 and every file on the same batch,
alternating round by round; prints images/s (median), the ratio to torch and the minimum cosine to
torch fp32. Random weights; the input is frames of ../shared/data/ud810_ps7 (open_clip's preprocessing)
when present, else random pixels, which hide the int16 saturation of non-VNNI CPUs. This chooses
settings; it says nothing of accuracy.
docs/clip-runtime.md holds the figures and the choice (`extract/onnx_export.py` QUANTIZATION).

    python benchmarks/onnx_quant_bench.py [--model ViT-B-32] [--batch 32] [--rounds 6]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "ud810_ps7"


def real_frames(n: int) -> list[np.ndarray] | None:
    """n RGB frames, 4 spread over each ud810 clip in name order, or None without the clips."""
    from extract.sampling import uniform_indices
    from extract.video import is_video_candidate, open_source

    frames: list[np.ndarray] = []
    for path in sorted(p for p in REAL.rglob("*") if is_video_candidate(p)):
        source = open_source(path)
        frames += [f.rgb for f in source.iter_frames(uniform_indices(source.probe().n_frames, 4))]
        if len(frames) >= n:
            return frames[:n]
    return None

# settings in extract/onnx_export.py QUANTIZATION's form (op_types None: every type quantize_dynamic knows)
CANDIDATES = {
    "QInt8, every op type": {"weight_type": "QInt8"},
    "QInt8, MatMul/Gemm": {"weight_type": "QInt8", "op_types": ["MatMul", "Gemm"]},
    "QInt8, MatMul/Gemm, per channel": {"weight_type": "QInt8", "op_types": ["MatMul", "Gemm"], "per_channel": True},
    "QInt8, MatMul/Gemm, per channel, 7-bit": {"weight_type": "QInt8", "op_types": ["MatMul", "Gemm"],
                                               "per_channel": True, "reduce_range": True},
    "QUInt8, every op type": {"weight_type": "QUInt8"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()

    import onnxruntime as ort

    from extract.clip_model import input_size, load_clip
    from extract.clip_runtime import cosines
    from extract.onnx_export import _export, quantize

    clip = load_clip(args.model, "none", random_seed=0, device="cpu")
    size = input_size(clip.model)
    frames = real_frames(args.batch)
    x = clip.preprocess_frames(frames) if frames else torch.randn(  # (N, 3, S, S)
        args.batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    ref = clip.encode_batch(x)[0]  # (N, D)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        _export(clip, False, fp32)
        files = {"ONNX fp32": fp32}
        for i, (name, settings) in enumerate(CANDIDATES.items()):
            files[name] = Path(tmp) / f"q{i}.onnx"
            quantize(fp32, files[name], settings)
        sessions = {n: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for n, p in files.items()}
        runs = {"torch fp32": lambda: clip.encode_batch(x)[0],
                **{n: (lambda s=s: s.run(None, {"pixels": x.numpy()})[0]) for n, s in sessions.items()}}
        cos = {n: float(cosines(f(), ref).min()) for n, f in runs.items()}  # also the warm-up
        times: dict[str, list[float]] = {n: [] for n in runs}
        for r in range(args.rounds):
            for n in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
                t0 = time.perf_counter()
                runs[n]()
                times[n].append(time.perf_counter() - t0)
    base = float(np.median(times["torch fp32"]))
    print(f"{args.model}, random weights, batch {args.batch} of {'ud810 frames' if frames else 'random pixels'}, "
          f"{torch.get_num_threads()} threads, medians of {args.rounds} rounds")
    print(f"{'':40s} {'images/s':>9s} {'x torch':>8s} {'min cosine':>11s}")
    for n in runs:
        t = float(np.median(times[n]))
        print(f"{n:40s} {args.batch / t:9.1f} {base / t:8.2f} {cos[n]:11.5f}")


if __name__ == "__main__":
    main()
