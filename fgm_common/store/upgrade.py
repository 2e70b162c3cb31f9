"""Upgrade an older store in place to the current schema version when a run is about to write to it.

Version 3 only added optional arrays (the boxes of a store made with a detector): a version 2 store
needs nothing but its new version number.

Version 1 kept failures, runs, classes and the weights' identities in the root's attrs, and the
text arrays in `text/` itself: a second process rewriting those attrs would drop the first's
records. The upgrade moves each record to an object of its own (fgm_common/store/layout.py) and
the text into a version; entries are not touched. Every step is idempotent and the version number
is written last, so an interrupted upgrade is simply done again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fgm_common.store.layout import FOLDERS, SCHEMA_VERSION, TEXT, TEXT_ARRAYS, weights_name
from fgm_common.store.text_side import write_text

if TYPE_CHECKING:
    from fgm_common.store.feature_store import FeatureStore

_V1_ATTRS = ("failures", "runs", "classes", "clip_identity", "backbone_identity")


def upgrade(store: FeatureStore) -> None:
    """Bring a version 1 or 2 store to SCHEMA_VERSION; the version number is written last."""
    root = store.root
    if root.attrs["schema_version"] == 1:
        _upgrade_v1(store)
    root.attrs.put({**root.attrs, "schema_version": SCHEMA_VERSION})


def _upgrade_v1(store: FeatureStore) -> None:
    """Move a version 1 store's root-attrs records and text to their version 2 places."""
    root = store.root
    attrs = dict(root.attrs)
    for folder in FOLDERS:
        root.require_group(folder)
    for key, record in attrs.get("failures", {}).items():
        store.record_failure(key, record)
    for run in attrs.get("runs", []):
        store.add_run(run)
    if attrs.get("clip_identity"):
        store.weights.create(weights_name(None), attrs["clip_identity"])
    for name, identity in attrs.get("backbone_identity", {}).items():
        store.weights.create(weights_name(name), identity)
    if TEXT in root and "sentence_emb" in root[TEXT]:
        old = root[TEXT]
        arrays = {k: old[k][:] for k in TEXT_ARRAYS}
        write_text(root, list(attrs.get("classes", [])), list(old.attrs["sentences"]),
                   list(old.attrs["sentence_class"]), arrays["sentence_emb"], list(old.attrs["scenes"]),
                   arrays["scene_emb"], class_emb=arrays["class_emb"])
        for k in TEXT_ARRAYS:
            del old[k]
    kept = {k: v for k, v in root.attrs.items() if k not in _V1_ATTRS}
    root.attrs.put(kept)
