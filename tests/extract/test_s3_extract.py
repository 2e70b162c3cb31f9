"""fgm-extract with --out s3://... (a moto server on loopback): the same store as a local folder, leases, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from extract.claims import Leases
from extract.cli import export_app
from extract.inspect_cli import info_app, show_app
from fgm_common.store import FeatureStore
from tests.extract.cli_helpers import REPO_ROOT, check_whole, flat
from tests.extract.cli_helpers import entry_counts, extract_command, more_videos

FRAMES = 4
from tests.s3_helpers import moto_endpoint, s3_bucket, s3_env  # noqa: F401 (fixtures)


def test_an_s3_store_holds_what_a_folder_holds_and_every_command_reads_it(base, run_extract_cli, s3_bucket,
                                                                          tmp_path):
    url = f"{s3_bucket}/store.zarr"
    result = run_extract_cli(base.videos, url, "--batch-size", "4")  # as `base` was made, into a local folder
    assert result.exit_code == 0, result.output
    local, remote = FeatureStore.open(base.url), FeatureStore.open(url)
    assert [e.key for e in remote.entries()] == [e.key for e in local.entries()] and len(local.entries()) == 6
    for entry in local.entries():
        want, got = local.read(entry), remote.read(entry.key)
        assert sorted(got) == sorted(want) and all(np.array_equal(got[k], want[k]) for k in want), entry.key
        assert remote.entry_meta(entry.key)["sha256"] == entry.meta["sha256"]
    assert remote.classes == local.classes and remote.clip_identity == local.clip_identity

    again = run_extract_cli(base.videos, url)
    assert again.exit_code == 0 and "every video is already in the store (0 decoded)" in flat(again.output)

    info = CliRunner().invoke(info_app, [url, "--json"])
    assert info.exit_code == 0, info.output
    record = json.loads(info.output)
    assert record["videos"] == 6 and [r["extracted"] for r in record["runs"]] == [6, 0]

    out = tmp_path / "features.h5"
    exported = CliRunner().invoke(export_app, [url, str(out)])
    assert exported.exit_code == 0, exported.output
    first = local.entries()[0]
    with h5py.File(out, "r") as h5:
        assert len(h5["videos"]) == 6
        np.testing.assert_array_equal(h5["videos"][first.id]["clip"][()], local.read(first)["clip"])

    shown = CliRunner().invoke(show_app, [url, first.key, "--out", str(tmp_path / "entry.png")])
    assert shown.exit_code == 0, shown.output
    assert (tmp_path / "entry.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missing_bucket_is_one_line_saying_what_to_do(tiny_videos, run_extract_cli, s3_env):
    result = run_extract_cli(tiny_videos, "s3://fgm-no-such-bucket/store.zarr")
    assert result.exit_code == 2
    assert "cannot make a store at s3://fgm-no-such-bucket/store.zarr" in flat(result.output)
    assert "create the bucket first" in flat(result.output)


def test_without_s3fs_the_commands_name_the_extra_to_install(tiny_videos, run_extract_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "s3fs", None)  # import s3fs now fails as if it were not installed
    url = "s3://bucket/store.zarr"
    for result in (run_extract_cli(tiny_videos, url), CliRunner().invoke(info_app, [url])):
        assert result.exit_code == 2
        assert flat(result.output).endswith(
            f"error: {url} is on object storage, which needs s3fs: pip install 'fgm[s3]'")


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def test_leases_on_s3_take_renew_expire_release(s3_bucket):
    url, clock = f"{s3_bucket}/store.zarr", Clock()
    a, b = Leases(url, "A", 30, clock), Leases(url, "B", 30, clock)
    assert a.take("v.mp4") is None and b.take("v.mp4").owner == "A"
    clock.now += 20
    a.renew()
    clock.now += 20  # 40 s after taking, 20 after renewing: still A's
    assert b.take("v.mp4").owner == "A"
    clock.now += 11  # expired: B takes the next generation, and A, back, gives the video up
    assert b.take("v.mp4") is None and b.current("v.mp4").generation == 2
    a.renew()
    assert a.held() == [] and a.current("v.mp4").owner == "B"
    b.release("v.mp4")
    assert b.current("v.mp4") is None and b.objects.names() == []


@pytest.mark.slow
def test_a_process_killed_on_s3_is_finished_by_the_next(tiny_videos, s3_bucket, tmp_path):
    n = more_videos(tiny_videos, tmp_path / "videos", copies=2)
    url = f"{s3_bucket}/store.zarr"
    # the moto endpoint travels in os.environ
    command = extract_command(tmp_path / "videos", url, "--lease-seconds", "2", frames=FRAMES)
    first = subprocess.Popen([*command, "--batch-size", "2"], cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and first.poll() is None and entry_counts(url)[0] < 1:
        time.sleep(0.1)
    assert first.poll() is None, "the first process ended before it could be killed"
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    done_before = entry_counts(url)[0]
    assert 0 < done_before < n
    second = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    [run] = FeatureStore.open(url).runs()  # the killed process never recorded its run
    assert run["extracted"] == n - done_before
    store = FeatureStore.open(url)
    assert len(store.entries()) == n and all(check_whole(store, e, FRAMES) for e in store.entries())
