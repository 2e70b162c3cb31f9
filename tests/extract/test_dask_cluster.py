"""fgm-extract on a real dask cluster (scheduler and workers started by the dask CLI) survives losing a worker."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from extract.claims import Leases
from fgm_common.store import FeatureStore
from tests.conftest import TINY_ARGS
from tests.extract.cli_helpers import REPO_ROOT, check_whole, entry_counts
from tests.extract.cli_helpers import more_videos

FRAMES = 4
# the CLI of the running interpreter's environment first, so an unactivated venv's python finds its own
DASK = shutil.which("dask", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
pytestmark = pytest.mark.skipif(DASK is None, reason="the dask CLI is not on PATH (pip install 'dask[distributed]')")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """A process in a session of its own, so killing its group takes its children (a nanny's worker) too."""
    env = {**os.environ, **(extra_env or {}),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log, "wb") as out:
        return subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def _busy_worker(client, deadline: float) -> str:
    """The name of a worker that is running a task now (its loss must be made good by the other)."""
    while time.monotonic() < deadline:
        by_address = {a: w["name"] for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
        busy = [by_address[a] for a, tasks in client.processing().items() if tasks and a in by_address]
        if busy:
            return busy[0]
        time.sleep(0.05)
    raise AssertionError("no worker was running a task")


@contextmanager
def _cluster(tmp_path: Path, videos: Path, url: str, scheduler_env: dict[str, str] | None = None):
    """A scheduler and two workers from the dask CLI on loopback, and fgm-extract running on them; yields
    (the processes by name, the name of a worker that is running a task once the first entry is written).

    Every process is killed on the way out, whatever happened.
    """
    from dask.distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs: dict[str, subprocess.Popen] = {}
    try:
        procs["scheduler"] = _start([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                     "--no-dashboard"], tmp_path / "scheduler.log", scheduler_env)
        for name in ("w0", "w1"):  # torch and the pipeline load as the worker starts, not in its first task
            procs[name] = _start([DASK, "worker", address, "--name", name, "--nworkers", "1", "--nthreads", "1",
                                  "--no-dashboard", "--local-directory", str(tmp_path / name),
                                  "--preload", "extract.dask_task"], tmp_path / f"{name}.log")
        with Client(address, timeout=30) as client:
            # both workers first: on a loaded machine one starts seconds after the other, longer than the run
            client.wait_for_workers(2, timeout=90)
            procs["driver"] = _start([sys.executable, "-m", "extract.cli", str(videos), "--out", url, *TINY_ARGS,
                                      "--frames", str(FRAMES), "--scheduler", address, "--batch-size", "4"],
                                     tmp_path / "driver.log")
            deadline = time.monotonic() + 60
            while procs["driver"].poll() is None and time.monotonic() < deadline and not entry_counts(url)[0]:
                time.sleep(0.05)
            assert procs["driver"].poll() is None, "the run ended before a worker could be killed"
            yield procs, _busy_worker(client, deadline)
    finally:
        for proc in procs.values():
            _kill_group(proc)


def _killed_mid_run(tmp_path: Path, tiny_videos: Path, scheduler_env: dict[str, str] | None = None):
    """Run fgm-extract on a fresh cluster, SIGKILL a busy worker (nanny and worker: the machine is gone) after
    the first entry; -> (store url, video keys, the driver's exit code, its output)."""
    n = more_videos(tiny_videos, tmp_path / "videos", copies=6)
    url = str(tmp_path / "store.zarr")
    with _cluster(tmp_path, tmp_path / "videos", url, scheduler_env) as (procs, victim):
        _kill_group(procs.pop(victim))
        done_at_kill = entry_counts(url)[0]
        rc = procs["driver"].wait(timeout=120)
    keys = sorted(str(p.relative_to(tmp_path / "videos")) for p in (tmp_path / "videos").rglob("*.mp4"))
    assert len(keys) == n and done_at_kill < n  # the kill came after the first entry, before the last
    return url, keys, rc, (tmp_path / "driver.log").read_text()


def _no_leases(url: str, keys: list[str]) -> bool:
    leases = Leases(url, "x")
    return all(leases.current(k) is None for k in keys)


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_made_good_by_the_other(tiny_videos, tmp_path):
    # the scheduler runs the dead worker's tasks again elsewhere (distributed.scheduler.allowed-failures: 3)
    url, keys, rc, log = _killed_mid_run(tmp_path, tiny_videos)
    assert rc == 0, log
    store = FeatureStore.open(url)
    assert [e.key for e in store.entries()] == keys  # every video, whole, no failure
    assert all(check_whole(store, e, FRAMES) for e in store.entries())
    assert store.failures() == {}
    [run] = store.runs()
    assert (run["extracted"], run["failed"], run["scheduler"].startswith("tcp://127.0.0.1:")) == (len(keys), 0, True)
    assert _no_leases(url, keys)


@pytest.mark.slow
def test_videos_of_a_worker_lost_for_good_fail_and_the_rerun_finishes_them(tiny_videos, tmp_path, run_extract_cli):
    # a scheduler allowing no failure gives up on the dead worker's tasks (KilledWorker) instead of retrying them
    url, keys, rc, log = _killed_mid_run(tmp_path, tiny_videos, {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"})
    assert rc == 1, log
    store = FeatureStore.open(url)
    failed = store.failures()
    assert failed and {r["reason"] for r in failed.values()} == {"worker-error"}, failed
    assert all("KilledWorker" in r["message"] for r in failed.values()), failed
    assert sorted([e.key for e in store.entries()] + list(failed)) == keys  # each video: an entry or a failure
    assert _no_leases(url, keys)
    # the failure keeps no fingerprint of the file, so a plain rerun (no --retry-failed) tries those videos again
    rerun = run_extract_cli(tmp_path / "videos", url, frames=FRAMES)
    assert rerun.exit_code == 0, rerun.output
    store = FeatureStore.open(url)
    assert [e.key for e in store.entries()] == keys and store.failures() == {}
    assert all(check_whole(store, e, FRAMES) for e in store.entries())
    assert store.runs()[-1]["extracted"] == len(failed)
