"""The extraction's helper threads: decode threads merged back into input order, and the entry writer.

Also the heap trim the consumer calls once per CLIP batch (release_free_memory).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import queue
import threading
from typing import Callable, Iterator

from extract.batching import Bug, Frame, Result, put
from extract.inputs import VideoItem
from fgm_common.store import FeatureStore


def ordered_messages(items: list[VideoItem], produce: Callable[[VideoItem, int], Iterator[object]], n_threads: int,
                     queue_size: int) -> Iterator[tuple[VideoItem, object]]:
    """(video, message) for every video's frames and end, in input order; `produce(item, w)` runs in thread w.

    Thread w decodes videos w, w + n, w + 2n, ... into its own bounded queue; taking the queues in
    turn restores input order, so the batches are the same as with one thread. Closing the
    generator stops and joins the threads; a bug in a thread is raised here, in order.
    """
    n = min(n_threads, len(items))
    if n <= 1:
        for item in items:
            for msg in produce(item, 0):
                yield item, msg
        return
    queues = [queue.Queue(maxsize=queue_size) for _ in range(n)]
    halt = threading.Event()

    def decode(w: int) -> None:
        try:
            for item in items[w::n]:
                for msg in produce(item, w):
                    if not put(queues[w], msg, halt):
                        return
        except Exception as e:  # a bug: raised in order by the merger below
            put(queues[w], Bug(e), halt)

    threads = [threading.Thread(target=decode, args=(w,), daemon=True, name=f"fgm-extract-producer-{w}")
               for w in range(n)]
    for t in threads:
        t.start()
    try:
        for i, item in enumerate(items):
            while True:
                msg = queues[i % n].get()
                if isinstance(msg, Bug):
                    raise msg.error
                yield item, msg
                if not isinstance(msg, Frame):
                    break  # the video's end: the next one comes from the next thread
    finally:
        halt.set()
        for t in threads:
            t.join(timeout=5)


class EntryWriter:
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
    (allocated in the producer thread and freed in this one) come from the heap, whose free pages
    stay resident, and peak RSS grows with video length in fps mode. Trimming after each batch keeps
    it flat for a few ms per batch; benchmarks/extract_bench.py prints both (docs/design-choices.md).
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
