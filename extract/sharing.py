"""Share a store with other processes: each video is taken under a lease, and videos others hold are waited for.

A run asks `claim` before it decodes a video (extract/produce.py, and the dask driver before it
submits one). When the run has gone through its list, `wait` watches the videos other processes
held: each is either finished by them (its entry or failure appears) or, when its holder died,
free once the lease expires, and then this run extracts it. So processes started on one store
split its videos, and the last one alive finishes what a killed one left.
"""

from __future__ import annotations

import time
from typing import Callable

from extract.claims import Leases
from extract.inputs import VideoItem
from extract.planning import finished_by_other
from fgm_common.store import FeatureStore


class Sharing:
    """The leases of one run on one store, and its view of what other processes finished."""

    def __init__(self, store: FeatureStore, leases: Leases, run_id: str, sleep: Callable[[float], None] = time.sleep):
        self.store, self.leases, self.run_id, self._sleep = store, leases, run_id, sleep
        # failures already in the store when this run planned: retried with --retry-failed, never
        # mistaken for another process's verdict
        self.failed_before = {key: f.get("run_id") for key, f in store.failures().items()}
        self.poll = min(5.0, leases.seconds / 4)  # how often held videos are looked at again

    def claim(self, item: VideoItem) -> str | None:
        """None when this run may extract `item` (it holds the lease now); else the owner of the live lease,
        or 'finished' when another process finished the video since this run planned it."""
        held = self.leases.take(item.key)
        if held is not None:
            return held.owner
        if finished_by_other(self.store, item, self.run_id, self.failed_before):  # finished just before the lease was taken
            self.leases.release(item.key)
            return "finished"
        return None

    def wait(self, held: list[VideoItem], note: Callable[[str], None]) -> tuple[list[VideoItem], list[VideoItem]]:
        """Wait while other processes hold every one of `held`; -> (videos now left to this run because
        their holder is gone, videos still held), both [] once the holders finished every one."""
        told = False
        while True:
            held = [i for i in held if not finished_by_other(self.store, i, self.run_id, self.failed_before)]
            free = [i for i in held if self._free(i)]
            if free or not held:
                return free, [i for i in held if i not in free]
            if not told:
                note(f"waiting for {len(held)} videos that other processes are extracting into this store (a "
                     "video whose process died is taken over once its lease expires)")
                told = True
            self._sleep(self.poll)

    def _free(self, item: VideoItem) -> bool:
        lease = self.leases.current(item.key)
        return lease is None or not lease.live(self.leases.clock())
