"""How well random-weight CLIP tells the mixed set's looks apart, for a few look sizes, side by side.

The mixed set (`fgm-synth --task mixed`) is meant to have looks that even random-weight CLIP features
separate (issue 10), so that the set measures fusion and not the weakness of random features. This
renders clips of the three looks (one motion: looks are what is measured) with each shape radius
range, embeds 8 uniformly sampled frames per clip with the CLIP image tower (random weights, seed 0,
as `fgm-extract --pretrained none`), time-pools, and prints the 5-fold cross-validated accuracy of a
standardised logistic regression (C = 1, as the `linear_probe` baseline) on the look.

    python benchmarks/synth_looks.py [--clips 40] [--seed 1] [--model ViT-B-32] [--radii 0.12:0.16,0.20:0.25]

Use a seed other than the report sets' (0) so the choice is not made on them.
"""

from __future__ import annotations

import argparse
import dataclasses
from unittest import mock

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

import extract.synth as synth
from extract.clip_model import load_clip
from extract.synth_classes import LOOKS, MIXED_LOOKS, TASKS


def look_features(clip, radius: tuple[float, float], clips: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Time-pooled embeddings (N, D) of `clips` clips per look, drawn with `radius`, and look ids (N,)."""
    looks = {name: dataclasses.replace(LOOKS[name], radius=radius) for name in MIXED_LOOKS}
    cfg = synth.SynthConfig(task="mixed", seed=seed)
    clockwise = {spec.look: name for name, spec in TASKS["mixed"].items() if spec.motion == "circle_clockwise"}
    x, y = [], []
    with mock.patch.dict(synth.LOOKS, looks):
        for look_id, look in enumerate(MIXED_LOOKS):
            label = clockwise[look]
            for i in range(clips):
                frames = synth.render_clip(label, synth.clip_rng(seed, label, i), cfg)  # (T, H, W, 3)
                idx = np.linspace(0, len(frames) - 1, 8).round().astype(int)
                emb, _ = clip.encode_frames([frames[j] for j in idx])  # (8, D)
                x.append(emb.mean(0))
                y.append(look_id)
    return np.stack(x), np.array(y)


def probe_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """5-fold cross-validated accuracy of a standardised logistic regression (C = 1)."""
    accs = []
    for tr, va in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
        model = LogisticRegression(C=1.0, max_iter=5000).fit((x[tr] - mu) / sd, y[tr])
        accs.append(float((model.predict((x[va] - mu) / sd) == y[va]).mean()))
    return float(np.mean(accs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=40, help="clips per look")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--radii", default="0.12:0.16,0.16:0.20,0.18:0.22,0.20:0.25",
                    help="comma-separated lo:hi circumradius ranges, as fractions of the frame")
    args = ap.parse_args()
    clip = load_clip(args.model, "none", random_seed=0, device="cpu")
    print(f"{args.model}, random weights, {args.clips} clips per look, seed {args.seed}")
    print("radius range   look accuracy (5-fold CV)")
    for spec in args.radii.split(","):
        lo, hi = (float(v) for v in spec.split(":"))
        x, y = look_features(clip, (lo, hi), args.clips, args.seed)
        print(f"{lo:.2f}-{hi:.2f}      {100 * probe_accuracy(x, y):5.1f} %", flush=True)


if __name__ == "__main__":
    main()
