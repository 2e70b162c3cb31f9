"""Extractor guards: a store never takes features made by other CLIP weights."""

from __future__ import annotations

import shutil

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
