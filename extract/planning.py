"""What a run must extract: every video the store lacks, less those that failed before unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from extract.fingerprint import content_sha256, stat_fingerprint
from extract.inputs import VideoItem
from fgm_common.store import FeatureStore


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


def finished_by_other(store: FeatureStore, item: VideoItem, run_id: str, failed_before: dict[str, str]) -> bool:
    """Whether another process finished `item` after this run planned it: its entry whole and current, or
    its failure recorded on the same file by a run other than this one and than the one that had failed
    it before (`failed_before`: video key -> run id, when this run planned)."""
    if not Path(item.path).exists():
        return False
    if _up_to_date(store, item, False) and not store.missing_arrays(item.key, store.config.backbones):
        return True
    failure = store.failure(item.key)
    return (failure is not None and failure.get("run_id") not in (run_id, failed_before.get(item.key))
            and _same_file(failure, item))
