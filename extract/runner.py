"""Run an extraction: plan what is left, run it in-process or on dask, record text, failures and the run."""

from __future__ import annotations

import math
import platform
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable, NamedTuple

from extract.inputs import Discovery, VideoItem
from extract.fingerprint import content_sha256, stat_fingerprint
from fgm_common.config import ExtractConfig
from fgm_common.store import FeatureStore
from fgm_common.texts import SCENE_BANK, class_sentences

PACKAGES = ("fgm", "torch", "torchvision", "open_clip_torch", "opencv-contrib-python", "zarr", "numpy", "dask",
            "distributed")


@dataclass(frozen=True)
class RunOptions:
    """How to run, not what to compute: nothing here changes a stored number."""

    workers: int = 1
    scheduler: str | None = None
    device: str = "auto"
    batch_size: int = 32
    retry_failed: bool = False
    verify_hash: bool = False
    cache_dir: str | None = None
    decode_threads: int = 0  # producer threads per process; 0 = 1 beside CPU CLIP, up to 4 beside a GPU


@dataclass
class Summary:
    total: int = 0
    skipped: int = 0
    extracted: int = 0
    frames: int = 0
    failed: list = field(default_factory=list)
    previously_failed: int = 0
    ignored: int = 0
    seconds: float = 0.0
    text_encoded: int = 0
    lacking_backbone: int = 0  # complete, unchanged entries extracted again for a backbone they lacked

    @property
    def decoded(self) -> int:
        """Videos opened for decoding in this run (extracted or failed)."""
        return self.extracted + len(self.failed)


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _up_to_date(store: FeatureStore, item: VideoItem, verify_hash: bool) -> bool:
    """A complete entry whose source is unchanged (size+mtime, or content hash when those moved)."""
    meta = store.entry_meta(item.key)
    if not meta or not meta.get("complete"):
        return False
    size, mtime = stat_fingerprint(item.path)
    if (size, mtime) == (meta.get("size"), meta.get("mtime_ns")) and not verify_hash:
        return True
    return size == meta.get("size") and content_sha256(item.path) == meta.get("sha256")


class Plan(NamedTuple):
    todo: list  # items to extract
    skipped: int  # complete, unchanged and holding every configured backbone: not decoded
    prev_failed: int  # failed before with an unchanged file
    lacking_backbone: int  # complete and unchanged but without a configured backbone: in `todo`


def plan(store: FeatureStore, items: list[VideoItem], retry_failed: bool, verify_hash: bool) -> Plan:
    """What this run must extract. An entry lacking a backbone of the store's config counts as incomplete."""
    failures = store.failures()
    backbones = store.config.backbones
    todo, skipped, prev_failed, lacking = [], 0, 0, 0
    for item in items:
        if not Path(item.path).exists():
            todo.append(item)  # reported as missing by the extractor
        elif _up_to_date(store, item, verify_hash):
            # a backbone added to the store after this entry was written: decode it once more
            if backbones and store.missing_arrays(item.key, backbones):
                todo.append(item)
                lacking += 1
            else:
                skipped += 1
        elif item.key in failures and not retry_failed and _same_file(failures[item.key], item):
            prev_failed += 1
        else:
            todo.append(item)
    return Plan(todo, skipped, prev_failed, lacking)


def _same_file(record: dict, item: VideoItem) -> bool:
    return (record.get("size"), record.get("mtime_ns")) == stat_fingerprint(item.path)


def encode_text(store: FeatureStore, clip, classes: list[str], config: ExtractConfig,
                descriptions: dict[str, list[str]]) -> int:
    """Write class and scene sentence embeddings when they are missing or changed; returns sentences encoded."""
    sentences, owner = class_sentences(classes, config.templates, descriptions)
    old = store.text()
    if old and old["sentences"] == sentences and store.classes == classes and old["scenes"] == list(SCENE_BANK):
        return 0
    clip = clip() if callable(clip) else clip
    store.set_text(classes, sentences, owner, clip.encode_texts(sentences),
                   list(SCENE_BANK), clip.encode_texts(list(SCENE_BANK)))
    return len(sentences) + len(SCENE_BANK)


def _fetch_backbone_weights(config: ExtractConfig) -> None:
    """Download tagged backbone weights before the store takes a config that needs them."""
    if config.backbones:
        from extract.backbones import fetch_weights  # torch loads only when a backbone is asked for

        fetch_weights(config.backbones, config.backbone_weights)


def run_extract(discovery: Discovery, config: ExtractConfig, store_url: str, options: RunOptions,
                descriptions: dict[str, list[str]], on_start: Callable[[int], None] | None = None,
                on_result: Callable | None = None, on_note: Callable[[str], None] | None = None) -> Summary:
    """Extract every item of `discovery` that the store lacks; never touches complete, unchanged entries.

    Backbones may be added to an existing store: its config grows by them and the entries lacking
    them are extracted again. A run asking for fewer backbones than the store has extracts the
    store's (`on_note` says so).
    """
    started = time.perf_counter()
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    provenance = {"created": datetime.now(timezone.utc).isoformat(), "packages": package_versions(),
                  "python": platform.python_version(), "platform": platform.platform()}
    store = FeatureStore.create_or_open(store_url, config, provenance, prepare=_fetch_backbone_weights)
    asked, config = config, store.config  # the store's config, grown by any backbone this run added
    todo, skipped, prev_failed, lacking = plan(store, discovery.items, options.retry_failed, options.verify_hash)
    summary = Summary(total=len(discovery.items), skipped=skipped, previously_failed=prev_failed,
                      ignored=len(discovery.ignored), lacking_backbone=lacking)
    note = on_note or (lambda _msg: None)
    kept = [b for b in config.backbones if b not in asked.backbones]
    if kept:
        note(f"{store_url} also holds {', '.join(kept)} features (weights {config.backbone_weights}); "
             "videos extracted now get them too, so every entry stays alike")
    if lacking:
        note(f"{lacking} videos already in the store lack {', '.join(config.backbones)} features: they are "
             "decoded once more (their CLIP and flow features come out the same)")
    if on_start:
        on_start(len(todo))

    extractor = None

    def local_extractor():
        nonlocal extractor
        if extractor is None:
            from extract.pipeline import extractor_for  # torch and open_clip load only when there is work

            extractor = extractor_for(config, store_url, options, run_id)
        return extractor

    failures = store.failures()

    def record(res) -> None:
        if res.ok:
            summary.extracted += 1
            summary.frames += res.frames
            failures.pop(res.key, None)
        else:
            summary.failed.append(res)
            failures[res.key] = {"reason": res.reason, "message": res.message, "run_id": run_id, **res.fingerprint}
        if on_result:
            on_result(res)

    workers: dict[str, dict] = {}  # dask worker -> its image tower's identity and fidelity
    try:
        if todo and (options.workers > 1 or options.scheduler):
            _run_dask(todo, config, store_url, options, run_id, record, workers)
        elif todo:
            from extract.early import EarlyDecode  # no torch: it decodes while torch and the towers load

            early = EarlyDecode(todo, config, run_id)
            try:
                local_extractor().run(todo, record, early)
            finally:
                early.close()  # stops it when the towers could not be had
    finally:
        store.set_failures(failures)
        classes = sorted({e.label for e in store.entries() if e.label} | set(store.classes))
        if classes:
            summary.text_encoded = encode_text(store, lambda: local_extractor().clip, classes, config, descriptions)
        # after the text: with dask workers the driver loads the towers only there
        if extractor is not None and not store.clip_identity:
            store.set_clip_identity(extractor.clip.identity)
        if summary.extracted:
            record_backbone_identity(store, config, extractor)
        summary.seconds = time.perf_counter() - started
        store.add_run({
            "run_id": run_id, "finished": datetime.now(timezone.utc).isoformat(),
            "extracted": summary.extracted, "failed": len(summary.failed), "skipped": summary.skipped,
            "workers": options.workers, "scheduler": options.scheduler or "", "device": options.device,
            "packages": package_versions(), "seconds": round(summary.seconds, 3),
            "clip_identity": extractor.clip.identity if extractor else None,
            # the local tower's, with its fidelity when it extracted; with dask each worker's own
            "clip_runtime": extractor.tower.identity if extractor else None,
            **({"clip_runtime_workers": list(workers.values())} if workers else {}),
            "backbone_identity": {n: b.identity for n, b in extractor.backbones.items()} if extractor else None,
            "lacking_backbone": summary.lacking_backbone,
        })
    return summary


def record_backbone_identity(store: FeatureStore, config: ExtractConfig, extractor) -> None:
    """Record each configured backbone's identity once, from the local extractor or, after dask
    workers did the work, from the backbone rebuilt here (same weights source, same seed)."""
    recorded = store.backbone_identity
    for name in config.backbones:
        if name in recorded:
            continue
        if extractor is not None:
            identity = extractor.backbones[name].identity
        else:
            from extract.backbones import load_backbone

            identity = load_backbone(name, config.backbone_weights, config.random_seed, "cpu").identity
        store.set_backbone_identity(name, identity)


def _run_dask(todo: list[VideoItem], config: ExtractConfig, store_url: str, options: RunOptions,
              run_id: str, record: Callable, workers: dict[str, dict]) -> None:
    """Chunks of videos to dask workers; each worker writes its own entries, the driver records results
    and, in `workers`, each worker's tower identity (its fidelity check included)."""
    from dask.distributed import Client, LocalCluster, as_completed

    from extract.batching import Result
    from extract.dask_task import extract_chunk

    if options.scheduler:
        client, cluster = Client(options.scheduler), None
    else:
        cluster = LocalCluster(n_workers=options.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})) or options.workers)
        size = max(1, min(8, math.ceil(len(todo) / (n_workers * 4))))
        chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
        futures = {client.submit(extract_chunk, chunk, config.to_dict(), store_url, options, run_id, pure=False): chunk
                   for chunk in chunks}
        for future in as_completed(futures):
            try:
                results, tower = future.result()
                if "fidelity" in tower or tower["worker"] not in workers:
                    workers[tower["worker"]] = tower
            except Exception as e:  # a worker died (crash, out of memory): its videos fail, the run goes on
                results = [Result(i.key, False, reason="worker-error", message=f"{type(e).__name__}: {e}")
                           for i in futures[future]]
            for res in results:
                record(res)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
