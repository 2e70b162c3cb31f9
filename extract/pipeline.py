"""Extract videos into a store: decode and flow in a producer thread overlap CLIP in the consumer.

One `Extractor` per process loads the frozen towers once. A producer thread streams each video
(decode, flow, CLIP preprocessing and each extra backbone's own preprocessing) into a small bounded
queue; the calling thread runs the CLIP image tower, then every extra backbone, on batches; a writer
thread writes each finished entry at once, so finished work is never held back and store I/O does not
stall CLIP. Frames are decoded once for all towers. Memory is bounded by the queues and the batch size,
not by video length.

With CLIP on a GPU the producer's CPU work is what limits throughput, so `decode_threads` threads
each decode whole videos (OpenCV and PIL release the GIL) and a merger hands their frames on in
input order; with CLIP on the CPU one thread is the default, since torch already owns the cores.

Batches are filled across video boundaries: with the default T = 16 a per-video batch would run the
towers at half the batch size (measured on 2 CPU cores, ViT-B-32: about 5% fewer frames/s at 16
than at 32; on a GPU the gap is larger). A video's end message follows the batch holding its last
frame, so the consumer sees every embedding of a video before it writes the entry.

When CLIP runs on the CPU, torch's intra-op threads already use every core and wait for each other at
the end of every op, so a second thread pool (OpenCV's, in the producer) stalls them all whenever it
takes a core; OpenCV then runs single-threaded (docs/design-choices.md has the measurement).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import cv2
import numpy as np

from extract.backbones import load_backbone
from extract.clip_model import load_clip
from extract.fingerprint import content_sha256, stat_fingerprint
from extract.flow import FlowComputer, FlowParams
from extract.inputs import VideoItem
from extract.video import VideoError, fps_indices, open_source, uniform_indices
from fgm_common.config import ExtractConfig
from fgm_common.store import FeatureStore, StoreError, weights_mismatch

# Exceptions a bad video can raise anywhere in decoding or flow; anything else is a bug and propagates.
VIDEO_FAILURES = (VideoError, cv2.error, OSError, ValueError, RuntimeError)


def check_same_weights(store: FeatureStore, identity: dict) -> None:
    """Refuse to add features made by other CLIP weights than the store's (e.g. a new open_clip
    building different random weights for the same seed, or a replaced checkpoint file)."""
    _check_same(store.clip_identity, identity, "CLIP", store.url)


def check_same_backbone_weights(store: FeatureStore, name: str, identity: dict) -> None:
    """The same guard for an extra backbone (e.g. a new torchvision initialising differently)."""
    _check_same(store.backbone_identity.get(name, {}), identity, name, store.url)


def _check_same(recorded: dict, identity: dict, what: str, url: str) -> None:
    if key := weights_mismatch(recorded, identity):
        raise StoreError(
            f"the {what} weights loaded now differ from those that made {url} ({key} "
            f"{str(identity.get(key))[:12]} vs {recorded[key][:12]}); features are never mixed. "
            "Use the original weights, or write a new store with another --out."
        )


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


@dataclass
class _Frame:  # one preprocessed frame, as the producer makes it
    pixels: object  # torch.Tensor (3, S, S), CLIP's preprocessing
    extra: dict  # backbone name -> torch.Tensor (3, Sb, Sb), its own


@dataclass
class _Chunk:  # a batch of preprocessed frames, possibly of several consecutive videos, in order
    pixels: object  # torch.Tensor (b, 3, S, S)
    extra: dict  # backbone name -> torch.Tensor (b, 3, Sb, Sb)
    owners: list  # [(video key, frame count), ...] in row order, counts summing to b


@dataclass
class _Done:  # every frame of the video was sent; the flow side and metadata are complete
    item: VideoItem
    arrays: dict
    meta: dict
    started: float


@dataclass
class _Failed:
    item: VideoItem
    reason: str
    message: str
    fingerprint: dict
    started: float


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
        if self.clip.device == "cpu":
            cv2.setNumThreads(1)  # torch owns the cores (module docstring)
        self.decode_threads = decode_threads or default_decode_threads(self.clip.device)
        params = FlowParams(config.flow_backend, config.flow_compute_size, config.flow_grid, config.flow_hist_bins)
        # one per producer thread: a flow backend holds state (a DIS object, CUDA streams)
        self.flows = [FlowComputer(params) for _ in range(self.decode_threads)]
        # frozen extra backbones beside CLIP, in the config's order (e.g. resnet50 for the no-CLIP ablation)
        self.backbones = {name: load_backbone(name, config.backbone_weights, config.random_seed, self.clip.device)
                          for name in config.backbones}
        self.store = FeatureStore.open(store_url, mode="a")
        check_same_weights(self.store, self.clip.identity)
        for name, net in self.backbones.items():
            check_same_backbone_weights(self.store, name, net.identity)

    # ---- producer side (runs in a thread) ---------------------------------------------------
    def _indices(self, n_frames: int, fps: float) -> np.ndarray:
        if self.config.sampling == "fps":
            return fps_indices(n_frames, fps, self.config.fps)
        return uniform_indices(n_frames, self.config.num_frames)

    def _produce(self, item: VideoItem, flow: FlowComputer) -> Iterator[object]:
        """One video -> a _Frame per sampled frame, then _Done, or _Failed as soon as anything fails."""
        started = time.perf_counter()
        fingerprint: dict = {}
        try:
            size, mtime = stat_fingerprint(item.path)
            fingerprint = {"size": size, "mtime_ns": mtime}
            if size == 0:
                raise VideoError("empty-file", f"{item.path} is empty (0 bytes)")
            fingerprint["sha256"] = content_sha256(item.path)
            source = open_source(item.path, start_ms=item.start_ms, end_ms=item.end_ms)
            info = source.probe()
            indices = self._indices(info.n_frames, info.fps)
            native = self.config.flow_pairs == "native"
            flows, hists, flow_ts, stamps = [], [], [], []
            prev = None
            for frame in source.iter_frames(indices, with_next=native):
                stamps.append(frame.timestamp_ms)
                if native:
                    nxt = frame.next_rgb if frame.next_rgb is not None else frame.rgb
                    field_, hist = flow(frame.rgb, nxt)
                    flows.append(field_), hists.append(hist)
                    flow_ts.append((frame.timestamp_ms, frame.timestamp_ms + 1000.0 / info.fps))
                elif prev is not None:
                    field_, hist = flow(prev[0], frame.rgb)
                    flows.append(field_), hists.append(hist)
                    flow_ts.append((prev[1], frame.timestamp_ms))
                prev = (frame.rgb, frame.timestamp_ms)
                yield _Frame(self.clip.preprocess_frames([frame.rgb])[0],  # (3, S, S)
                             {name: net.preprocess_frame(frame.rgb) for name, net in self.backbones.items()})
            if len(stamps) != len(indices):
                raise VideoError("unreadable", f"{item.path}: decoded {len(stamps)} of {len(indices)} sampled frames")
            if not flows:  # a single sampled frame has no pair: one zero field keeps shapes uniform
                zero = flow(prev[0], prev[0])
                flows, hists, flow_ts = [zero[0]], [zero[1]], [(prev[1], prev[1])]
            arrays = {
                "timestamps_ms": np.asarray(stamps),
                "frame_index": np.asarray(indices),
                "flow": np.stack(flows),  # (Tf, 2, G, G)
                "flow_hist": np.stack(hists),  # (Tf, 2*bins)
                "flow_ts_ms": np.asarray(flow_ts),  # (Tf, 2)
            }
            meta = {
                "label": item.label, "group": item.group, "view": item.view, "split": item.split,
                "path": str(item.path), "start_ms": item.start_ms, "end_ms": item.end_ms,
                **fingerprint, "native_frames": info.n_frames, "fps": info.fps, "fps_known": info.fps_known,
                "width": info.width, "height": info.height, "duration_ms": info.duration_ms,
                "num_frames": len(indices), "num_flow": len(flows),
                "short_video": bool(info.n_frames < len(indices)), "run_id": self.run_id,
            }
            yield _Done(item, arrays, meta, started)
        except VIDEO_FAILURES as e:
            reason = e.reason if isinstance(e, VideoError) else type(e).__name__
            yield _Failed(item, reason, str(e), fingerprint, started)

    def _producer(self, items: list[VideoItem], q: queue.Queue, stop: threading.Event,
                  errors: list[Exception]) -> None:
        packer = _Packer(self.batch_size, lambda msg: _put(q, msg, stop))
        messages = self._messages(items)
        try:
            for item, msg in messages:
                if isinstance(msg, _Frame):
                    packer.add(item.key, msg)
                else:
                    packer.end(item.key, msg)
            packer.flush()
        except _ConsumerGone:
            return
        except Exception as e:  # a bug, not a bad video: the consumer re-raises it instead of ending quietly
            errors.append(e)
        finally:
            messages.close()  # stops and joins the decode threads
            _put(q, None, stop)  # a consumer that already stopped takes nothing: never block on a full queue

    def _messages(self, items: list[VideoItem]) -> Iterator[tuple[VideoItem, object]]:
        """(video, message) for every video's frames and end, in input order, from the decode threads.

        Thread w decodes videos w, w + n, w + 2n, ... into its own bounded queue; taking the queues in
        turn restores input order, so the batches are the same as with one thread.
        """
        n = min(self.decode_threads, len(items))
        if n <= 1:
            for item in items:
                for msg in self._produce(item, self.flows[0]):
                    yield item, msg
            return
        queues = [queue.Queue(maxsize=self.batch_size) for _ in range(n)]
        halt = threading.Event()

        def decode(w: int) -> None:
            try:
                for item in items[w::n]:
                    for msg in self._produce(item, self.flows[w]):
                        if not _put(queues[w], msg, halt):
                            return
            except Exception as e:  # a bug: raised in order by the merger below
                _put(queues[w], _Bug(e), halt)

        threads = [threading.Thread(target=decode, args=(w,), daemon=True, name=f"fgm-extract-producer-{w}")
                   for w in range(n)]
        for t in threads:
            t.start()
        try:
            for i, item in enumerate(items):
                while True:
                    msg = queues[i % n].get()
                    if isinstance(msg, _Bug):
                        raise msg.error
                    yield item, msg
                    if not isinstance(msg, _Frame):
                        break  # the video's end: the next one comes from the next thread
        finally:
            halt.set()
            for t in threads:
                t.join(timeout=5)

    # ---- consumer side (calling thread) -----------------------------------------------------
    def run(self, items: list[VideoItem], on_result: Callable[[Result], None] | None = None) -> list[Result]:
        """Extract `items` in order; `on_result` sees each video, in order, once its entry is written."""
        q: queue.Queue = queue.Queue(maxsize=4)
        stop = threading.Event()
        errors: list[Exception] = []
        thread = threading.Thread(target=self._producer, args=(items, q, stop, errors), daemon=True,
                                  name="fgm-extract-producer")
        thread.start()
        writer = _EntryWriter(self.store)
        results: list[Result] = []

        def report(done: list[Result]) -> None:
            for res in done:
                results.append(res)
                if on_result:
                    on_result(res)  # may raise (--strict): the finally below still writes what is finished

        # per video in flight: tower name ("clip", "tokens", each backbone) -> row blocks, in order
        outputs: dict[str, dict[str, list[np.ndarray]]] = {}
        failed = True
        try:
            while (msg := q.get()) is not None:
                report(writer.written())
                if isinstance(msg, _Chunk):
                    rows = self._encode(msg)  # tower name -> (b, ...) rows of the whole batch
                    del msg.pixels, msg.extra
                    release_free_memory()
                    start = 0
                    for key, count in msg.owners:
                        for name, block in rows.items():
                            outputs.setdefault(key, {}).setdefault(name, []).append(block[start : start + count])
                        start += count
                elif isinstance(msg, _Done):
                    towers = outputs.pop(msg.item.key)
                    arrays = dict(msg.arrays, **{name: np.concatenate(b) for name, b in towers.items()})
                    # wall time from opening the video to its last embedding (decode, flow, CLIP; overlapped)
                    seconds = time.perf_counter() - msg.started
                    meta = dict(msg.meta, extract_seconds=round(seconds, 4))
                    res = Result(msg.item.key, True, len(arrays["clip"]), seconds,
                                 fingerprint={k: msg.meta[k] for k in ("size", "mtime_ns", "sha256")})
                    writer.submit(res, arrays, meta)
                else:
                    outputs.pop(msg.item.key, None)  # embeddings of frames before the failure are dropped
                    writer.submit(Result(msg.item.key, False, 0, time.perf_counter() - msg.started,
                                         msg.reason, msg.message, msg.fingerprint))
                    # the producer sends a failure before any later video's frames: --strict stops right there
                    report(writer.flush())
            failed = False
        finally:
            stop.set()
            thread.join(timeout=5)
            # finished entries are written even when on_result or CLIP raised; that first error is the one
            # raised (an entry whose write also failed is simply absent, and a rerun extracts it)
            writer.close(raise_error=not failed)
        report(writer.written())
        if errors:
            raise errors[0]
        return results


    def _encode(self, chunk: _Chunk) -> dict[str, np.ndarray]:
        """One batch through every tower -> {"clip": (b, D), ["tokens": (b, L, W) f16], backbone: (b, Db)}."""
        emb, tok = self.clip.encode_batch(chunk.pixels, tokens=self.config.tokens)  # (b, D), (b, L, W)
        rows = {"clip": emb}
        if tok is not None:
            rows["tokens"] = tok.astype(np.float16)
        for name, net in self.backbones.items():
            rows[name] = net.encode_batch(chunk.extra[name])  # (b, Db)
        return rows


@dataclass
class _Bug:  # an unexpected exception in a decode thread, carried to the merger
    error: Exception


class _ConsumerGone(Exception):
    """The consumer stopped (an error or --strict): the producer ends without sending more."""


class _Packer:
    """Packs the frames of consecutive videos into batches of `batch_size` and sends each full one.

    A video's end message (_Done or _Failed) is sent only after the batch holding its last frame, so
    the consumer has all of a video's embeddings when its end arrives, and videos end in input order.
    A failing video's frames still waiting here are dropped, and the waiting batch goes out at once,
    so the failure reaches the consumer before any frame of a later video is encoded.
    """

    def __init__(self, batch_size: int, put: Callable[[object], bool]):
        self.batch_size = batch_size
        self._put = put
        self._frames: list[_Frame] = []
        self._owners: list[str] = []  # video key of each waiting frame
        self._ends: list[object] = []  # end messages waiting for the batch to go out

    def add(self, key: str, frame: _Frame) -> None:
        self._frames.append(frame)
        self._owners.append(key)
        if len(self._frames) == self.batch_size:
            self.flush()

    def end(self, key: str, msg: object) -> None:
        if isinstance(msg, _Failed):
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
            self._send(_Chunk(_stack([f.pixels for f in self._frames]),
                              {n: _stack([f.extra[n] for f in self._frames]) for n in names}, owners))
            self._frames, self._owners = [], []
        for msg in self._ends:
            self._send(msg)
        self._ends = []

    def _send(self, msg: object) -> None:
        if not self._put(msg):
            raise _ConsumerGone


class _EntryWriter:
    """Writes finished entries in a background thread, in order; `written()` hands back their Results.

    Results come back only after their entry is whole in the store, and only to the calling thread, so
    progress callbacks never run concurrently and never report a video that is not yet written.
    """

    def __init__(self, store: FeatureStore, max_pending: int = 2):
        self.store = store
        self._todo: queue.Queue = queue.Queue(maxsize=max_pending)  # bounds memory held by unwritten entries
        self._done: queue.Queue = queue.Queue()
        self._errors: list[Exception] = []
        self._thread = threading.Thread(target=self._loop, daemon=True, name="fgm-extract-writer")
        self._thread.start()

    def submit(self, result: Result, arrays: dict | None = None, meta: dict | None = None) -> None:
        """Queue one video's outcome; `arrays` None for a failed video (nothing to write)."""
        self._raise()
        self._todo.put((result, arrays, meta))

    def written(self) -> list[Result]:
        """Results whose entries are written since the last call (never blocks)."""
        self._raise()
        out = []
        while not self._done.empty():
            out.append(self._done.get_nowait())
        return out

    def flush(self) -> list[Result]:
        """Wait until everything submitted is written, then return what `written()` returns."""
        self._todo.join()
        return self.written()

    def close(self, raise_error: bool = True) -> None:
        """Write everything queued, then stop the thread; re-raise a write error if `raise_error`."""
        self._todo.put(None)
        self._thread.join()
        if raise_error:
            self._raise()

    def _loop(self) -> None:
        while (job := self._todo.get()) is not None:
            try:
                self._write(*job)
            finally:
                self._todo.task_done()
        self._todo.task_done()

    def _write(self, result: Result, arrays: dict | None, meta: dict | None) -> None:
        if self._errors:
            return  # after a failed write, drain without writing so close() never blocks
        try:
            if arrays is not None:
                self.store.write_entry(result.key, arrays, meta)
        except Exception as e:  # disk full, permissions...: the calling thread re-raises it
            self._errors.append(e)
            return
        self._done.put(result)

    def _raise(self) -> None:
        if self._errors:
            raise self._errors[0]


def _load_malloc_trim():
    """glibc's malloc_trim, or None (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _load_malloc_trim()


def release_free_memory() -> None:
    """Hand freed heap pages back to the system (glibc), once per CLIP batch.

    The batches are host tensors whichever device runs the towers, so this applies on CUDA too.
    glibc raises its mmap threshold each time a large block is freed, so later batch-sized tensors
    (tens of MB, allocated in the producer thread and freed in this one) come from the heap, whose
    free pages stay resident: measured, the extra peak RSS grew with video length in fps mode
    (+275 MB at 120 frames, +410 MB at 480). Trimming after each batch keeps it flat
    (benchmarks/extract_bench.py prints the figures); it costs a few ms per batch.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _put(q: queue.Queue, msg: object, stop: threading.Event) -> bool:
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


# ---- dask entry point: one Extractor per worker process, reused across tasks ---------------------
_WORKER_EXTRACTORS: dict[tuple, Extractor] = {}


def extract_chunk(items: list[VideoItem], config: dict, store_url: str, device: str,
                  cache_dir: str | None, run_id: str, decode_threads: int = 0) -> list[Result]:
    """Run on a dask worker: extract a chunk of videos, loading the towers once per process."""
    cfg = ExtractConfig.from_dict(config)
    key = (cfg.digest(), store_url, device, cache_dir, decode_threads)
    if key not in _WORKER_EXTRACTORS:
        _WORKER_EXTRACTORS.clear()
        _WORKER_EXTRACTORS[key] = Extractor(cfg, store_url, device, cache_dir=cache_dir,
                                            decode_threads=decode_threads)
    extractor = _WORKER_EXTRACTORS[key]
    extractor.run_id = run_id
    return extractor.run(items)

