"""FeatureStore: open or make a store (one config per store), write and read entries and the per-process records.

The layout and why each record is an object of its own: fgm_common/store/layout.py.

One config per store, with one exception: backbones can be added to a store later
(`fgm_common.config.grown_config`); the store's config then lists them and the writer re-extracts
every entry lacking one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import fsspec
import numpy as np
import zarr
from zarr.storage import FsspecStore

from fgm_common.config import ExtractConfig, grown_config
from fgm_common.identity import weights_mismatch
from fgm_common.store.creation import in_the_making, made_once
from fgm_common.store.layout import (ARRAY_DTYPES, FAILURES, FRAME_HEIGHT, FRAME_WIDTH, READABLE_VERSIONS,
                                     RUNS, SCHEMA_VERSION, VIDEOS, WEIGHTS, StoreError, entry_id, weights_name)
from fgm_common.store.objects import JsonObjects
from fgm_common.store.remote import require_filesystem, storage_options, zarr_options
from fgm_common.store.staged import put_group
from fgm_common.store.text_side import read_text, text_classes, write_text
from fgm_common.store.upgrade import upgrade


def _open_root(url: str) -> zarr.Group:
    """The root group for writing, made if absent; another process making it at the same moment is no error."""
    try:
        return zarr.open_group(url, mode="a", **zarr_options(url))
    except zarr.errors.ContainsGroupError:  # made by another process between zarr's look and its write
        return zarr.open_group(url, mode="r+", **zarr_options(url))


@dataclass(frozen=True)
class Entry:
    """One complete video's metadata (the arrays are read on demand with `FeatureStore.read`)."""

    id: str
    key: str
    meta: dict[str, Any]

    @property
    def label(self) -> str:
        return self.meta.get("label", "")

    @property
    def frame_size(self) -> tuple[int, int]:
        """The source video's (width, height) in pixels; (0, 0) where the probe could not read it."""
        return int(self.meta.get(FRAME_WIDTH, 0)), int(self.meta.get(FRAME_HEIGHT, 0))


class FeatureStore:
    """Read and write a feature store at a local path or fsspec URL (s3://, memory://, ...)."""

    def __init__(self, root: zarr.Group, url: str):
        self.root = root
        self.url = url
        self.weights = JsonObjects(url, WEIGHTS)
        # on object storage an entry goes up in three round trips (store/staged.py): (filesystem, root path)
        remote = isinstance(root.store, FsspecStore)
        self._remote = fsspec.core.url_to_fs(url, **storage_options(url)) if remote else None

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def create_or_open(cls, url: str, config: ExtractConfig, provenance: dict,
                       prepare: Callable[[ExtractConfig], None] | None = None) -> "FeatureStore":
        """Open the store for writing with this config; create it if absent; refuse a different config.

        The one difference accepted is extra backbones: the store's config grows by them (see
        `grown_config`) and `store.config` is then what this run must extract. `prepare(config)` runs
        before a store is created or its config grows (e.g. fetch weights), so a run that cannot
        deliver leaves the store as it was. An older store is upgraded to this version first.
        """
        require_filesystem(url)
        created = []

        def make(new_root: zarr.Group) -> None:  # only in the one process that makes a new store
            if prepare:
                prepare(config)
            new_root.attrs.update({"schema_version": SCHEMA_VERSION, "extract_config": config.to_dict(),
                                   "config_digest": config.digest(), "provenance": provenance})
            created.append(True)

        try:
            root = made_once(url, lambda: _open_root(url), make)
        except FileNotFoundError as e:  # on object storage: no such bucket
            raise StoreError(f"cannot make a store at {url}: {e}; create the bucket first, "
                             "or choose another --out") from e
        if created:
            return cls(root, url)
        store = cls(root, url)
        store._check_schema()
        if root.attrs["schema_version"] < SCHEMA_VERSION:
            upgrade(store)
        stored = store.config
        grown = grown_config(stored, config)
        if grown is None:
            diff = stored.diff(config)
            lines = "\n".join(f"  {k}: store has {a!r}, this run asks for {b!r}" for k, (a, b) in diff.items())
            raise StoreError(
                f"{url} was extracted with a different config; features are never mixed.\n{lines}\n"
                "Rerun with the store's settings (backbones may be added), or write a new store with another "
                f"--out (e.g. --out {url.rstrip('/')}-{config.digest()})."
            )
        if grown != stored:
            if prepare:
                prepare(grown)
            root.attrs.update({"extract_config": grown.to_dict(), "config_digest": grown.digest()})
        return store

    @classmethod
    def open(cls, url: str, mode: str = "r") -> "FeatureStore":
        """Open an existing store (version 1 or 2, never written to here); a clear error when the path is not one."""
        require_filesystem(url)
        try:
            root = zarr.open_group(url, mode=mode, **zarr_options(url))
        except (FileNotFoundError, zarr.errors.GroupNotFoundError) as e:
            raise StoreError(f"no feature store at {url}: run `fgm-extract VIDEOS --out {url}` first") from e
        if "schema_version" not in root.attrs:
            if set(root.keys()) and in_the_making(root):  # an empty root is any zarr group, not ours
                raise StoreError(f"{url} is a feature store still being made by an fgm-extract (or by one that "
                                 f"died while making it: run `fgm-extract VIDEOS --out {url}` again); try again "
                                 "in a moment")
            raise StoreError(f"{url} is not an fgm feature store (no schema_version attribute); point to a "
                             f"store written by `fgm-extract VIDEOS --out DIR`, or run that first")
        store = cls(root, url)
        store._check_schema()
        return store

    def _check_schema(self) -> None:
        version = self.root.attrs["schema_version"]
        if version not in READABLE_VERSIONS:
            raise StoreError(
                f"store schema version {version}, this fgm reads versions {list(READABLE_VERSIONS)}; "
                "re-extract or use the matching fgm release"
            )

    @property
    def schema_version(self) -> int:
        return int(self.root.attrs["schema_version"])

    # ---- how the features were made ---------------------------------------------------------
    @property
    def config(self) -> ExtractConfig:
        return ExtractConfig.from_dict(self.root.attrs["extract_config"])

    @property
    def provenance(self) -> dict:
        return self.root.attrs["provenance"]

    @property
    def clip_identity(self) -> dict:
        """Model name, weights source and hashes of the CLIP towers that made every feature here."""
        return self._identity(None)

    @property
    def backbone_identity(self) -> dict[str, dict]:
        """Per extra backbone: name, weights source and hashes, torchvision version (extract/backbones.py)."""
        return {name: self._identity(name) for name in self.config.backbones if self._identity(name)}

    @property
    def detector_identity(self) -> dict:
        """The detector's name, weights source and hashes (extract/detect.py); {} for a store without one."""
        detect = self.config.detect
        return self._identity(None, detect.name) if detect.enabled else {}

    def _identity(self, backbone: str | None, detector: str | None = None) -> dict:
        found = self.weights.get(weights_name(backbone, detector))
        if found is not None or self.schema_version > 1 or detector:
            return found or {}
        legacy = self.root.attrs.get("clip_identity" if backbone is None else "backbone_identity", {})
        return dict(legacy if backbone is None else legacy.get(backbone, {}))

    def record_weights(self, identity: dict, backbone: str | None = None, detector: str | None = None) -> None:
        """Record `identity` as the weights of this store's CLIP (or `backbone`, or `detector`) unless some
        are recorded, then `check_weights`. The first writer wins, also between processes starting at once."""
        if self.schema_version > 1:
            self.weights.create(weights_name(backbone, detector), identity)
        self.check_weights(identity, backbone, detector)

    def check_weights(self, identity: dict, backbone: str | None = None, detector: str | None = None) -> None:
        """Refuse features from other weights than those that made this store (CLIP, `backbone` or `detector`).

        E.g. a new open_clip building other random weights from the same seed, a replaced checkpoint
        file, or a new torchvision initialising a backbone differently. StoreError on a mismatch.
        """
        recorded = self._identity(backbone, detector)
        if key := weights_mismatch(recorded, identity):
            raise StoreError(
                f"the {backbone or detector or 'CLIP'} weights loaded now differ from those that made {self.url} ({key} "
                f"{str(identity.get(key))[:12]} vs {str(recorded[key])[:12]}); features are never mixed. "
                "Use the original weights, or write a new store with another --out."
            )

    # ---- per-process records -----------------------------------------------------------------
    def failures(self) -> dict[str, dict]:
        """Video key -> what made it fail (reason, message, run_id, fingerprint)."""
        if self.schema_version == 1:
            return dict(self.root.attrs.get("failures", {}))
        records = (dict(g.attrs) for _, g in self.root[FAILURES].groups())
        return {r.pop("key"): r for r in records}

    def failure(self, key: str) -> dict | None:
        """What made the video `key` fail, None when it has no failure recorded."""
        if self.schema_version == 1:
            return self.failures().get(key)
        failures = self.root[FAILURES]
        if entry_id(key) not in failures:
            return None
        record = dict(failures[entry_id(key)].attrs)
        record.pop("key", None)
        return record

    def record_failure(self, key: str, record: dict) -> None:
        self.root[FAILURES].create_group(entry_id(key), attributes={**record, "key": key}, overwrite=True)

    def clear_failure(self, key: str) -> None:
        failures = self.root[FAILURES]
        if entry_id(key) in failures:
            del failures[entry_id(key)]

    def add_run(self, run: dict) -> None:
        """Record one run (its `run_id` names it)."""
        self.root[RUNS].create_group(run["run_id"], attributes=run, overwrite=True)

    def runs(self) -> list[dict]:
        """Every run's record, in the order they finished."""
        if self.schema_version == 1:
            return list(self.root.attrs.get("runs", []))
        return sorted((dict(g.attrs) for _, g in self.root[RUNS].groups()),
                      key=lambda r: (r.get("finished", ""), r.get("run_id", "")))

    # ---- text side -------------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return text_classes(self.root)

    def set_text(self, classes: list[str], sentences: list[str], sentence_class: list[int],
                 sentence_emb: np.ndarray, scenes: list[str], scene_emb: np.ndarray) -> None:
        """Write the text side: sentence_emb (S, D), scene_emb (K, D); class_emb is their class mean."""
        write_text(self.root, classes, sentences, sentence_class, sentence_emb, scenes, scene_emb)

    def text(self) -> dict[str, Any]:
        """The text side as numpy arrays plus the sentence lists; empty dict before any text was written."""
        return read_text(self.root)

    # ---- entries (one writer per entry) -------------------------------------------------------
    def write_entry(self, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> str:
        """Write one video's arrays, then mark it complete. Replaces any earlier entry for `key`."""
        eid = entry_id(key)
        videos = self.root[VIDEOS]
        if eid in videos:
            # marked incomplete before its objects go: on object storage a delete is many requests,
            # and a reader must never see `complete` beside missing arrays
            videos[eid].attrs["complete"] = False
            del videos[eid]
        typed = ((name, np.ascontiguousarray(arr, dtype=ARRAY_DTYPES.get(name, "float32")))
                 for name, arr in arrays.items())
        final = {**meta, "key": key, "complete": True}
        if self._remote is not None:
            fs, root = self._remote
            put_group(fs, f"{root}/{VIDEOS}/{eid}", {"key": key, "complete": False}, dict(typed), final)
            return eid
        group = videos.create_group(eid, attributes={"key": key, "complete": False})
        for name, arr in typed:
            group.create_array(name, data=arr)
        group.attrs.update(final)
        return eid

    def _entry_group(self, key: str) -> zarr.Group | None:
        """The group of the entry for `key` (complete or not), or None when there is none."""
        eid, videos = entry_id(key), self.root[VIDEOS]
        return videos[eid] if eid in videos else None

    def entry_meta(self, key: str) -> dict[str, Any] | None:
        """Attrs of the entry for `key` if it exists (complete or not), else None."""
        group = self._entry_group(key)
        return None if group is None else dict(group.attrs)

    def missing_arrays(self, key: str, names: tuple[str, ...]) -> list[str]:
        """Which of `names` the entry for `key` lacks (all of them when there is no entry)."""
        group = self._entry_group(key)
        return [n for n in names if group is None or n not in group]

    def entries(self, include_incomplete: bool = False) -> list[Entry]:
        """All entries sorted by key; incomplete ones only when asked."""
        out = []
        for eid, group in self.root[VIDEOS].groups():
            attrs = dict(group.attrs)
            if attrs.get("complete") or include_incomplete:
                out.append(Entry(eid, attrs.get("key", eid), attrs))
        return sorted(out, key=lambda e: e.key)

    def read(self, entry: Entry | str, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Arrays of one entry by name (all of them when names is None)."""
        eid = entry.id if isinstance(entry, Entry) else entry_id(entry)
        group = self.root[VIDEOS][eid]
        names = names or tuple(n for n, _ in group.arrays())
        missing = [n for n in names if n not in group]
        if missing:
            raise StoreError(
                f"entry {eid} has no {missing}; re-extract with the option that writes them "
                "(e.g. --tokens for 'tokens', --backbone resnet50, --detector hog for the box arrays)"
            )
        return {n: group[n][:] for n in names}

    def array_names(self, entry: Entry) -> list[str]:
        return sorted(n for n, _ in self.root[VIDEOS][entry.id].arrays())
