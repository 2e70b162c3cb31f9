"""CLIP's input from RGB frames: open_clip's own PIL transform, or its geometry in OpenCV (`PREPROCESSORS`).

Both map RGB uint8 frames (H, W, 3) to model input (N, 3, S, S): the shorter side resized to S, the
centre S x S crop, then open_clip's mean and std. They differ only in the resampling filter, so
the stored embeddings differ slightly; which one made a store is its config's `preprocess` field
(docs/clip-runtime.md has the measured difference and speed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch

# torch, torchvision and PIL are imported where a preprocessing is built, not here: `check_name` runs
# before torch loads (extract/early.py decodes meanwhile)
Preprocess = Callable[[list[np.ndarray]], "torch.Tensor"]  # RGB frames -> (N, 3, S, S) f32
PREPROCESSORS: dict[str, Callable[[Any], Preprocess]] = {}  # name -> factory(open_clip's transform)


def register(name: str) -> Callable:
    def add(factory: Callable[[Any], Preprocess]) -> Callable[[Any], Preprocess]:
        PREPROCESSORS[name] = factory
        return factory

    return add


def check_name(name: str) -> None:
    """ValueError naming the registered choices unless `name` is one."""
    if name not in PREPROCESSORS:
        raise ValueError(f"--preprocess {name!r} is not one of {sorted(PREPROCESSORS)}")


def preprocessor(name: str, transform: Any) -> Preprocess:
    """The registered preprocessing `name` built from open_clip's eval transform; ValueError naming the choices."""
    check_name(name)
    return PREPROCESSORS[name](transform)


@register("pil")
def pil(transform: Any) -> Preprocess:
    """open_clip's transform itself: PIL bicubic resize (antialiased), centre crop, normalise."""
    import torch
    from PIL import Image

    return lambda frames: torch.stack([transform(Image.fromarray(f)) for f in frames])


@dataclass(frozen=True)
class Geometry:
    """What an open_clip eval transform does: shorter side to `size`, centre crop, then (x - mean) / std."""

    size: int
    mean: np.ndarray  # (3,) on the 0..1 scale
    std: np.ndarray  # (3,)


def geometry(transform: Any) -> Geometry:
    """Read size, mean and std off open_clip's Compose; ValueError when it is not shortest-side + centre crop."""
    from torchvision import transforms as T

    steps = list(getattr(transform, "transforms", []))
    resize = [s for s in steps if isinstance(s, T.Resize)]
    crop = [s for s in steps if isinstance(s, T.CenterCrop)]
    norm = [s for s in steps if isinstance(s, T.Normalize)]
    size = resize[0].size if len(resize) == 1 else None
    size = size[0] if isinstance(size, (list, tuple)) and len(size) == 1 else size
    if not (isinstance(size, int) and len(crop) == 1 and tuple(crop[0].size) == (size, size) and len(norm) == 1):
        raise ValueError("--preprocess opencv reproduces open_clip's shortest-side resize and centre crop; this "
                         f"model's preprocessing is {transform}; use --preprocess pil")
    return Geometry(size, np.asarray(norm[0].mean, np.float32), np.asarray(norm[0].std, np.float32))


@register("opencv")
def opencv(transform: Any) -> Preprocess:
    """The same geometry in OpenCV: area averaging when shrinking, bicubic when enlarging (PIL's roles)."""
    import torch

    g = geometry(transform)
    mean255 = tuple(float(m) * 255.0 for m in g.mean)
    inv_std = (1.0 / g.std).astype(np.float32)[None, :, None, None]  # (1, 3, 1, 1)

    def crop(frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        # torchvision's rounding of the longer side, so the crop window is the PIL path's
        new_w, new_h = (g.size, int(g.size * h / w)) if w <= h else (int(g.size * w / h), g.size)
        if (new_w, new_h) != (w, h):
            frame = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_AREA if new_h < h else cv2.INTER_CUBIC)
        top, left = int(round((new_h - g.size) / 2.0)), int(round((new_w - g.size) / 2.0))
        return np.ascontiguousarray(frame[top : top + g.size, left : left + g.size])  # (S, S, 3) uint8

    def run(frames: list[np.ndarray]) -> torch.Tensor:
        # (x - 255 mean) / 255 in OpenCV's one pass (8x numpy's time here), then / std per channel
        blob = cv2.dnn.blobFromImages([crop(f) for f in frames], 1.0 / 255.0, (g.size, g.size), mean255)
        blob *= inv_std  # (N, 3, S, S) f32
        return torch.from_numpy(blob)

    return run
