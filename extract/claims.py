"""Leases on videos, so processes (or machines) extracting into one store split the videos instead of repeating them.

Before a process decodes a video it takes the video's lease: the object
`claims/<entry id>/<generation>.json` (fgm_common/store/layout.py), created exclusively, so of
processes racing for a video exactly one gets it. It names the owner and an expiry. A process that
finds a live lease leaves the video to its owner; a lease past its expiry (the owner died or hung),
or one whose owner was a process of this machine that no longer exists, is taken over by creating
the next generation, which again only one process can do. The holder
renews its leases from a thread every third of their length, and deletes them once the video's
entry or failure is written.

Leases save work; correctness never rests on them. A holder that stalled past its expiry may find
its video redone by another process: both write the same numbers, and an entry is whole or absent
whichever write lands last (FeatureStore.write_entry). Expiry is wall-clock time, so machines that
share a store need clocks in step (NTP); `LEASE_SECONDS` leaves a wide margin for that.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from fgm_common.store.layout import CLAIMS, entry_id
from fgm_common.store.objects import JsonObjects

LEASE_SECONDS = 120.0


@dataclass(frozen=True)
class Lease:
    """One generation of a video's lease: who holds it, until when (epoch seconds), from which host and process."""

    generation: int
    owner: str
    expires: float
    host: str = ""
    pid: int = 0

    def live(self, now: float) -> bool:
        """Unexpired, and not held by a process of this machine that no longer exists (a kill -9 then a rerun
        need not wait out the lease; a process on another machine cannot be asked, so its lease must expire)."""
        if self.expires <= now:
            return False
        return self.host != socket.gethostname() or not self.pid or _running(self.pid)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def default_owner() -> str:
    """host:pid:random, unique among the processes of every machine sharing a store."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Leases:
    """This process's leases on one store's videos; `take`, `release`, and a renewing thread (`start`, `close`)."""

    def __init__(self, store_url: str, owner: str | None = None, seconds: float = LEASE_SECONDS,
                 clock: Callable[[], float] = time.time):
        if seconds <= 0:
            raise ValueError(f"a lease must last a positive time, not {seconds} s")
        self.objects = JsonObjects(store_url, CLAIMS)
        self.owner, self.seconds, self.clock = owner or default_owner(), seconds, clock
        self._held: dict[str, int] = {}  # entry id -> the generation this process holds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def current(self, key: str) -> Lease | None:
        """The newest lease on `key`'s video, None when there is none."""
        eid = entry_id(key)
        return self.current_of(eid, self.objects.names(f"{eid}/"))

    def current_of(self, eid: str, names: list[str]) -> Lease | None:
        """The newest of the lease objects `names` of entry `eid` that can still be read."""
        for name in reversed(names):
            found = self.objects.get(f"{eid}/{name}")
            if found is not None:  # else released between the listing and the read: look at the one before
                return Lease(int(name.split(".")[0]), found["owner"], float(found["expires"]),
                             found.get("host", ""), int(found.get("pid", 0)))
        return None

    def take(self, key: str) -> Lease | None:
        """Take the lease on `key`'s video: None when this process holds it now, else the live lease of the one that does."""
        eid = entry_id(key)
        while True:
            lease = self.current(key)
            if lease is not None and lease.owner == self.owner:
                return None
            if lease is not None and lease.live(self.clock()):
                return lease
            generation = lease.generation + 1 if lease is not None else 1
            if self.objects.create(f"{eid}/{generation:08d}.json", self._body()):
                with self._lock:
                    self._held[eid] = generation
                return None
            # another process created that generation first: look again at who holds it

    def release(self, key: str) -> None:
        """Drop this process's lease on `key`'s video, with the expired generations before it."""
        eid = entry_id(key)
        with self._lock:  # held while deleting, so a renewal in flight cannot write the lease back
            generation = self._held.pop(eid, None)
            if generation is None:
                return
            for name in self.objects.names(f"{eid}/"):
                if int(name.split(".")[0]) <= generation:
                    self.objects.delete(f"{eid}/{name}")
            self.objects.prune(eid)

    def renew(self) -> None:
        """Extend every lease held; one another process took over (this one had expired) is given up."""
        for eid in self.held():
            with self._lock:
                generation = self._held.get(eid)
                if generation is None:  # released meanwhile
                    continue
                newest = self.objects.names(f"{eid}/")
                if newest and int(newest[-1].split(".")[0]) > generation:
                    del self._held[eid]
                    continue
                self.objects.put(f"{eid}/{generation:08d}.json", self._body())

    def sweep(self) -> int:
        """Delete every lease that is no longer live (its holder died or let it lapse); -> how many.

        A holder killed between writing a video's entry and releasing its lease leaves the lease
        behind, and no later run takes a finished video again: without this they would pile up.
        """
        swept = 0
        for eid in self.objects.names():
            if eid.endswith(".json"):  # not a video's folder (the store's creation marker)
                continue
            names = self.objects.names(f"{eid}/")
            lease = self.current_of(eid, names)
            if lease is not None and lease.live(self.clock()):
                continue
            with self._lock:
                if eid in self._held:
                    continue
                for name in names:
                    self.objects.delete(f"{eid}/{name}")
                    swept += 1
                self.objects.prune(eid)
        return swept

    def held(self) -> list[str]:
        """Entry ids whose lease this process holds."""
        with self._lock:
            return sorted(self._held)

    def start(self) -> "Leases":
        """Renew every held lease every third of its length, in a daemon thread, until `close`."""
        def loop() -> None:
            while not self._stop.wait(self.seconds / 3):
                self.renew()

        self._thread = threading.Thread(target=loop, daemon=True, name="fgm-extract-leases")
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop renewing and release every lease still held (videos this run did not finish)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            for eid, generation in self._held.items():
                self.objects.delete(f"{eid}/{generation:08d}.json")
            self._held.clear()

    def _body(self) -> dict:
        return {"owner": self.owner, "expires": self.clock() + self.seconds, "host": socket.gethostname(),
                "pid": os.getpid()}
