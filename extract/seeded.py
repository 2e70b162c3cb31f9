"""Seeded random weights that other threads cannot disturb: one lock around torch's global CPU generator.

Random-weight towers (CLIP, a backbone, DETR with weights "none") are drawn from torch's global
generator, which every thread shares. During a run the early decode thread (extract/early.py) may
build a detector while the main thread builds CLIP: unguarded, their draws interleave and the same
seed gives other weights, which the store's identity check then refuses.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import torch

_LOCK = threading.Lock()


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Within: the global CPU generator seeded with `seed` and no other `seeded` block running; restored after."""
    with _LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
