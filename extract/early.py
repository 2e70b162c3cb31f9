"""Decode and flow while the towers load: start-up's idle core runs the producer's first videos.

Importing torch and open_clip, building CLIP and opening its runtime take seconds, almost all of it
on one core; the producer's work (probe, decode, flow) needs neither torch nor the model. So the
local run starts an `EarlyDecode` thread on its videos first, and `Extractor.run` takes over what
it made: every video it finished, and the one it was in the middle of, whose decoding goes on
where it stopped. The frames wait raw, as decoded (CLIP's preprocessing needs the model's
transform), up to `EARLY_BYTES`; past that the thread stops and the producer does the rest as
usual. Every number comes out of the same `produce` call either way, so the store is the same.

This module imports no torch: it must run while torch is being imported.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from extract.batching import Frame
from extract.detect import make_detector
from extract.flow import FlowComputer
from extract.inputs import VideoItem
from extract.produce import Claim, produce
from fgm_common.config import ExtractConfig

# Raw frames held at most (640 x 480 RGB is 0.9 MB a frame). Start-up lasts seconds, the producer
# makes 100-200 frames a second on one core, so this covers it for SD video; HD video stops sooner.
EARLY_BYTES = 512 << 20


def raw_frame(rgb: np.ndarray) -> Frame:
    """A decoded frame kept as it is: the towers' preprocessing comes later (Extractor._prepare)."""
    return Frame(None, {}, rgb)


@dataclass
class Handover:
    """What EarlyDecode made: whole videos' messages, then the video it stopped inside, if any."""

    done: list = field(default_factory=list)  # [(item, [message, ...]), ...] in input order
    current: tuple | None = None  # (item, messages so far, its suspended produce generator)

    @property
    def started(self) -> int:
        """Videos of the input that this handover covers (from the first)."""
        return len(self.done) + (self.current is not None)

    def messages(self) -> Iterator[tuple[VideoItem, object]]:
        """Every (video, message) in input order, the stopped video's decoding resumed in the caller's thread."""
        for item, msgs in self.done:
            for msg in msgs:
                yield item, msg
        if self.current is not None:
            item, msgs, rest = self.current
            try:
                for msg in msgs:
                    yield item, msg
                for msg in rest:
                    yield item, msg
            finally:
                rest.close()

    def close(self) -> None:
        """Release the stopped video's decoder when the messages are not wanted after all."""
        if self.current is not None:
            self.current[2].close()


class EarlyDecode:
    """Runs `produce` over `items` in a thread, frames kept raw, until `hand_over()` or EARLY_BYTES."""

    def __init__(self, items: list[VideoItem], config: ExtractConfig, run_id: str = "",
                 budget: int = EARLY_BYTES, claim: Claim | None = None, device: str = "cpu"):
        self._items, self._config, self._run_id, self._budget = items, config, run_id, budget
        self._device = device  # a torch detector's, as the towers' --device (HOG ignores it)
        self._claim = claim  # asked before each video, as the producer asks (extract/produce.py)
        self._stop = threading.Event()
        self._made = Handover()
        self._bug: Exception | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="fgm-extract-early")
        self._thread.start()

    def _run(self) -> None:
        try:
            self._decode()
        except Exception as e:  # a bug, not a bad video (produce reports those): raised by hand_over
            self._bug = e

    def _decode(self) -> None:
        flow = FlowComputer(self._config.flow)  # handed over with the stopped video's generator
        detector = make_detector(self._config.detect, self._device) if self._config.detect.enabled else None
        held = 0
        for item in self._items:
            if self._stop.is_set():
                return
            msgs: list = []
            rest = produce(item, self._config, flow, raw_frame, self._run_id, self._claim, detector)
            self._made.current = (item, msgs, rest)
            for msg in rest:
                msgs.append(msg)
                held += msg.rgb.nbytes if isinstance(msg, Frame) else 0
                if self._stop.is_set() or held >= self._budget:
                    return  # `rest` stays suspended: the producer resumes it
            self._made.done.append((item, msgs))
            self._made.current = None

    def hand_over(self) -> Handover:
        """Stop the thread (within a frame) and return what it made, the same Handover on every call."""
        self._stop.set()
        self._thread.join()
        if self._bug is not None:
            raise self._bug
        return self._made

    def close(self) -> None:
        """Stop the thread and release the decoder of a video it stopped inside; never raises."""
        self._stop.set()
        self._thread.join()
        self._made.close()
