"""The dask task: a chunk of videos extracted on a worker, with one Extractor per worker process."""

from __future__ import annotations

import os
import socket
import threading

from extract.batching import Result
from extract.inputs import VideoItem
from extract.pipeline import Extractor, extractor_for
from extract.runner import RunOptions
from fgm_common.config import ExtractConfig

# Loading the towers costs seconds: a worker keeps its Extractor across tasks of the same run.
_WORKER_EXTRACTORS: dict[tuple, Extractor] = {}
# A worker started with --nthreads above 1 runs tasks side by side; its one Extractor (towers, flow
# computers, queues) takes one chunk at a time, and the towers already use every core anyway.
_ONE_AT_A_TIME = threading.Lock()


def extract_chunk(items: list[VideoItem], config: dict, store_url: str, options: RunOptions,
                  run_id: str) -> tuple[list[Result], dict]:
    """Run on a dask worker: extract a chunk of videos, loading the towers once per process.

    The whole RunOptions travels, so a worker runs with every option of the driver's command line.
    Returns the results and this process's image-tower identity (with the fidelity its first batch
    measured) under "worker", so the driver's run record holds every worker's check.
    """
    cfg = ExtractConfig.from_dict(config)
    key = (cfg.digest(), store_url, options)
    with _ONE_AT_A_TIME:
        if key not in _WORKER_EXTRACTORS:
            _WORKER_EXTRACTORS.clear()
            _WORKER_EXTRACTORS[key] = extractor_for(cfg, store_url, options)
        extractor = _WORKER_EXTRACTORS[key]
        extractor.run_id = run_id
        results = extractor.run(items)
        return results, {**extractor.tower.identity, "worker": f"{socket.gethostname()}:{os.getpid()}"}
