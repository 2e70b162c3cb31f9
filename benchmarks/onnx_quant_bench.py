"""The CLIP image tower's speed and fidelity under ONNX Runtime int8 settings, side by side in one run.

Exports the tower once (fp32), quantises it with each candidate setting of
`onnxruntime.quantization.quantize_dynamic`, and times torch fp32 and every file on the same batch,
alternating round by round; prints images/s (median), the ratio to torch and the minimum cosine to
torch fp32. Random weights and random input: this chooses settings, it says nothing of accuracy.
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

# settings in extract/onnx_export.py QUANTIZATION's form (op_types None: every type quantize_dynamic knows)
CANDIDATES = {
    "QInt8, every op type": {"weight_type": "QInt8"},
    "QInt8, MatMul/Gemm": {"weight_type": "QInt8", "op_types": ["MatMul", "Gemm"]},
    "QInt8, MatMul/Gemm, per channel": {"weight_type": "QInt8", "op_types": ["MatMul", "Gemm"], "per_channel": True},
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
    x = torch.randn(args.batch, 3, size, size, generator=torch.Generator().manual_seed(0))  # (N, 3, S, S)
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
    print(f"{args.model}, random weights, batch {args.batch}, {torch.get_num_threads()} threads, "
          f"medians of {args.rounds} rounds")
    print(f"{'':34s} {'images/s':>9s} {'x torch':>8s} {'min cosine':>11s}")
    for n in runs:
        t = float(np.median(times[n]))
        print(f"{n:34s} {args.batch / t:9.1f} {base / t:8.2f} {cos[n]:11.5f}")


if __name__ == "__main__":
    main()
