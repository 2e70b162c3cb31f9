"""The store's text side: class and scene sentence embeddings, written as a whole version, then made current.

Several processes finishing a run on one store each write the text for the classes they saw. Each
writes its own version group (named by its sentences and the writer, so two processes writing the
same sentences at once never write into one group), then switches `text.attrs["current"]` in one
write, so a reader always sees one whole version, never arrays of two. Version 1 stores kept the
arrays in `text/` itself and the classes in the root's attrs; they read the same.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import numpy as np
import zarr

from fgm_common.store.creation import require_group
from fgm_common.store.layout import TEXT, TEXT_ARRAYS
from fgm_common.texts import class_mean


def _version(classes: list[str], sentences: list[str], scenes: list[str]) -> str:
    """A new version's group name: its text's hash, then this writer's own random suffix."""
    text = json.dumps([classes, sentences, scenes]).encode()
    return f"v-{hashlib.sha256(text).hexdigest()[:16]}-{uuid.uuid4().hex[:8]}"


def write_text(root: zarr.Group, classes: list[str], sentences: list[str], sentence_class: list[int],
               sentence_emb: np.ndarray, scenes: list[str], scene_emb: np.ndarray,
               class_emb: np.ndarray | None = None) -> None:
    """Write sentence_emb (S, D), scene_emb (K, D) and their class means (C, D) as one version, then make it current.

    `class_emb` is given only to carry a stored one over unchanged (fgm_common/store/upgrade.py).
    """
    sentence_emb = np.asarray(sentence_emb, dtype=np.float32)
    cls_idx = np.asarray(sentence_class)
    if class_emb is None:
        class_emb = class_mean(sentence_emb, cls_idx, len(classes))
    arrays = {"sentence_emb": sentence_emb,
              "class_emb": np.asarray(class_emb, dtype=np.float32),  # (C, D)
              "scene_emb": np.asarray(scene_emb, dtype=np.float32)}
    text = require_group(root, TEXT)
    name = _version(list(classes), list(sentences), list(scenes))
    version = text.create_group(name)
    for key in TEXT_ARRAYS:
        version.create_array(key, data=arrays[key])
    version.attrs.update({"classes": list(classes), "sentences": list(sentences),
                          "sentence_class": [int(c) for c in cls_idx], "scenes": list(scenes)})
    text.attrs["current"] = name  # one write: readers move from one whole version to the next


def _current(root: zarr.Group) -> zarr.Group | None:
    """The group holding the current text arrays and attrs: the current version, or a version 1 store's text/."""
    if TEXT not in root:
        return None
    text = root[TEXT]
    current = text.attrs.get("current")
    if current:
        return text[current]
    return text if "sentence_emb" in text else None


def read_text(root: zarr.Group) -> dict[str, Any]:
    """sentence_emb (S, D), class_emb (C, D), scene_emb (K, D), and sentences, sentence_class, scenes; {} before any."""
    group = _current(root)
    if group is None:
        return {}
    out: dict[str, Any] = {key: group[key][:] for key in TEXT_ARRAYS}
    out.update({k: group.attrs[k] for k in ("sentences", "sentence_class", "scenes")})
    return out


def text_classes(root: zarr.Group) -> list[str]:
    """The classes of the current text version ([] before any); a version 1 store's root attrs."""
    group = _current(root)
    if group is not None and "classes" in group.attrs:
        return list(group.attrs["classes"])
    return list(root.attrs.get("classes", []))
