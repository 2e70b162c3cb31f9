"""Run an extraction: plan what is left, run it in-process or on dask beside other processes, record text, failures and the run."""

from __future__ import annotations

import platform
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from typing import Callable

from extract.claims import LEASE_SECONDS, Leases
from extract.dask_run import run_dask
from extract.inputs import Discovery
from extract.planning import plan
from extract.sharing import Sharing
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
    lease_seconds: float = LEASE_SECONDS  # how long a video stays another process's after it last renewed


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
    elsewhere: int = 0  # videos of this run's list that other processes sharing the store finished

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
    store's (`on_note` says so). Other processes extracting into the same store at the same time
    share the videos with this one (extract/sharing.py): each video is extracted once.
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

    leases = Leases(store_url, seconds=options.lease_seconds).start() if todo else None
    sharing = Sharing(store, leases, run_id) if leases else None
    held_elsewhere: list[str] = []

    def record(res) -> None:
        if res.elsewhere:
            held_elsewhere.append(res.key)
            return
        if res.ok:
            summary.extracted += 1
            summary.frames += res.frames
            if res.key in sharing.failed_before:  # no request per video for the others
                store.clear_failure(res.key)
        else:
            summary.failed.append(res)
            store.record_failure(res.key, {"reason": res.reason, "message": res.message, "run_id": run_id,
                                           **res.fingerprint})
        leases.release(res.key)  # after its entry or failure is in the store
        if on_result:
            on_result(res)

    workers: dict[str, dict] = {}  # dask worker -> its image tower's identity and fidelity
    try:
        pending, held, by_key = todo, [], {item.key: item for item in todo}  # held: by other processes
        while pending:
            held_elsewhere.clear()
            if options.workers > 1 or options.scheduler:
                run_dask(pending, config, store_url, options, run_id, record, workers, sharing.claim)
            else:
                from extract.early import EarlyDecode  # no torch: it decodes while torch and the towers load

                early = (EarlyDecode(pending, config, run_id, claim=sharing.claim, device=options.device)
                         if extractor is None else None)
                try:
                    local_extractor().run(pending, record, early, sharing.claim)
                finally:
                    if early is not None:
                        early.close()  # stops it when the towers could not be had
            # the videos other processes hold: finished by them, or left to this run when a holder died
            pending, held = sharing.wait(held + [by_key[k] for k in held_elsewhere], note)
    finally:
        if leases is not None:
            leases.close()
            leases.sweep()  # leases left by processes that died after finishing their video
        summary.elsewhere = len(todo) - summary.extracted - len(summary.failed)
        classes = sorted({e.label for e in store.entries() if e.label} | set(store.classes))
        if classes:
            summary.text_encoded = encode_text(store, lambda: local_extractor().clip, classes, config, descriptions)
        summary.seconds = time.perf_counter() - started
        store.add_run({
            "run_id": run_id, "finished": datetime.now(timezone.utc).isoformat(),
            "extracted": summary.extracted, "failed": len(summary.failed), "skipped": summary.skipped,
            "by_other_processes": summary.elsewhere,
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
