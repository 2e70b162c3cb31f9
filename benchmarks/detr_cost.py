"""What `--detector detr` costs a frame, beside `hog`: ms per frame on the CPU and, where torch sees one, on a GPU.

DETR's real weights cannot be downloaded on the machines this was written on, so the model is the
facebook/detr-resnet-50 architecture (transformers' DetrConfig defaults, timm ResNet-50 backbone) with
RANDOM weights: its boxes mean nothing, its cost is the real one, since the work per frame does not
depend on the weights' values. Frames are the 640 x 480 ud810_ps7 size, resized by DETR's default
processor (short side 800), through fgm's own DetrDetector, so pre- and post-processing are counted.
HOG runs on one thread, as stage one runs it; DETR with torch's thread count as given (--threads).
Run:

    python benchmarks/detr_cost.py [--frames 10] [--threads 2]
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import torch
import typer
from rich.console import Console
from rich.table import Table

from extract.detect import make_detector
from extract.detect_detr import DetrDetector, transformers_module

SIZE = (480, 640)  # (H, W) of ud810_ps7's clips


def full_size_random_detr(device: str) -> DetrDetector:
    """facebook/detr-resnet-50's architecture, random weights, DETR's default processor, on `device`."""
    transformers = transformers_module()
    # COCO's 91 ids as facebook/detr-resnet-50 has them, "person" at 1 (class_map needs one): the same head size
    labels = {i: "person" if i == 1 else f"class {i}" for i in range(91)}
    config = transformers.DetrConfig(use_pretrained_backbone=False, id2label=labels)  # no ImageNet weights asked for
    model = transformers.DetrForObjectDetection(config).eval()
    return DetrDetector(model, transformers.DetrImageProcessor(), "random detr-resnet-50 architecture",
                        {"weights_sha256": ""}, transformers.__version__, device=device)


def ms_per_frame(detector, frames: list[np.ndarray], sync: bool) -> float:
    """Median wall ms of one call over `frames`, after one warm-up call."""
    detector(frames[0])
    times = []
    for frame in frames:
        start = time.perf_counter()
        detector(frame)
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main(frames: int = typer.Option(10, help="frames timed per detector"),
         threads: int = typer.Option(2, help="torch threads for DETR on the CPU")) -> None:
    console = Console(width=110)
    rng = np.random.default_rng(0)
    # smooth noise, not flat grey: a frame with edges, though the cost does not depend on it
    images = [cv2.GaussianBlur(rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8), (0, 0), 3) for _ in range(frames)]
    table = Table(title=f"ms per {SIZE[1]} x {SIZE[0]} frame, median of {frames}")
    for col in ("detector", "device", "threads", "ms / frame"):
        table.add_column(col, justify="left" if col in ("detector", "device") else "right")
    cv2.setNumThreads(1)
    table.add_row("hog", "cpu", "1", f"{ms_per_frame(make_detector('hog'), images, False):.0f}")
    torch.set_num_threads(threads)
    table.add_row("detr (random weights)", "cpu", str(threads),
                  f"{ms_per_frame(full_size_random_detr('cpu'), images, False):.0f}")
    if torch.cuda.is_available():
        table.add_row("detr (random weights)", torch.cuda.get_device_name(), "-",
                      f"{ms_per_frame(full_size_random_detr('cuda'), images, True):.1f}")
    else:
        console.print("  no CUDA device: the GPU row is left out", style="dim")
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
