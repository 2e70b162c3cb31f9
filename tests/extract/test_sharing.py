"""Processes sharing one store split its videos: each video is extracted once, and a killed process's are finished."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest

from extract.api import extract, make_config
from extract.claims import Leases
from extract.runner import RunOptions
from fgm_common.config import FlowConfig
from fgm_common.store import FeatureStore, entry_id
from fgm_common.store.layout import CLAIMS
from fgm_common.store.objects import JsonObjects
from tests.extract.cli_helpers import REPO_ROOT, check_whole, entry_counts, extract_command, more_videos

FRAMES = 4
TINY = {"clip_model": "fgm-tiny-vit", "pretrained": "none", "frames": FRAMES,
        "flow": FlowConfig(pairs="sampled")}  # as TINY_ARGS, which check_whole's flow lengths assume


@pytest.fixture(scope="module")
def reference(tiny_videos, tmp_path_factory) -> str:
    """The tiny folder extracted by one process alone: what another process would have written."""
    url = str(tmp_path_factory.mktemp("reference") / "store.zarr")
    extract(tiny_videos, url, make_config(**TINY), RunOptions(device="cpu"))
    return url


def _finish_later(url: str, reference: str, key: str, holder: Leases, after: float) -> threading.Thread:
    """Another process, simulated: after `after` s it writes `key`'s entry (as it would have made it) and releases."""
    def finish() -> None:
        time.sleep(after)
        ref = FeatureStore.open(reference)
        [entry] = [e for e in ref.entries() if e.key == key]
        FeatureStore.open(url, mode="a").write_entry(key, ref.read(entry), entry.meta)
        holder.release(key)

    thread = threading.Thread(target=finish, daemon=True)
    thread.start()
    return thread


def test_a_video_another_process_holds_is_left_to_it_and_counted(tiny_videos, reference, tmp_path):
    url, cfg = str(tmp_path / "store.zarr"), make_config(**TINY)
    keys = [e.key for e in FeatureStore.open(reference).entries()]
    FeatureStore.create_or_open(url, cfg, {})
    other = Leases(url, "other-host:1", seconds=60)
    assert other.take(keys[2]) is None
    finisher = _finish_later(url, reference, keys[2], other, after=1.0)
    notes: list[str] = []
    summary = extract(tiny_videos, url, cfg, RunOptions(device="cpu"), on_note=notes.append)
    finisher.join()
    assert (summary.extracted, summary.elsewhere, summary.failed) == (len(keys) - 1, 1, [])
    assert any("waiting for 1 videos that other processes are extracting" in n for n in notes)
    store = FeatureStore.open(url)
    assert [e.key for e in store.entries()] == keys and all(check_whole(store, e, FRAMES) for e in store.entries())
    assert all(Leases(url, "anyone").current(k) is None for k in keys)  # every lease released


def test_a_dead_process_video_is_taken_over_when_its_lease_expires(tiny_videos, reference, tmp_path):
    url, cfg = str(tmp_path / "store.zarr"), make_config(**TINY)
    keys = [e.key for e in FeatureStore.open(reference).entries()]
    FeatureStore.create_or_open(url, cfg, {})
    # never renewed, never released; a process of this machine that is gone would be taken over at once
    # (the next test), so this holder is on another machine: only the expiry frees its video
    JsonObjects(url, CLAIMS).create(f"{entry_id(keys[0])}/00000001.json", {
        "owner": "another-machine:1:x", "expires": time.time() + 1.5, "host": "another-machine", "pid": 1})
    started = time.perf_counter()
    summary = extract(tiny_videos, url, cfg, RunOptions(device="cpu", lease_seconds=1.5))
    assert (summary.extracted, summary.elsewhere, summary.failed) == (len(keys), 0, [])
    assert time.perf_counter() - started >= 1.0  # it waited for the lease, not less
    assert len(FeatureStore.open(url).entries()) == len(keys)


# ---- real processes --------------------------------------------------------------------------------

def _runs(url: str) -> list[dict]:
    return FeatureStore.open(url).runs()


@pytest.mark.slow
def test_two_processes_started_together_extract_each_video_once(tiny_videos, tmp_path):
    n = more_videos(tiny_videos, tmp_path / "videos", copies=4)
    url = str(tmp_path / "store.zarr")
    command = extract_command(tmp_path / "videos", url, frames=FRAMES)
    procs = [subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    runs = _runs(url)
    assert len(runs) == 2 and sum(r["extracted"] for r in runs) == n, runs  # each video once, between them
    store = FeatureStore.open(url)
    assert len(store.entries()) == n and all(check_whole(store, e, FRAMES) for e in store.entries())
    assert store.failures() == {}


@pytest.mark.slow
def test_a_process_killed_half_way_is_finished_by_the_next(tiny_videos, tmp_path):
    n = more_videos(tiny_videos, tmp_path / "videos", copies=6)
    url = str(tmp_path / "store.zarr")
    # one video at a time through the towers, so the kill lands between entries and inside one
    first = subprocess.Popen(extract_command(tmp_path / "videos", url, "--lease-seconds", "3", "--batch-size", "2",
                                             frames=FRAMES),
                             cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        if entry_counts(url)[0] >= 2:
            break
        time.sleep(0.05)
    assert first.poll() is None, "the first process ended before it could be killed"
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    done_before = len(FeatureStore.open(url).entries())
    assert 0 < done_before < n
    second = subprocess.run(extract_command(tmp_path / "videos", url, "--lease-seconds", "3", frames=FRAMES),
                            cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    [run] = _runs(url)  # the killed process never recorded its run
    assert run["extracted"] == n - done_before
    store = FeatureStore.open(url)
    assert len(store.entries()) == n and all(check_whole(store, e, FRAMES) for e in store.entries())
