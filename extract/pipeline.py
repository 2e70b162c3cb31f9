"""Extract videos into a store: decode and flow in a producer thread overlap CLIP in the consumer.

One `Extractor` per process loads the frozen towers once (this module: the consumer side; one video's
work is extract/produce.py, the messages and batching extract/batching.py, the helper threads
extract/threads.py, the dask task extract/dask_task.py). A producer thread streams each video
(decode, flow, CLIP preprocessing and each extra backbone's own preprocessing) into a small bounded
queue; the calling thread runs the CLIP image tower, then every extra backbone, on batches; a writer
thread writes each finished entry at once, so finished work is never held back and store I/O does not
stall CLIP. Frames are decoded once for all towers. Memory is bounded by the queues and the batch size,
not by video length.

With CLIP on a GPU the producer's CPU work is what limits throughput, so `decode_threads` threads
each decode whole videos (OpenCV and PIL release the GIL) and a merger hands their frames on in
input order; with CLIP on the CPU one thread is the default, since torch already owns the cores.

Batches are filled across video boundaries: with the default T = 16 a per-video batch would run the
towers at half the batch size, at fewer frames/s (docs/design-choices.md has the measurement). A
video's end message follows the batch holding its last frame, so the consumer sees every
embedding of a video before it writes the entry.

When CLIP runs on the CPU, a tower's intra-op threads wait for each other at the end of every op, so
a thread that takes one of their cores stalls them all. OpenCV therefore runs single-threaded
(docs/design-choices.md has the measurement), and a tower on the CPU, torch or ONNX, is one
single-threaded session per core (`Tower.parallel`): the consumer keeps that many batches in flight
and hands their rows on in input order (docs/clip-runtime.md).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable, Iterator

import cv2
import numpy as np
import torch

from extract.backbones import load_backbone
from extract.batching import Chunk, ConsumerGone, Done, Elsewhere, Failed, Frame, Packer, Result, put
from extract.clip_model import load_clip
from extract.clip_runtime import image_tower
from extract.early import EarlyDecode, Handover
from extract.fingerprint import recorded_fingerprint
from extract.detect import make_detector
from extract.flow import FlowComputer
from extract.inputs import VideoItem
from extract.preprocess import preprocessor
from extract.produce import Claim, produce
from extract.tracks import TRACKER
from extract.threads import EntryWriter, ordered_messages, release_free_memory
from fgm_common.config import ExtractConfig
from fgm_common.store import CLIP, TOKENS, FeatureStore

if TYPE_CHECKING:
    from extract.runner import RunOptions


def default_decode_threads(clip_device: str) -> int:
    """Producer threads when the user gives none: 1 beside CPU CLIP, else up to 4 of the free cores."""
    if clip_device == "cpu":
        return 1
    return max(1, min(4, (os.cpu_count() or 2) - 1))


class Extractor:
    """Frozen CLIP + flow for one process; `run(items)` extracts into the store and returns Results.

    `decode_threads` 0 picks `default_decode_threads`; it changes speed only, never a stored number.
    """

    def __init__(self, config: ExtractConfig, store_url: str, device: str = "auto",
                 batch_size: int = 32, cache_dir: str | None = None, run_id: str = "",
                 decode_threads: int = 0):
        if decode_threads < 0:
            raise ValueError(f"decode_threads must be 0 (auto) or more, not {decode_threads}")
        self.config = config
        self.batch_size = batch_size
        self.run_id = run_id
        self.clip = load_clip(config.clip_model, config.pretrained, config.random_seed, device, cache_dir)
        self.tower = image_tower(config.clip_runtime, self.clip, config.tokens, cache_dir)
        self.preprocess = preprocessor(config.preprocess, self.clip.preprocess)  # frames -> (n, 3, S, S)
        self._fidelity_checked = False
        if self.clip.device == "cpu":
            cv2.setNumThreads(1)  # torch owns the cores (module docstring)
        self.decode_threads = decode_threads or default_decode_threads(self.clip.device)
        # one per producer thread: a flow backend holds state (a DIS object, CUDA streams)
        self.flows = [FlowComputer(config.flow) for _ in range(self.decode_threads)]
        # likewise a detector per producer thread (a DETR model is not shared across threads)
        self.detectors = ([make_detector(config.detect, self.clip.device) for _ in range(self.decode_threads)]
                          if config.detect.enabled else [None] * self.decode_threads)
        # frozen extra backbones beside CLIP, in the config's order (e.g. resnet50 for the no-CLIP ablation)
        self.backbones = {name: load_backbone(name, config.backbone_weights, config.random_seed, self.clip.device)
                          for name in config.backbones}
        self.store = FeatureStore.open(store_url, mode="a")
        # recorded before any entry is written, so processes sharing the store all compare with the first
        self.store.record_weights(self.clip.identity)
        for name, net in self.backbones.items():
            self.store.record_weights(net.identity, backbone=name)
        if config.detect.enabled:
            identity = {**self.detectors[0].identity(), "tracker": TRACKER}  # recorded, not compared
            self.store.record_weights(identity, detector=config.detect.name)

    # ---- producer side (runs in a thread) ---------------------------------------------------
    def _producer(self, items: list[VideoItem], early: EarlyDecode | None, claim: Claim | None, q: queue.Queue,
                  stop: threading.Event, errors: list[Exception]) -> None:
        packer = Packer(self.batch_size, lambda msg: put(q, msg, stop))
        messages = self._messages(items, early, claim)
        try:
            for item, msg in messages:
                if isinstance(msg, Frame):
                    packer.add(item.key, msg if msg.rgb is None else self._prepare(msg.rgb))
                else:
                    packer.end(item.key, msg)
            packer.flush()
        except ConsumerGone:
            return
        except Exception as e:  # a bug, not a bad video: the consumer re-raises it instead of ending quietly
            errors.append(e)
        finally:
            messages.close()  # stops and joins the decode threads
            put(q, None, stop)  # a consumer that already stopped takes nothing: never block on a full queue

    def _prepare(self, rgb: np.ndarray) -> Frame:
        """A decoded RGB frame (H, W, 3) -> the towers' input: CLIP's preprocessing (3, S, S), each backbone's own."""
        if torch.get_num_threads() != 1:
            # The preprocessing's tensor ops are tiny: a team of torch threads here only waits for cores
            # the towers hold (to_tensor took ~4x its one-thread time beside two ONNX sessions). The
            # producer thread starts before the tower threads set the process default, so set it here.
            torch.set_num_threads(1)
        return Frame(self.preprocess([rgb])[0], {name: net.preprocess_frame(rgb) for name, net in self.backbones.items()})

    def _messages(self, items: list[VideoItem], early: EarlyDecode | None = None,
                  claim: Claim | None = None) -> Iterator[tuple[VideoItem, object]]:
        """(video, message) for every video's frames and end, in input order: first what `early` decoded
        while the towers loaded (it must have been started on the same items), then the decode threads'."""
        def one(item: VideoItem, w: int) -> Iterator[object]:
            # one flow computer per thread: a backend holds state (a DIS object, CUDA streams)
            return produce(item, self.config, self.flows[w], self._prepare, self.run_id, claim, self.detectors[w])

        made = early.hand_over() if early is not None else Handover()
        try:
            yield from made.messages()
            yield from ordered_messages(items[made.started:], one, self.decode_threads, self.batch_size)
        finally:
            made.close()

    # ---- consumer side (calling thread) -----------------------------------------------------
    def run(self, items: list[VideoItem], on_result: Callable[[Result], None] | None = None,
            early: EarlyDecode | None = None, claim: Claim | None = None) -> list[Result]:
        """Extract `items` in order; `on_result` sees each video, in order, once its entry is written.

        `early`, an EarlyDecode started on the same `items` before this Extractor was built, hands
        over the videos it decoded meanwhile. `claim` (extract/produce.py) is asked before each video
        is decoded; a video it gives to another process comes back with `Result.elsewhere` set.
        """
        q: queue.Queue = queue.Queue(maxsize=4)
        stop = threading.Event()
        errors: list[Exception] = []
        thread = threading.Thread(target=self._producer, args=(items, early, claim, q, stop, errors), daemon=True,
                                  name="fgm-extract-producer")
        thread.start()
        writer = EntryWriter(self.store)
        results: list[Result] = []

        def report(done: list[Result]) -> None:
            for res in done:
                results.append(res)
                if on_result:
                    on_result(res)  # may raise (--strict): the finally below still writes what is finished

        # per video in flight: tower name ("clip", "tokens", each backbone) -> row blocks, in order
        outputs: dict[str, dict[str, list[np.ndarray]]] = {}
        # messages in input order, each with its batch's rows or the Future of them (None for a video's end)
        pending: deque[tuple[object, object]] = deque()
        pool = ThreadPoolExecutor(self.tower.parallel, "fgm-extract-tower", initializer=self.tower.init_thread) \
            if self.tower.parallel > 1 else None

        def settle(in_flight: int) -> None:
            """Hand on, in order, every message at the head that is ready, waiting while more than
            `in_flight` batches are pending."""
            while pending and (not isinstance(pending[0][0], Future) or pending[0][0].done()
                               or sum(isinstance(w, Future) for w, _ in pending) > in_flight):
                work, msg = pending.popleft()
                self._hand_on(msg, work.result() if isinstance(work, Future) else work, outputs, writer, report)

        failed = True
        try:
            while (msg := q.get()) is not None:
                report(writer.written())
                if not isinstance(msg, Chunk):
                    pending.append((None, msg))
                elif pool is not None:
                    pending.append((pool.submit(self._encode, msg), msg))  # beside the batches in flight
                else:
                    pending.append((self._encode(msg), msg))
                settle(self.tower.parallel)
            settle(0)
            failed = False
        except Exception:
            # a tower error in a batch already in flight is the cause; a write error met meanwhile is not
            cause = next((e for w, _ in pending if isinstance(w, Future) and not w.cancelled()
                          and (e := w.exception()) is not None), None)
            if cause is None:
                raise
            raise cause
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            stop.set()
            thread.join(timeout=5)
            # finished entries are written even when on_result or CLIP raised; that first error is the one
            # raised (an entry whose write also failed is simply absent, and a rerun extracts it)
            writer.close(raise_error=not failed)
        report(writer.written())
        if errors:
            raise errors[0]
        return results

    def _hand_on(self, msg: object, rows: dict | None, outputs: dict, writer: EntryWriter,
                 report: Callable[[list[Result]], None]) -> None:
        """One message, in input order: a batch's rows go to their videos; a video's end writes or fails it.

        The first batch is checked against torch fp32 here, before any entry can be written, while the
        tower's other sessions go on with the next batches.
        """
        if isinstance(msg, Chunk):
            if not self._fidelity_checked:  # the first real frames (clip_runtime.py)
                self.tower.check_fidelity(self.clip, msg.pixels, self.config.tokens, (rows[CLIP], rows.get(TOKENS)))
                self._fidelity_checked = True
            del msg.pixels, msg.extra
            release_free_memory()
            start = 0
            for key, count in msg.owners:
                for name, block in rows.items():  # tower name -> (b, ...) rows of the whole batch
                    outputs.setdefault(key, {}).setdefault(name, []).append(block[start : start + count])
                start += count
        elif isinstance(msg, Done):
            towers = outputs.pop(msg.item.key)
            arrays = dict(msg.arrays, **{name: np.concatenate(b) for name, b in towers.items()})
            # wall time from opening the video to its last embedding (decode, flow, CLIP; overlapped)
            seconds = time.perf_counter() - msg.started
            meta = dict(msg.meta, extract_seconds=round(seconds, 4))
            res = Result(msg.item.key, True, len(arrays[CLIP]), seconds,
                         fingerprint=recorded_fingerprint(msg.meta))
            writer.submit(res, arrays, meta)
        elif isinstance(msg, Elsewhere):
            writer.submit(Result(msg.item.key, False, 0, 0.0, reason="elsewhere", elsewhere=msg.owner))
        else:
            assert isinstance(msg, Failed), msg
            outputs.pop(msg.item.key, None)  # embeddings of frames before the failure are dropped
            writer.submit(Result(msg.item.key, False, 0, time.perf_counter() - msg.started,
                                 msg.reason, msg.message, msg.fingerprint))
            # the producer sends a failure before any later video's frames: --strict stops right there
            report(writer.flush())

    def _encode(self, chunk: Chunk) -> dict[str, np.ndarray]:
        """One batch through every tower -> {"clip": (b, D), ["tokens": (b, L, W) f16], backbone: (b, Db)}."""
        emb, tok = self.tower.encode(chunk.pixels, self.config.tokens)  # (b, D), (b, L, W)
        rows = {CLIP: emb}
        if tok is not None:
            rows[TOKENS] = tok.astype(np.float16)
        for name, net in self.backbones.items():
            rows[name] = net.encode_batch(chunk.extra[name])  # (b, Db)
        return rows


def extractor_for(config: ExtractConfig, store_url: str, options: RunOptions, run_id: str = "") -> Extractor:
    """The Extractor that `options` asks for (device, CLIP batch size, weights cache, decode threads)."""
    return Extractor(config, store_url, options.device, options.batch_size, options.cache_dir, run_id,
                     options.decode_threads)
