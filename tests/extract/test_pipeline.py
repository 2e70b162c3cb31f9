"""Extractor: a store never takes features made by other CLIP weights; the writer thread reports only whole
entries and loses no finished one; CLIP batches are filled across videos."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fgm_common.store import FeatureStore
from fgm_common.store.layout import weights_name


def test_other_weights_are_refused(tiny_videos_copy, tmp_path, run_extract_cli):
    url = str(tmp_path / "s.zarr")
    assert run_extract_cli(tiny_videos_copy, url).exit_code == 0
    store = FeatureStore.open(url, mode="a")
    identity = store.clip_identity
    assert identity["weights_sha256"]
    # as if another open_clip/torch release had built different random weights from the same seed
    store.weights.put(weights_name(), {**identity, "weights_sha256": "0" * 64})
    extra = tiny_videos_copy / "swing_slow" / "added.mp4"
    shutil.copy(next((tiny_videos_copy / "swing_slow").glob("*.mp4")), extra)
    result = run_extract_cli(tiny_videos_copy, url)
    assert result.exit_code == 2, result.output
    assert "weights_sha256" in result.output.replace("\n", " ")
    assert "swing_slow/added.mp4" not in {e.key for e in FeatureStore.open(url).entries()}


def test_existing_dask_scheduler(tiny_videos, tmp_path, run_extract_cli):
    """`--scheduler ADDRESS` sends the work to a cluster the user already runs."""
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        url = str(tmp_path / "s.zarr")
        result = run_extract_cli(tiny_videos, url, "--scheduler", cluster.scheduler_address)
        assert result.exit_code == 0, result.output
        runs = FeatureStore.open(url).runs()
        assert runs[-1]["scheduler"] == cluster.scheduler_address and runs[-1]["extracted"] == 6
        assert len(FeatureStore.open(url).entries()) == 6


def test_dask_workers_get_the_batch_size(tiny_videos, tmp_path, run_extract_cli):
    """--batch-size reaches the workers' extractors (stored bits depend on it), not only the local one."""
    from dask.distributed import LocalCluster

    from extract import dask_task

    dask_task._WORKER_EXTRACTORS.clear()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        url = str(tmp_path / "s.zarr")
        result = run_extract_cli(tiny_videos, url, "--scheduler", cluster.scheduler_address, "--batch-size", "3")
        assert result.exit_code == 0, result.output
        [worker_extractor] = dask_task._WORKER_EXTRACTORS.values()  # in-process worker: its extractor is here
        assert worker_extractor.batch_size == 3
    dask_task._WORKER_EXTRACTORS.clear()


# ---- the writer thread and helper-thread priority ---------------------------------------------------
def _extractor(tiny_videos, url, decode_threads=1):
    from extract.inputs import discover
    from extract.pipeline import Extractor
    from fgm_common.config import ExtractConfig, FlowConfig

    config = ExtractConfig(clip_model="fgm-tiny-vit", pretrained="none", num_frames=4, flow=FlowConfig(pairs="sampled"))
    FeatureStore.create_or_open(url, config, {})
    return Extractor(config, url, device="cpu", batch_size=3, decode_threads=decode_threads), discover(tiny_videos).items


def test_each_result_is_reported_after_its_entry_is_whole(tiny_videos, tmp_path):
    """Entries are written in a background thread; a video is reported only once its entry is complete."""
    url = str(tmp_path / "s.zarr")
    extractor, items = _extractor(tiny_videos, url)
    seen = []

    def on_result(res):
        meta = FeatureStore.open(url).entry_meta(res.key)
        seen.append((res.key, res.ok, bool(meta and meta["complete"])))

    results = extractor.run(items, on_result)
    assert [r.key for r in results] == [i.key for i in items]  # input order kept
    assert seen == [(i.key, True, True) for i in items]


def test_a_failing_write_is_raised_and_earlier_entries_stay_whole(tiny_videos, tmp_path, monkeypatch):
    url = str(tmp_path / "s.zarr")
    extractor, items = _extractor(tiny_videos, url)
    real_write = extractor.store.write_entry
    calls = []

    def write_entry(key, arrays, meta):
        calls.append(key)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_write(key, arrays, meta)

    monkeypatch.setattr(extractor.store, "write_entry", write_entry)
    with pytest.raises(OSError, match="No space left"):
        extractor.run(items)
    complete = {e.key for e in FeatureStore.open(url).entries()}
    assert complete == set(calls[:2])  # the two written before the failure; none after it
    assert calls[2] not in complete


def test_a_clip_error_is_not_masked_by_a_write_error_behind_it(tiny_videos, tmp_path, monkeypatch):
    """The first error is the one raised: a write failing while CLIP's error unwinds does not replace it."""
    import threading

    url = str(tmp_path / "s.zarr")
    extractor, items = _extractor(tiny_videos, url)
    clip_failed = threading.Event()
    real_encode = extractor.clip.encode_batch
    calls = []

    def encode(batch, tokens=False):
        calls.append(1)
        if len(calls) == 3:  # the first video's entry is already with the writer
            clip_failed.set()
            raise RuntimeError("CUDA out of memory (simulated)")
        return real_encode(batch, tokens)

    def write_entry(key, arrays, meta):
        clip_failed.wait(10)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(extractor.clip, "encode_batch", encode)
    monkeypatch.setattr(extractor.store, "write_entry", write_entry)
    with pytest.raises(RuntimeError, match="out of memory"):
        extractor.run(items)
    assert FeatureStore.open(url).entries(include_incomplete=True) == []


def test_an_on_result_error_stops_the_run_but_keeps_finished_entries(tiny_videos, tmp_path):
    """What --strict does: the callback raises at the first report; every entry already extracted is kept whole."""
    url = str(tmp_path / "s.zarr")
    extractor, items = _extractor(tiny_videos, url)

    class Stop(Exception):
        pass

    def on_result(res):
        raise Stop(res.key)

    with pytest.raises(Stop):
        extractor.run(items, on_result)
    store = FeatureStore.open(url)
    complete = {e.key for e in store.entries()}
    assert items[0].key in complete  # the reported video
    assert {e.key for e in store.entries(include_incomplete=True)} == complete  # nothing half-written


def test_opencv_leaves_the_cores_to_cpu_clip(tiny_videos, tmp_path):
    """With CLIP on the CPU, OpenCV's pool would fight torch's threads for the cores (docs/design-choices.md)."""
    import cv2

    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(2)
        _extractor(tiny_videos, str(tmp_path / "s.zarr"))
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)


# ---- batches filled across videos (the Packer alone: tests/extract/test_batching.py) ---------------
def test_extraction_runs_full_batches_across_short_videos(tiny_videos, tmp_path, monkeypatch):
    """6 videos x 4 frames, batches of 3: per video that is 12 batches (3 + 1 each); packed, 8 full ones."""
    url = str(tmp_path / "s.zarr")
    extractor, items = _extractor(tiny_videos, url)
    sizes = []
    real = extractor.clip.encode_batch

    def counting(batch, tokens=False):
        sizes.append(batch.shape[0])
        return real(batch, tokens)

    monkeypatch.setattr(extractor.clip, "encode_batch", counting)
    results = extractor.run(items)
    assert all(r.ok for r in results) and len(results) == 6
    assert sizes == [3] * 8  # 24 frames
    store = FeatureStore.open(url)
    assert [store.read(r.key, ("clip",))["clip"].shape[0] for r in results] == [4] * 6


# ---- several decode threads ---------------------------------------------------------------------------
def _producer_threads():
    import threading

    return [t for t in threading.enumerate() if "producer" in t.name]


def test_decode_threads_give_the_same_store_as_one(tiny_videos_copy, tmp_path, run_extract_cli):
    """Threads change speed only: same entries, same failures, bit-identical arrays, same batches."""
    (tiny_videos_copy / "swing_slow" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    (tiny_videos_copy / "circle_clockwise" / "empty.mp4").write_bytes(b"")
    stores = {}
    for threads in ("1", "3"):
        url = str(tmp_path / f"t{threads}.zarr")
        result = run_extract_cli(tiny_videos_copy, url, "--decode-threads", threads, "--batch-size", "4")
        assert result.exit_code == 1, result.output  # the two bad files
        stores[threads] = FeatureStore.open(url)
    one, three = stores["1"], stores["3"]
    assert [e.key for e in one.entries()] == [e.key for e in three.entries()] and len(one.entries()) == 6
    assert one.failures().keys() == three.failures().keys() == {"swing_slow/broken.mp4", "circle_clockwise/empty.mp4"}
    for entry in one.entries():
        a, b = one.read(entry.key), three.read(entry.key)
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{entry.key} {name}")
    assert not _producer_threads()


def test_a_bug_in_a_decode_thread_is_raised_and_every_thread_ends(tiny_videos, tmp_path, monkeypatch):
    from extract import produce

    url = str(tmp_path / "s.zarr")
    extractor, items = _extractor(tiny_videos, url, decode_threads=2)
    real_hash = produce.content_sha256

    def hash_with_a_bug(path):
        if str(path) == str(items[3].path):
            raise KeyError("simulated bug")
        return real_hash(path)

    monkeypatch.setattr(produce, "content_sha256", hash_with_a_bug)
    reported = []
    with pytest.raises(KeyError, match="simulated bug"):
        extractor.run(items, reported.append)
    # videos before the bug are whole and reported; nothing after it was written
    assert {e.key for e in FeatureStore.open(url).entries(include_incomplete=True)} <= {i.key for i in items[:3]}
    assert [r.key for r in reported] == [i.key for i in items[: len(reported)]]
    assert not _producer_threads()


def test_stopping_early_ends_every_decode_thread(tiny_videos, tmp_path, monkeypatch):
    from extract import pipeline

    url = str(tmp_path / "s.zarr")
    extractor, items = _extractor(tiny_videos, url, decode_threads=3)

    class Stop(Exception):
        pass

    import threading

    decoded_by = []
    real_produce = pipeline.produce

    def produce(*args, **kwargs):
        decoded_by.append(threading.current_thread().name)
        return real_produce(*args, **kwargs)

    monkeypatch.setattr(pipeline, "produce", produce)

    def on_result(res):
        raise Stop(res.key)

    with pytest.raises(Stop):
        extractor.run(items, on_result)
    assert {"fgm-extract-producer-0", "fgm-extract-producer-1", "fgm-extract-producer-2"} <= set(decoded_by)
    assert not _producer_threads()


def test_default_decode_threads():
    from extract.pipeline import default_decode_threads

    assert default_decode_threads("cpu") == 1  # torch's threads already use every core
    assert 1 <= default_decode_threads("cuda") <= 4
