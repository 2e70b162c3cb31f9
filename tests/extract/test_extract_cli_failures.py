"""fgm-extract under bad input and failure: bad files recorded, --strict, producer bugs, kill -9 then resume."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from extract.synth import SynthConfig, clip_rng, render_clip, write_dataset
from fgm_common.store import FeatureStore

from tests.extract.cli_helpers import FRAMES, REPO_ROOT, check_whole, entry_counts, flat, run_ids, write_mp4

# ---- bad inputs --------------------------------------------------------------------------------------

def add_bad_files(videos: Path) -> dict[str, str]:
    """Three unusable files and one 1-frame video among good ones; returns {key: expected failure reason}."""
    (videos / "circle_clockwise" / "zero.mp4").write_bytes(b"")
    (videos / "circle_counterclockwise" / "notes.avi").write_text("this is a text file, not a video\n" * 20)
    good = (videos / "swing_slow" / "swing_slow_0000.mp4").read_bytes()
    (videos / "swing_slow" / "truncated.mp4").write_bytes(good[: len(good) // 2])
    frame = render_clip("swing_slow", clip_rng(5, "swing_slow", 0), SynthConfig(size=48, min_frames=12, max_frames=20))[:1]
    write_mp4(videos / "swing_slow" / "one_frame.mp4", frame)
    return {"circle_clockwise/zero.mp4": "empty-file", "circle_counterclockwise/notes.avi": "not-a-video",
            "swing_slow/truncated.mp4": "unreadable"}


def test_bad_inputs_are_recorded_and_not_retried(tiny_videos_copy, tmp_path, run_extract_cli):
    expected = add_bad_files(tiny_videos_copy)
    url = str(tmp_path / "store.zarr")
    result = run_extract_cli(tiny_videos_copy, url)
    assert result.exit_code == 1, result.output
    out = flat(result.output)
    store = FeatureStore.open(url)
    failures = store.failures()
    assert {k: v["reason"] for k, v in failures.items()} == expected
    first_run = store.runs()[-1]["run_id"]
    for key, record in failures.items():
        assert record["message"] and record["run_id"] == first_run
        assert f"failed: {key} ({expected[key]})" in out
    keys = {e.key for e in store.entries()}
    assert len(keys) == 7 and "swing_slow/one_frame.mp4" in keys and not keys & set(expected)
    for entry in store.entries():
        check_whole(store, entry, FRAMES)

    # A 1-frame video gives T copies of its one frame and zero motion between them.
    [one] = [e for e in store.entries() if e.key == "swing_slow/one_frame.mp4"]
    a = store.read(one)
    assert one.meta["native_frames"] == 1 and one.meta["short_video"] is True
    np.testing.assert_array_equal(a["frame_index"], np.zeros(FRAMES, np.int64))
    np.testing.assert_array_equal(a["timestamps_ms"], np.zeros(FRAMES))
    np.testing.assert_allclose(a["clip"], np.repeat(a["clip"][:1], FRAMES, 0), atol=1e-5)
    assert a["flow"].shape[0] == FRAMES - 1 and not a["flow"].any()

    # Unchanged failures are not retried...
    result = run_extract_cli(tiny_videos_copy, url)
    assert result.exit_code == 1, result.output
    assert "--retry-failed" in flat(result.output)
    store = FeatureStore.open(url)
    assert (store.runs()[-1]["failed"], store.runs()[-1]["extracted"]) == (0, 0)
    assert {r["run_id"] for r in store.failures().values()} == {first_run}

    # ...unless asked,
    result = run_extract_cli(tiny_videos_copy, url, "--retry-failed")
    assert result.exit_code == 1, result.output
    store = FeatureStore.open(url)
    retry_run = store.runs()[-1]
    assert retry_run["failed"] == 3 and {r["run_id"] for r in store.failures().values()} == {retry_run["run_id"]}

    # ...or the file changed: a repaired video is extracted and leaves the failure list.
    shutil.copy(tiny_videos_copy / "circle_clockwise" / "circle_clockwise_0000.mp4",
                tiny_videos_copy / "circle_clockwise" / "zero.mp4")
    result = run_extract_cli(tiny_videos_copy, url)
    assert result.exit_code == 1, result.output  # two failures remain
    store = FeatureStore.open(url)
    assert "circle_clockwise/zero.mp4" not in store.failures() and len(store.failures()) == 2
    assert "circle_clockwise/zero.mp4" in {e.key for e in store.entries()}


def test_strict_stops_at_first_failure_and_keeps_finished(tiny_videos_copy, tmp_path, run_extract_cli):
    # Discovery order is sorted by path: two circle_clockwise videos come before this one.
    (tiny_videos_copy / "circle_counterclockwise" / "bad.mp4").write_bytes(b"")
    url = str(tmp_path / "store.zarr")
    threads_before = set(threading.enumerate())
    result = run_extract_cli(tiny_videos_copy, url, "--strict", "--batch-size", "1")
    assert result.exit_code == 1, result.output
    assert "--strict: stopped at the first failure" in flat(result.output)
    store = FeatureStore.open(url)
    assert [e.key for e in store.entries(include_incomplete=True)] == [
        "circle_clockwise/circle_clockwise_0000.mp4", "circle_clockwise/circle_clockwise_0001.mp4"]
    for entry in store.entries():
        check_whole(store, entry, FRAMES)
    assert list(store.failures()) == ["circle_counterclockwise/bad.mp4"]
    # zarr may start its own pool threads; the producer's name says "producer" (its target, or given)
    leaked = [t for t in threading.enumerate() if t not in threads_before and "producer" in t.name]
    assert not leaked, f"the producer thread outlived the run: {leaked}"


def test_a_bug_in_the_producer_is_raised_not_swallowed(tiny_videos, tmp_path, run_extract_cli, monkeypatch):
    def broken_hash(path):
        raise KeyError("simulated bug")  # not a bad-video error: must not end the run quietly

    monkeypatch.setattr("extract.produce.content_sha256", broken_hash)
    url = str(tmp_path / "store.zarr")
    with pytest.raises(KeyError, match="simulated bug"):
        run_extract_cli(tiny_videos, url)
    store = FeatureStore.open(url)
    assert store.entries(include_incomplete=True) == [] and store.runs()[-1]["extracted"] == 0



# ---- kill -9 -------------------------------------------------------------------------------------------

def _extract_then_kill(videos: Path, url: str, frames: int) -> tuple[int, int, bool]:
    """Run fgm-extract in a subprocess; SIGKILL it once 2 entries are complete, preferably mid-write.

    After 2 complete entries it waits up to 3 s for an entry being written (group made, not yet
    complete) so the kill lands inside a write. Returns (complete, all entries) at the kill and
    whether the kill landed before the run ended."""
    code = "import sys; sys.argv[0] = 'fgm-extract'; from extract.cli import main; main()"
    cmd = [sys.executable, "-c", code, str(videos), "--out", url, "--clip-model", "fgm-tiny-vit",
           "--pretrained", "none", "--frames", str(frames), "--batch-size", "1", "--device", "cpu", "--quiet", "--flow-pairs", "sampled"]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    deadline, mid_write_deadline = time.monotonic() + 240, None
    try:
        while proc.poll() is None:
            assert time.monotonic() < deadline, "fgm-extract made no progress in 240 s"
            complete, total = entry_counts(url)
            if complete >= 2:
                mid_write_deadline = mid_write_deadline or time.monotonic() + 3.0
                if total > complete or time.monotonic() > mid_write_deadline:
                    break
            time.sleep(0.005)
        in_time = proc.poll() is None
        if in_time:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        stderr = proc.stderr.read().decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    if not in_time:
        assert proc.returncode == 0, f"fgm-extract failed before the kill:\n{stderr[-3000:]}"
    else:
        assert proc.returncode == -signal.SIGKILL
    store = FeatureStore.open(url)
    return len(store.entries()), len(store.entries(include_incomplete=True)), in_time


@pytest.mark.slow
def test_kill_minus_9_then_resume(tmp_path, run_extract_cli):
    videos = tmp_path / "videos"
    write_dataset(videos, SynthConfig(videos_per_class=2, size=64, min_frames=40, max_frames=60), progress=False)
    n_videos = len(list(videos.rglob("*.mp4")))
    assert n_videos == 12
    for frames in (24, 60):  # more frames per video if the first run ended before the kill landed
        url = str(tmp_path / f"store-{frames}.zarr")
        done_at_kill, started_at_kill, in_time = _extract_then_kill(videos, url, frames)
        if in_time and done_at_kill < n_videos:
            break
    else:
        pytest.fail(f"fgm-extract finished {n_videos} videos before the kill landed, even at {frames} frames; "
                    "give the test more work")
    survivors = run_ids(url)
    assert len(survivors) == done_at_kill >= 2
    assert started_at_kill - done_at_kill in (0, 1)  # one writer: at most the entry in flight is partial

    result = run_extract_cli(videos, url, frames=frames)
    assert result.exit_code == 0, result.output
    store = FeatureStore.open(url)
    entries = store.entries()
    assert len(entries) == len(store.entries(include_incomplete=True)) == n_videos
    for entry in entries:
        check_whole(store, entry, frames)
    rerun_id = store.runs()[-1]["run_id"]
    after = run_ids(url)
    assert all(after[k] == v for k, v in survivors.items())  # finished before the kill: kept, not redone
    assert all(after[k] == rerun_id for k in set(after) - set(survivors))
    assert store.runs()[-1]["extracted"] == n_videos - done_at_kill and store.failures() == {}
