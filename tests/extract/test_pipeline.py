"""Extractor: a store never takes features made by other CLIP weights; the writer thread reports only whole
entries and loses no finished one."""

from __future__ import annotations

import shutil

import pytest

from fgm_common.store import FeatureStore


def test_other_weights_are_refused(tiny_videos_copy, tmp_path, run_extract_cli):
    url = str(tmp_path / "s.zarr")
    assert run_extract_cli(tiny_videos_copy, url).exit_code == 0
    store = FeatureStore.open(url, mode="a")
    identity = store.clip_identity
    assert identity["weights_sha256"]
    # as if another open_clip/torch release had built different random weights from the same seed
    store.set_clip_identity({**identity, "weights_sha256": "0" * 64})
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


# ---- the writer thread and helper-thread priority ---------------------------------------------------
def _extractor(tiny_videos, url):
    from extract.inputs import discover
    from extract.pipeline import Extractor
    from fgm_common.config import ExtractConfig

    config = ExtractConfig(clip_model="fgm-tiny-vit", pretrained="none", num_frames=4, flow_pairs="sampled")
    FeatureStore.create_or_open(url, config, {})
    return Extractor(config, url, device="cpu", batch_size=3), discover(tiny_videos).items


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
