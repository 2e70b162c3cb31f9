"""Run an extraction on dask: chunks of videos to workers, each worker writing its own entries into the store."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

from extract.inputs import VideoItem
from extract.produce import Claim
from fgm_common.config import ExtractConfig
from fgm_common.store import NUM_FRAMES, FeatureStore

if TYPE_CHECKING:
    from extract.runner import RunOptions


def run_dask(todo: list[VideoItem], config: ExtractConfig, store_url: str, options: RunOptions,
             run_id: str, record: Callable, workers: dict[str, dict],
             claim: Claim | None = None) -> None:
    """Chunks of videos to dask workers; each worker writes its own entries, the driver records results
    and, in `workers`, each worker's tower identity (its fidelity check included).

    The driver asks `claim` for each video just before its chunk is submitted, and keeps only a few
    chunks per worker in flight, so two drivers on one store split its videos as they go.
    """
    from dask.distributed import Client, LocalCluster, as_completed

    from extract.batching import Result
    from extract.dask_task import extract_chunk

    store = FeatureStore.open(store_url)  # what a lost chunk's worker wrote before it died
    if options.scheduler:
        client, cluster = Client(options.scheduler), None
    else:
        cluster = LocalCluster(n_workers=options.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})) or options.workers)
        size = max(1, min(8, math.ceil(len(todo) / (n_workers * 4))))
        chunks = iter([todo[i : i + size] for i in range(0, len(todo), size)])
        futures: dict = {}
        running = as_completed()

        def submit_next() -> None:
            """Submit the next chunk holding a video this driver may extract; report the others'."""
            for chunk in chunks:
                mine = []
                for item in chunk:
                    owner = claim(item) if claim is not None else None
                    if owner is None:
                        mine.append(item)
                    else:
                        record(Result(item.key, False, reason="elsewhere", elsewhere=owner))
                if mine:
                    future = client.submit(extract_chunk, mine, config.to_dict(), store_url, options, run_id,
                                           pure=False)
                    futures[future] = mine
                    running.add(future)
                    return

        for _ in range(2 * n_workers):
            submit_next()
        for future in running:
            try:
                results, tower = future.result()
                if "fidelity" in tower or tower["worker"] not in workers:
                    workers[tower["worker"]] = tower
            except Exception as e:  # a worker died (crash, out of memory): its videos fail, the run goes on
                results = [_lost(store, item.key, run_id, e) for item in futures[future]]
            for res in results:
                record(res)
            submit_next()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _lost(store: FeatureStore, key: str, run_id: str, error: Exception):
    """The Result of a video whose chunk was lost with its worker: done if the worker wrote its entry first."""
    from extract.batching import Result
    from extract.fingerprint import recorded_fingerprint

    meta = store.entry_meta(key) or {}
    if meta.get("complete") and meta.get("run_id") == run_id:
        return Result(key, True, meta[NUM_FRAMES], meta.get("extract_seconds", 0.0),
                      fingerprint=recorded_fingerprint(meta))
    return Result(key, False, reason="worker-error", message=f"{type(error).__name__}: {error}")
