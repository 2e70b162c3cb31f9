"""The feature store: one zarr group holding every feature stage one made and how it was made.

This is the only module that knows the layout. Schema version 1:

    <root>/                      attrs: schema_version, extract_config, config_digest, provenance,
                                        clip_identity, backbone_identity, classes, failures, runs
    <root>/text/                 sentence_emb (S, D) f32, class_emb (C, D) f32, scene_emb (K, D) f32;
                                 attrs: sentences, sentence_class, scenes
    <root>/videos/<entry id>/    one group per video, attrs: key, label, ..., complete
        clip          (T, D)        f32   CLIP image embedding per sampled frame (not normalised)
        timestamps_ms (T,)          f64   time of each sampled frame in the source file
        frame_index   (T,)          i64   native index of each sampled frame
        flow          (Tf, 2, G, G) f16   optical flow, in pixels of the G x G grid
        flow_hist     (Tf, 2*bins)  f32   orientation and magnitude histograms per flow pair
        flow_ts_ms    (Tf, 2)       f64   the two timestamps each flow field is between
        tokens        (T, L, W)     f16   optional: tokens entering the last CLIP vision block
        <backbone>    (T, Db)       f32   optional extra backbones, e.g. resnet50

An entry counts only once its `complete` attr is true; that attr is written after every array, so
an entry interrupted at any moment (kill -9 included) is seen as incomplete and redone. Workers
write only their own entry groups; the root and text groups have one writer (the driver).

One config per store, with one exception: backbones can be added to a store later
(`fgm_common.config.grown_config`); the store's config then lists them and the writer re-extracts
every entry lacking one of them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import zarr

from fgm_common.config import ExtractConfig, grown_config
from fgm_common.identity import weights_mismatch
from fgm_common.texts import class_mean

SCHEMA_VERSION = 1
VIDEOS = "videos"
TEXT = "text"
# Entry array names: every other module spells them through these.
CLIP, TIMESTAMPS, FRAME_INDEX = "clip", "timestamps_ms", "frame_index"
FLOW, FLOW_HIST, FLOW_TS = "flow", "flow_hist", "flow_ts_ms"
TOKENS = "tokens"
FRAME_ARRAYS = (CLIP, TIMESTAMPS, FRAME_INDEX)
FLOW_ARRAYS = (FLOW, FLOW_HIST, FLOW_TS)
MODEL_ARRAYS = (CLIP, FLOW, FLOW_HIST)  # what a model reads of every entry (TOKENS and backbones on demand)
ARRAY_DTYPES = {
    CLIP: "float32",
    TIMESTAMPS: "float64",
    FRAME_INDEX: "int64",
    FLOW: "float16",
    FLOW_HIST: "float32",
    FLOW_TS: "float64",
    TOKENS: "float16",
}


class StoreError(Exception):
    """The store cannot be used as asked; the message says what to do."""


def entry_id(key: str) -> str:
    """Zarr-safe, readable, unique name for a video key: sanitised basename plus a hash of the key."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", key.rsplit("/", 1)[-1]).lstrip("_.") or "video"
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return f"{base[:60]}-{digest}"


@dataclass(frozen=True)
class Entry:
    """One complete video's metadata (the arrays are read on demand with `FeatureStore.read`)."""

    id: str
    key: str
    meta: dict[str, Any]

    @property
    def label(self) -> str:
        return self.meta.get("label", "")


class FeatureStore:
    """Read and write a feature store at a local path or fsspec URL."""

    def __init__(self, root: zarr.Group, url: str):
        self.root = root
        self.url = url

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def create_or_open(cls, url: str, config: ExtractConfig, provenance: dict,
                       prepare: Callable[[ExtractConfig], None] | None = None) -> "FeatureStore":
        """Open the store for writing with this config; create it if absent; refuse a different config.

        The one difference accepted is extra backbones: the store's config grows by them (see
        `grown_config`) and `store.config` is then what this run must extract. `prepare(config)` runs
        before a store is created or its config grows (e.g. fetch weights), so a run that cannot
        deliver leaves the store as it was.
        """
        root = zarr.open_group(url, mode="a")
        if "schema_version" not in root.attrs:
            if len(list(root.keys())):
                raise StoreError(f"{url} holds a zarr group that is not an fgm store; choose another --out")
            if prepare:
                prepare(config)
            root.attrs.update(
                {
                    "schema_version": SCHEMA_VERSION,
                    "extract_config": config.to_dict(),
                    "config_digest": config.digest(),
                    "provenance": provenance,
                    "classes": [],
                    "failures": {},
                    "runs": [],
                }
            )
            root.require_group(VIDEOS)
            return cls(root, url)
        store = cls(root, url)
        store._check_schema()
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
        """Open an existing store; a clear error when the path is not one."""
        try:
            root = zarr.open_group(url, mode=mode)
        except (FileNotFoundError, zarr.errors.GroupNotFoundError) as e:
            raise StoreError(f"no feature store at {url}: run `fgm-extract VIDEOS --out {url}` first") from e
        if "schema_version" not in root.attrs:
            raise StoreError(f"{url} is not an fgm feature store (no schema_version attribute); point to a "
                             f"store written by `fgm-extract VIDEOS --out DIR`, or run that first")
        store = cls(root, url)
        store._check_schema()
        return store

    def _check_schema(self) -> None:
        version = self.root.attrs["schema_version"]
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"store schema version {version}, this fgm reads version {SCHEMA_VERSION}; "
                "re-extract or use the matching fgm release"
            )

    # ---- root metadata (driver only) -------------------------------------------------------
    @property
    def config(self) -> ExtractConfig:
        return ExtractConfig.from_dict(self.root.attrs["extract_config"])

    @property
    def provenance(self) -> dict:
        return self.root.attrs["provenance"]

    @property
    def classes(self) -> list[str]:
        return list(self.root.attrs.get("classes", []))

    @property
    def clip_identity(self) -> dict:
        """Model name, weights source and hashes of the CLIP towers that made every feature here."""
        return dict(self.root.attrs.get("clip_identity", {}))

    def set_clip_identity(self, identity: dict) -> None:
        self.root.attrs["clip_identity"] = identity

    @property
    def backbone_identity(self) -> dict[str, dict]:
        """Per extra backbone: name, weights source and hashes, torchvision version (extract/backbones.py)."""
        return {k: dict(v) for k, v in self.root.attrs.get("backbone_identity", {}).items()}

    def set_backbone_identity(self, name: str, identity: dict) -> None:
        self.root.attrs["backbone_identity"] = {**self.backbone_identity, name: identity}

    def check_weights(self, identity: dict, backbone: str | None = None) -> None:
        """Refuse features from other weights than those that made this store (CLIP, or `backbone`).

        E.g. a new open_clip building other random weights from the same seed, a replaced checkpoint
        file, or a new torchvision initialising a backbone differently. StoreError on a mismatch.
        """
        recorded = self.clip_identity if backbone is None else self.backbone_identity.get(backbone, {})
        if key := weights_mismatch(recorded, identity):
            raise StoreError(
                f"the {backbone or 'CLIP'} weights loaded now differ from those that made {self.url} ({key} "
                f"{str(identity.get(key))[:12]} vs {recorded[key][:12]}); features are never mixed. "
                "Use the original weights, or write a new store with another --out."
            )

    def failures(self) -> dict[str, dict]:
        return dict(self.root.attrs.get("failures", {}))

    def set_failures(self, failures: dict[str, dict]) -> None:
        self.root.attrs["failures"] = failures

    def add_run(self, run: dict) -> None:
        self.root.attrs["runs"] = list(self.root.attrs.get("runs", [])) + [run]

    def runs(self) -> list[dict]:
        return list(self.root.attrs.get("runs", []))

    def set_text(self, classes: list[str], sentences: list[str], sentence_class: list[int],
                 sentence_emb: np.ndarray, scenes: list[str], scene_emb: np.ndarray) -> None:
        """Write the text side: sentence_emb (S, D), scene_emb (K, D); class_emb is their class mean."""
        sentence_emb = np.asarray(sentence_emb, dtype=np.float32)
        cls_idx = np.asarray(sentence_class)
        class_emb = class_mean(sentence_emb, cls_idx, len(classes))
        text = self.root.require_group(TEXT)
        for name, arr in (
            ("sentence_emb", sentence_emb),
            ("class_emb", class_emb),
            ("scene_emb", np.asarray(scene_emb, dtype=np.float32)),
        ):
            text.create_array(name, data=arr, overwrite=True)
        text.attrs.update({"sentences": sentences, "sentence_class": [int(c) for c in cls_idx], "scenes": scenes})
        self.root.attrs["classes"] = list(classes)

    def text(self) -> dict[str, Any]:
        """The text side as numpy arrays plus the sentence lists; empty dict before any text was written."""
        if TEXT not in self.root:
            return {}
        g = self.root[TEXT]
        out = {name: g[name][:] for name in ("sentence_emb", "class_emb", "scene_emb")}
        out.update({k: g.attrs[k] for k in ("sentences", "sentence_class", "scenes")})
        return out

    # ---- entries (one writer per entry) -------------------------------------------------------
    def write_entry(self, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> str:
        """Write one video's arrays, then mark it complete. Replaces any earlier entry for `key`."""
        eid = entry_id(key)
        videos = self.root[VIDEOS]
        if eid in videos:
            del videos[eid]
        group = videos.create_group(eid, attributes={"key": key, "complete": False})
        for name, arr in arrays.items():
            dtype = ARRAY_DTYPES.get(name, "float32")
            group.create_array(name, data=np.ascontiguousarray(arr, dtype=dtype))
        group.attrs.update({**meta, "key": key, "complete": True})
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
                "(e.g. --tokens for 'tokens', --backbone resnet50)"
            )
        return {n: group[n][:] for n in names}

    def array_names(self, entry: Entry) -> list[str]:
        return sorted(n for n, _ in self.root[VIDEOS][entry.id].arrays())
