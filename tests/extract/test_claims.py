"""Leases: one holder per video, others told who holds it, takeover after expiry, renewal, release."""

from __future__ import annotations

import threading
import uuid

import pytest

from extract.claims import Leases


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["local", "memory"])
def url(request, tmp_path) -> str:
    return str(tmp_path / "s.zarr") if request.param == "local" else f"memory://claims-{uuid.uuid4().hex}"


def test_one_holder_and_the_other_is_told_who(url):
    clock = Clock()
    a, b = Leases(url, "A", 60, clock), Leases(url, "B", 60, clock)
    assert a.take("v.mp4") is None  # A holds it now
    assert a.take("v.mp4") is None  # asking again changes nothing
    held = b.take("v.mp4")
    assert (held.owner, held.generation, held.expires) == ("A", 1, 1060.0)
    assert b.take("w.mp4") is None and a.take("w.mp4").owner == "B"
    assert a.held() != [] and b.held() != []


def test_an_expired_lease_is_taken_over_by_one_process(url):
    clock = Clock()
    dead, b, c = Leases(url, "dead", 60, clock), Leases(url, "B", 60, clock), Leases(url, "C", 60, clock)
    dead.take("v.mp4")
    clock.now += 59
    assert b.take("v.mp4").owner == "dead"  # still live
    clock.now += 2
    assert b.take("v.mp4") is None  # expired: B takes generation 2
    assert c.take("v.mp4").owner == "B" and c.current("v.mp4").generation == 2
    dead.renew()  # the old holder comes back: it sees the newer generation and gives the video up
    assert dead.held() == [] and b.current("v.mp4").owner == "B"


def test_renewal_extends_and_release_frees(url):
    clock = Clock()
    a, b = Leases(url, "A", 60, clock), Leases(url, "B", 60, clock)
    a.take("v.mp4")
    clock.now += 50
    a.renew()
    clock.now += 50  # 100 s after taking, 50 after renewing: still A's
    assert b.take("v.mp4").owner == "A"
    a.release("v.mp4")
    assert a.current("v.mp4") is None and b.take("v.mp4") is None
    assert a.held() == []


def test_close_releases_what_is_still_held_and_the_thread_renews(url):
    a = Leases(url, "A", 0.3).start()
    a.take("v.mp4")
    first = a.current("v.mp4").expires
    threading.Event().wait(0.25)  # more than a third of the lease: one renewal at least
    assert a.current("v.mp4").expires > first
    a.close()
    assert a.current("v.mp4") is None


def test_racing_processes_get_one_lease(url):
    clock = Clock()
    leases = [Leases(url, f"P{i}", 60, clock) for i in range(6)]
    got: list[str] = []
    start = threading.Barrier(len(leases))

    def race(lease: Leases) -> None:
        start.wait()
        if lease.take("v.mp4") is None:
            got.append(lease.owner)

    threads = [threading.Thread(target=race, args=(lease,)) for lease in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 1 and leases[0].current("v.mp4").owner == got[0]


def test_a_lease_must_last(url):
    with pytest.raises(ValueError, match="positive"):
        Leases(url, "A", 0)


def test_a_lease_of_a_gone_process_on_this_machine_is_taken_at_once(url):
    """kill -9 then a rerun: no wait for the dead process's leases; another machine's are waited out."""
    import socket
    import subprocess
    import sys

    from fgm_common.store import entry_id

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(gone.stdout)  # a process that has exited
    a = Leases(url, "A", 60)
    for key, host in (("here.mp4", socket.gethostname()), ("there.mp4", "another-machine")):
        a.objects.create(f"{entry_id(key)}/00000001.json",
                         {"owner": f"{host}:{pid}:x", "expires": a.clock() + 60, "host": host, "pid": pid})
    assert a.take("here.mp4") is None and a.current("here.mp4").generation == 2
    assert a.take("there.mp4").owner == f"another-machine:{pid}:x"


def test_sweep_deletes_lapsed_and_dead_leases_only(url):
    clock = Clock()
    a, b, c = Leases(url, "A", 60, clock), Leases(url, "B", 60, clock), Leases(url, "C", 600, clock)
    a.take("lapsed.mp4")
    b.take("mine.mp4")
    c.take("live.mp4")
    clock.now += 100  # A's and B's leases lapse, C's lives on
    assert b.sweep() == 1  # only A's: B still holds its own
    assert a.current("lapsed.mp4") is None and b.current("mine.mp4").owner == "B"
    assert c.current("live.mp4").owner == "C"


def test_release_renew_and_sweep_ignore_another_process_write_in_flight(tmp_path):
    """Two processes started together: one's temporary lease file sits beside the other's lease while it releases."""
    from fgm_common.store.layout import entry_id

    clock = Clock()
    url = str(tmp_path / "s.zarr")
    a, b = Leases(url, "A", 60, clock), Leases(url, "B", 60, clock)
    a.take("v.mp4")
    b.objects._local_tmp(b.objects.path(f"{entry_id('v.mp4')}/00000002.json"), b"{}")  # B's write, not yet linked
    a.renew()
    assert a.held() == [entry_id("v.mp4")] and b.current("v.mp4").owner == "A"
    a.release("v.mp4")
    assert a.current("v.mp4") is None and a.sweep() == 0
