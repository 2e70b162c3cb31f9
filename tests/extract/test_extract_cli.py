"""fgm-extract end to end with the tiny random-weight CLIP: layout, resume, refusals, bad inputs, kill -9, dask, export."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import cv2
import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from extract.cli import export_app, info_app, main
from extract.clip_model import last_vision_block, load_clip
from extract.flow import FlowComputer
from extract.synth import SynthConfig, clip_rng, render_clip, write_dataset
from extract.sampling import uniform_indices
from extract.video import open_source
from fgm_common.store import ARRAY_DTYPES, FLOW_ARRAYS, FRAME_ARRAYS, FeatureStore, StoreError
from fgm_common.texts import SCENE_BANK, class_sentences, load_descriptions

REPO_ROOT = Path(__file__).resolve().parents[2]
FRAMES = 6  # what the run_extract_cli fixture samples per video
TINY_CFG = json.loads((REPO_ROOT / "extract" / "model_configs" / "fgm-tiny-vit.json").read_text())


def flat(text: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(text.split())


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_ids(url: str) -> dict[str, str]:
    return {e.key: e.meta["run_id"] for e in FeatureStore.open(url).entries()}


def write_mp4(path: Path, frames: np.ndarray, fps: float = 25.0) -> None:
    """(T, H, W, 3) RGB uint8 -> an mp4v file (the codec PyPI OpenCV can write)."""
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def check_whole(store: FeatureStore, entry, t: int | None = None) -> int:
    """Every array of a complete entry reads back with lengths that agree; returns T."""
    a = store.read(entry)
    assert set(FRAME_ARRAYS + FLOW_ARRAYS) <= set(a), (entry.key, sorted(a))
    n = len(a["clip"])
    assert len(a["timestamps_ms"]) == len(a["frame_index"]) == n and (t is None or n == t), entry.key
    assert len(a["flow"]) == len(a["flow_hist"]) == len(a["flow_ts_ms"]) == max(n - 1, 1), entry.key
    assert np.isfinite(a["clip"]).all() and np.isfinite(a["flow"].astype(np.float32)).all(), entry.key
    return n


def decoded_frames(path: str, n: int) -> list[np.ndarray]:
    """The frames the pipeline samples: TSN midpoints of the decoded video, RGB (H, W, 3)."""
    source = open_source(path)
    return [f.rgb for f in source.iter_frames(uniform_indices(source.probe().n_frames, n))]


@pytest.fixture(scope="module")
def base(tiny_videos, tmp_path_factory, run_extract_cli):
    """The tiny folder extracted once (CLIP batches of 4: a video spans batches, batches span videos)."""
    url = str(tmp_path_factory.mktemp("base") / "store.zarr")
    result = run_extract_cli(tiny_videos, url, "--batch-size", "4")
    return SimpleNamespace(videos=tiny_videos, url=url, result=result)


@pytest.fixture(scope="module")
def tiny_clip():
    return load_clip("fgm-tiny-vit", "none", random_seed=0, device="cpu")


# ---- a fresh extraction ----------------------------------------------------------------------------

def test_extract_writes_complete_documented_entries(base):
    assert base.result.exit_code == 0, base.result.output
    store = FeatureStore.open(base.url)
    entries = store.entries()
    videos = sorted(base.videos.rglob("*.mp4"))
    folders = sorted(p.name for p in base.videos.iterdir() if p.is_dir())
    assert [e.key for e in entries] == [v.relative_to(base.videos).as_posix() for v in videos]
    assert len(store.entries(include_incomplete=True)) == len(entries) == 6
    assert store.failures() == {}
    cfg = store.config
    assert (cfg.num_frames, cfg.clip_model, cfg.pretrained, cfg.flow.pairs) == (FRAMES, "fgm-tiny-vit", "none", "sampled")
    dim, grid, bins = TINY_CFG["embed_dim"], cfg.flow.grid, cfg.flow.hist_bins
    for entry, video in zip(entries, videos):
        a = store.read(entry)
        assert set(a) == set(FRAME_ARRAYS + FLOW_ARRAYS)
        for name, arr in a.items():
            assert arr.dtype == np.dtype(ARRAY_DTYPES[name]), name
        assert a["clip"].shape == (FRAMES, dim)
        assert a["flow"].shape == (FRAMES - 1, 2, grid, grid)  # flow_pairs sampled: between sampled frames
        assert a["flow_hist"].shape == (FRAMES - 1, 2 * bins)
        assert entry.label == video.parent.name and entry.meta["sha256"] == sha256(video)
        assert entry.meta["native_frames"] >= 12 and entry.meta["short_video"] is False
        np.testing.assert_array_equal(a["frame_index"], uniform_indices(entry.meta["native_frames"], FRAMES))
        np.testing.assert_allclose(a["timestamps_ms"], a["frame_index"] * 1000.0 / entry.meta["fps"])
        np.testing.assert_array_equal(a["flow_ts_ms"], np.stack([a["timestamps_ms"][:-1], a["timestamps_ms"][1:]], 1))
        assert np.abs(a["flow"]).max() > 0  # the shape moves

    # text side: every class, its template sentence and the synth descriptions, and the scene bank
    assert store.classes == folders
    text = store.text()
    sentences, owner = class_sentences(folders, cfg.templates, load_descriptions(base.videos / "descriptions.json"))
    assert text["sentences"] == sentences and text["sentence_class"] == owner
    assert text["sentence_emb"].shape == (len(sentences), dim) and text["class_emb"].shape == (3, dim)
    assert text["scene_emb"].shape == (len(SCENE_BANK), dim) and text["scenes"] == list(SCENE_BANK)


def test_provenance_and_clip_identity(base, tiny_clip):
    store = FeatureStore.open(base.url)
    packages = store.provenance["packages"]
    for name in ("torch", "open_clip_torch", "zarr", "numpy", "opencv-contrib-python"):
        assert packages[name] == metadata.version(name)
    identity = store.clip_identity
    assert identity["random_weights"] is True and identity["model"] == "fgm-tiny-vit"
    assert identity["weights_sha256"] == tiny_clip.identity["weights_sha256"]
    first = store.runs()[0]
    assert first["extracted"] == 6 and first["clip_identity"]["weights_sha256"] == identity["weights_sha256"]
    assert "CLIP weights are RANDOM" in flat(base.result.output)


def test_stored_features_equal_direct_computation(base, tiny_clip):
    """Known answer: decode the sampled frames here and run the same CLIP and flow; the store must agree."""
    store = FeatureStore.open(base.url)
    cfg = store.config
    flow = FlowComputer(cfg.flow)
    for entry in store.entries()[::3]:
        frames = decoded_frames(entry.meta["path"], FRAMES)
        a = store.read(entry)
        emb, _ = tiny_clip.encode_frames(frames)  # (T, D), one batch here, two in the run
        np.testing.assert_allclose(a["clip"], emb, atol=1e-5, rtol=1e-5)
        fields = [flow(p, n) for p, n in zip(frames[:-1], frames[1:])]
        np.testing.assert_array_equal(a["flow"], np.stack([f for f, _ in fields]))
        np.testing.assert_allclose(a["flow_hist"], np.stack([h for _, h in fields]), atol=1e-6)


# ---- resuming --------------------------------------------------------------------------------------

def test_rerun_same_config_decodes_nothing(base, run_extract_cli, monkeypatch):
    before = run_ids(base.url)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a rerun over an up-to-date store opened a video")

    monkeypatch.setattr("extract.produce.open_source", no_decoding)
    result = run_extract_cli(base.videos, base.url, "--batch-size", "4")
    assert result.exit_code == 0, result.output
    assert "0 decoded" in flat(result.output)
    store = FeatureStore.open(base.url)
    last = store.runs()[-1]
    assert (last["extracted"], last["skipped"], last["failed"]) == (0, 6, 0)
    assert run_ids(base.url) == before


def test_changed_video_alone_is_redone(tiny_videos_copy, tmp_path, run_extract_cli):
    url = str(tmp_path / "store.zarr")
    assert run_extract_cli(tiny_videos_copy, url).exit_code == 0
    before = run_ids(url)
    old_clip = FeatureStore.open(url).read("swing_slow/swing_slow_0001.mp4", ("clip",))["clip"]

    changed = tiny_videos_copy / "swing_slow" / "swing_slow_0001.mp4"
    write_mp4(changed, render_clip("swing_slow", clip_rng(99, "swing_slow", 1),
                                   SynthConfig(size=48, min_frames=12, max_frames=20)))
    touched = tiny_videos_copy / "circle_clockwise" / "circle_clockwise_0000.mp4"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # new time, same bytes

    result = run_extract_cli(tiny_videos_copy, url)
    assert result.exit_code == 0, result.output
    after = run_ids(url)
    key = "swing_slow/swing_slow_0001.mp4"
    assert after[key] != before[key]
    assert {k: v for k, v in after.items() if k != key} == {k: v for k, v in before.items() if k != key}
    store = FeatureStore.open(url)
    last = store.runs()[-1]
    assert (last["extracted"], last["skipped"], last["run_id"]) == (1, 5, after[key])
    [entry] = [e for e in store.entries() if e.key == key]
    assert entry.meta["sha256"] == sha256(changed)
    assert not np.allclose(store.read(entry, ("clip",))["clip"], old_clip)


def test_different_config_is_refused_and_store_unchanged(base, run_extract_cli):
    store = FeatureStore.open(base.url)
    before = (run_ids(base.url), len(store.runs()), store.config, store.text()["class_emb"].copy())
    result = run_extract_cli(base.videos, base.url, frames=4)
    assert result.exit_code == 2, result.output
    out = flat(result.output)
    assert "num_frames" in out and "store has 6, this run asks for 4" in out
    store = FeatureStore.open(base.url)
    after = (run_ids(base.url), len(store.runs()), store.config, store.text()["class_emb"])
    assert before[:3] == after[:3]
    np.testing.assert_array_equal(before[3], after[3])


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

def _counts(url: str) -> tuple[int, int]:
    """(complete, all) entries of a store another process is writing; (0, 0) while it does not exist yet."""
    try:
        store = FeatureStore.open(url)
        return len(store.entries()), len(store.entries(include_incomplete=True))
    except (StoreError, OSError, KeyError, ValueError):  # not created yet, or a file mid-replace
        return 0, 0


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
            complete, total = _counts(url)
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


# ---- dask, flow pairs, tokens, checkpoints -----------------------------------------------------------

@pytest.mark.slow
def test_dask_workers_write_the_same_entries(base, tmp_path, run_extract_cli):
    url = str(tmp_path / "dask.zarr")
    result = run_extract_cli(base.videos, url, "--workers", "2")
    assert result.exit_code == 0, result.output
    local, dask = FeatureStore.open(base.url), FeatureStore.open(url)
    assert [e.key for e in dask.entries()] == [e.key for e in local.entries()]
    assert dask.config == local.config and dask.runs()[-1]["workers"] == 2
    assert dask.clip_identity["weights_sha256"] == local.clip_identity["weights_sha256"]
    for entry in local.entries():
        a, b = local.read(entry), dask.read(entry.key)
        assert sorted(a) == sorted(b)
        np.testing.assert_allclose(b["clip"], a["clip"], atol=1e-5, rtol=0)
        for name in set(a) - {"clip"}:
            np.testing.assert_array_equal(b[name], a[name], err_msg=name)
    np.testing.assert_allclose(dask.text()["class_emb"], local.text()["class_emb"], atol=1e-5)


def test_native_flow_pairs_and_tokens(tiny_videos, tmp_path, run_extract_cli):
    manifest = tmp_path / "two.txt"
    chosen = sorted(tiny_videos.rglob("*.mp4"))[:2]
    manifest.write_text("".join(f"{p} {p.parent.name}\n" for p in chosen))
    url = str(tmp_path / "store.zarr")
    result = run_extract_cli(manifest, url, "--flow-pairs", "native", "--tokens")
    assert result.exit_code == 0, result.output
    store = FeatureStore.open(url)
    assert store.config.flow.pairs == "native" and store.config.tokens is True
    grid = store.config.flow.grid
    vision = TINY_CFG["vision_cfg"]
    n_tokens = (vision["image_size"] // vision["patch_size"]) ** 2 + 1
    clip = load_clip("fgm-tiny-vit", "none", random_seed=0, device="cpu")
    visual = clip.model.visual
    for entry in store.entries():
        a = store.read(entry)
        assert a["flow"].shape == (FRAMES, 2, grid, grid)  # each sampled frame to its next native frame
        np.testing.assert_allclose(a["flow_ts_ms"][:, 0], a["timestamps_ms"])
        np.testing.assert_allclose(a["flow_ts_ms"][:, 1] - a["flow_ts_ms"][:, 0], 1000.0 / entry.meta["fps"])
        assert a["tokens"].shape == (FRAMES, n_tokens, vision["width"]) and a["tokens"].dtype == np.float16
        with torch.no_grad():  # the stored tokens still lead to the stored embedding (f16 rounding aside)
            x = last_vision_block(clip.model)(torch.from_numpy(a["tokens"].astype(np.float32)))
            emb = (visual.ln_post(x)[:, 0] @ visual.proj).numpy()
        np.testing.assert_allclose(emb, a["clip"], atol=2e-2, rtol=2e-2)


def test_local_checkpoint_is_named_by_its_bytes(base, tmp_path, run_extract_cli):
    chosen = sorted(base.videos.rglob("*.mp4"))[:2]
    manifest = tmp_path / "two.txt"
    manifest.write_text("".join(f"{p.relative_to(base.videos)} {p.parent.name}\n" for p in chosen))
    shutil.copytree(base.videos, tmp_path, dirs_exist_ok=True)  # relative paths resolve beside the manifest
    ckpt = tmp_path / "tiny.pt"
    torch.save(load_clip("fgm-tiny-vit", "none", random_seed=0, device="cpu").model.state_dict(), ckpt)
    url = str(tmp_path / "store.zarr")
    result = run_extract_cli(manifest, url, "--pretrained", str(ckpt))
    assert result.exit_code == 0, result.output
    assert "RANDOM" not in result.output
    store = FeatureStore.open(url)
    assert store.config.clip_sha256 == sha256(ckpt) == store.clip_identity["file_sha256"]
    assert store.clip_identity["random_weights"] is False
    reference = FeatureStore.open(base.url)  # the same weights made randomly from seed 0
    for entry in store.entries():
        np.testing.assert_allclose(store.read(entry, ("clip",))["clip"],
                                   reference.read(entry.key, ("clip",))["clip"], atol=1e-5)

    torch.save(load_clip("fgm-tiny-vit", "none", random_seed=1, device="cpu").model.state_dict(), ckpt)
    result = run_extract_cli(manifest, url, "--pretrained", str(ckpt))
    assert result.exit_code == 2, result.output  # new weights at the same path never mix into the store
    assert "clip_sha256" in flat(result.output)


# ---- export and info -----------------------------------------------------------------------------

def test_export_hdf5_round_trip(base, tmp_path):
    out = tmp_path / "features.h5"
    result = CliRunner().invoke(export_app, [base.url, str(out)])
    assert result.exit_code == 0, result.output
    store = FeatureStore.open(base.url)
    with h5py.File(out, "r") as h5:
        assert json.loads(h5.attrs["extract_config"]) == store.config.to_dict()
        assert json.loads(h5.attrs["classes"]) == store.classes
        assert len(h5["videos"]) == len(store.entries()) == 6
        for entry in store.entries():
            g = h5["videos"][entry.id]
            assert g.attrs["key"] == entry.key and g.attrs["label"] == entry.label
            for name, arr in store.read(entry).items():
                assert g[name].dtype == arr.dtype
                np.testing.assert_array_equal(g[name][()], arr, err_msg=name)
        text = store.text()
        for name in ("sentence_emb", "class_emb", "scene_emb"):
            np.testing.assert_array_equal(h5["text"][name][()], text[name])
        assert json.loads(h5["text"].attrs["sentences"]) == text["sentences"]
    assert not Path(str(out) + ".partial").exists()


def test_export_of_a_non_store_says_what_to_do(tmp_path):
    result = CliRunner().invoke(export_app, [str(tmp_path / "nothing"), str(tmp_path / "f.h5")])
    assert result.exit_code == 2 and "fgm-extract" in flat(result.output)
    assert not (tmp_path / "f.h5").exists()


def test_info_prints_json_with_the_config(base, monkeypatch, capsys):
    result = CliRunner().invoke(info_app, [base.url])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    store = FeatureStore.open(base.url)
    assert info["config"] == store.config.to_dict() and info["videos"] == 6 and info["classes"] == store.classes
    assert info["failures"] == {} and info["runs"][0]["run_id"] == store.runs()[0]["run_id"]

    # the console script routes `fgm-extract info STORE` to the same command
    monkeypatch.setattr(sys, "argv", ["fgm-extract", "info", base.url])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 0
    assert json.loads(capsys.readouterr().err)["config"] == store.config.to_dict()

    bad = CliRunner().invoke(info_app, [str(Path(base.url).parent / "absent.zarr")])
    assert bad.exit_code == 2 and "fgm-extract" in flat(bad.output)


# ---- real clips ----------------------------------------------------------------------------------

def test_real_clips_ud810_ps7(shared_data, tmp_path, run_extract_cli):
    folder = shared_data / "ud810_ps7"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    url = str(tmp_path / "ud.zarr")
    result = run_extract_cli(folder, url)
    assert result.exit_code == 0, result.output
    store = FeatureStore.open(url)
    entries = store.entries()
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert len(entries) == 27 and store.failures() == {}
    assert sorted({e.label for e in entries}) == classes == store.classes and len(classes) == 3
    with open(shared_data / "MANIFEST.tsv", newline="") as f:
        manifest = {row["path"]: row for row in csv.DictReader(f, delimiter="\t")}
    for entry in entries:
        row = manifest[f"ud810_ps7/{entry.key}"]
        assert entry.label == row["label"]
        assert (entry.meta["native_frames"], entry.meta["width"], entry.meta["height"]) == (
            int(row["frames"]), int(row["width"]), int(row["height"]))
        check_whole(store, entry, FRAMES)
