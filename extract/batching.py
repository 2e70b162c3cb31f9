"""The messages between the extraction threads, and the packer that fills CLIP batches across videos.

A producer turns each video into a Frame per sampled frame and then Done (or Failed); the Packer
groups frames of consecutive videos into Chunks of `batch_size` for the towers and sends each video's
end behind the batch holding its last frame. Result is what the caller finally hears of a video.
"""

from __future__ import annotations

import itertools
import queue
import threading
from dataclasses import dataclass, field
from typing import Callable

from extract.inputs import VideoItem


@dataclass
class Result:
    """What happened to one video; `ok` False carries reason and message."""

    key: str
    ok: bool
    frames: int = 0
    seconds: float = 0.0
    reason: str = ""
    message: str = ""
    fingerprint: dict = field(default_factory=dict)
    elsewhere: str = ""  # another process holds the video's lease (extract/claims.py): its owner


@dataclass
class Frame:  # one preprocessed frame, as the producer makes it
    pixels: object  # torch.Tensor (3, S, S), CLIP's preprocessing
    extra: dict  # backbone name -> torch.Tensor (3, Sb, Sb), its own
    rgb: object = None  # instead of both: the decoded (H, W, 3) uint8 frame, made before the towers loaded


@dataclass
class Chunk:  # a batch of preprocessed frames, possibly of several consecutive videos, in order
    pixels: object  # torch.Tensor (b, 3, S, S)
    extra: dict  # backbone name -> torch.Tensor (b, 3, Sb, Sb)
    owners: list  # [(video key, frame count), ...] in row order, counts summing to b


@dataclass
class Done:  # every frame of the video was sent; the flow side and metadata are complete
    item: VideoItem
    arrays: dict
    meta: dict
    started: float


@dataclass
class Failed:
    item: VideoItem
    reason: str
    message: str
    fingerprint: dict
    started: float


@dataclass
class Elsewhere:  # another process is extracting this video, or already has: nothing decoded here
    item: VideoItem
    owner: str
    started: float


@dataclass
class Bug:  # an unexpected exception in a decode thread, carried to the merger
    error: Exception


class ConsumerGone(Exception):
    """The consumer stopped (an error or --strict): the producer ends without sending more."""


def put(q: queue.Queue, msg: object, stop: threading.Event) -> bool:
    """Put into the bounded queue unless the consumer has stopped; False when it has."""
    while not stop.is_set():
        try:
            q.put(msg, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


def _stack(pixels: list) -> object:
    import torch

    return torch.stack(pixels)  # (b, 3, S, S)


class Packer:
    """Packs the frames of consecutive videos into batches of `batch_size` and sends each full one.

    A video's end message (Done or Failed) is sent only after the batch holding its last frame, so
    the consumer has all of a video's embeddings when its end arrives, and videos end in input order.
    A failing video's frames still waiting here are dropped, and the waiting batch goes out at once,
    so the failure reaches the consumer before any frame of a later video is encoded.
    """

    def __init__(self, batch_size: int, put: Callable[[object], bool]):
        self.batch_size = batch_size
        self._put = put
        self._frames: list[Frame] = []
        self._owners: list[str] = []  # video key of each waiting frame
        self._ends: list[object] = []  # end messages waiting for the batch to go out

    def add(self, key: str, frame: Frame) -> None:
        self._frames.append(frame)
        self._owners.append(key)
        if len(self._frames) == self.batch_size:
            self.flush()

    def end(self, key: str, msg: object) -> None:
        if isinstance(msg, Failed):
            kept = [i for i, owner in enumerate(self._owners) if owner != key]
            self._frames = [self._frames[i] for i in kept]
            self._owners = [self._owners[i] for i in kept]
            self._ends.append(msg)
            self.flush()
        elif self._frames:
            self._ends.append(msg)
        else:
            self._send(msg)

    def flush(self) -> None:
        """Send the waiting frames as one (possibly short) batch, then the end messages behind them."""
        if self._frames:
            owners = [(key, len(list(run))) for key, run in itertools.groupby(self._owners)]
            names = self._frames[0].extra.keys()
            self._send(Chunk(_stack([f.pixels for f in self._frames]),
                             {n: _stack([f.extra[n] for f in self._frames]) for n in names}, owners))
            self._frames, self._owners = [], []
        for msg in self._ends:
            self._send(msg)
        self._ends = []

    def _send(self, msg: object) -> None:
        if not self._put(msg):
            raise ConsumerGone
