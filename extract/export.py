"""Export a feature store to one HDF5 file for users of other tools."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from fgm_common.store import FeatureStore


def export_hdf5(store_url: str, out: Path) -> int:
    """Write /videos/<entry id>/<array> for every complete entry, /text/*, and the store's config as attrs.

    Returns the number of videos written. Entry attrs (label, source key, hashes) travel as HDF5 attrs.
    """
    store = FeatureStore.open(store_url)
    entries = store.entries()
    tmp = Path(str(out) + ".partial")
    with h5py.File(tmp, "w") as h5:
        h5.attrs["extract_config"] = json.dumps(store.config.to_dict())
        h5.attrs["provenance"] = json.dumps(store.provenance)
        h5.attrs["classes"] = json.dumps(store.classes)
        text = store.text()
        if text:
            g = h5.create_group("text")
            for name in ("sentence_emb", "class_emb", "scene_emb"):
                g.create_dataset(name, data=text[name])
            for name in ("sentences", "sentence_class", "scenes"):
                g.attrs[name] = json.dumps(text[name])
        videos = h5.create_group("videos")
        for entry in entries:
            g = videos.create_group(entry.id)
            for name, arr in store.read(entry).items():
                g.create_dataset(name, data=arr, compression="gzip" if arr.nbytes > 1 << 16 else None)
            for k, v in entry.meta.items():
                g.attrs[k] = json.dumps(v) if not isinstance(v, (str, int, float, np.number)) else v
    tmp.replace(out)  # a killed export never leaves a file that looks complete
    return len(entries)
