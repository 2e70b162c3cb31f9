"""Cost figures of the paper's Tables 1/4/6: parameters, FLOPs per video, inference time, head and backbone apart."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from train.fitting.data import FeatureSet


def count_params(module: torch.nn.Module) -> tuple[float, float]:
    """(trainable, total) parameters in millions."""
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return trainable / 1e6, total / 1e6


def flops(fn, *args) -> float:
    """GFLOPs of fn(*args), counted with grad enabled (inference_mode misses fused attention paths)."""
    with torch.enable_grad(), FlopCounterMode(display=False) as counter:
        fn(*args)
    return counter.get_total_flops() / 1e9


def backbone_costs(clip_model_name: str, n_frames: int) -> dict:
    """CLIP image tower per video (n_frames images): params (M) and GFLOPs. Architecture only, no weights needed."""
    from extract.clip_model import architecture, input_size  # importing it also registers fgm's small configs

    model = architecture(clip_model_name)  # random weights, said nowhere: only its size is counted
    size = input_size(model)
    image = torch.zeros(1, 3, size, size)
    per_image = flops(model.encode_image, image)
    return {"backbone_params_M": sum(p.numel() for p in model.visual.parameters()) / 1e6,
            "backbone_gflops_per_video": per_image * n_frames}


def head_costs(model: torch.nn.Module, fs: FeatureSet, idx: np.ndarray, device: torch.device,
               max_videos: int = 30) -> dict:
    """Trainable head: params, GFLOPs per video, and inference ms per video at batch 1 (mean after one warm-up)."""
    trainable, total = count_params(model)
    model.eval()
    one = fs.batch(idx[:1], device)
    gflops = flops(model, one)
    times = []
    with torch.no_grad():
        model(one)
        for i in idx[:max_videos]:
            batch = fs.batch(np.array([i]), device)
            t0 = time.perf_counter()
            model(batch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return {"head_params_trainable_M": trainable, "head_params_total_M": total,
            "head_gflops_per_video": gflops, "infer_ms_head": 1000 * float(np.mean(times))}
