"""Older stores (version 1: records in the root's attrs; version 2: no box arrays) read as they are, and are
upgraded in place when written to."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from fgm_common.config import ExtractConfig
from fgm_common.store import SCHEMA_VERSION, FeatureStore

CFG = ExtractConfig(clip_model="fgm-tiny-vit", pretrained="none", num_frames=4)
IDENTITY = {"model": "fgm-tiny-vit", "weights_sha256": "c" * 64}


@pytest.fixture
def v1_url(tmp_path) -> str:
    """A store laid out as fgm wrote version 1: one entry, a failure, a run, text arrays in text/ itself."""
    url = str(tmp_path / "v1.zarr")
    root = zarr.open_group(url, mode="w")
    root.attrs.update({"schema_version": 1, "extract_config": CFG.to_dict(), "config_digest": CFG.digest(),
                       "provenance": {"created": "then"}, "classes": ["wave", "jump"],
                       "failures": {"bad.mp4": {"reason": "empty-file", "run_id": "r0", "size": 0}},
                       "runs": [{"run_id": "r0", "extracted": 1}], "clip_identity": IDENTITY})
    entry = root.create_group("videos").create_group("a-0", attributes={"key": "wave/a.mp4", "complete": True})
    entry.create_array("clip", data=np.ones((4, 8), np.float32))
    text = root.create_group("text")
    for name, rows in (("sentence_emb", 2), ("class_emb", 2), ("scene_emb", 1)):
        text.create_array(name, data=np.full((rows, 8), rows, np.float32))
    text.attrs.update({"sentences": ["s wave", "s jump"], "sentence_class": [0, 1], "scenes": ["a gym."]})
    return url


def _records(store: FeatureStore) -> tuple:
    text = store.text()
    return (store.classes, store.failures(), store.runs(), store.clip_identity, [e.key for e in store.entries()],
            text["sentences"], text["sentence_emb"].tolist(), text["class_emb"].tolist(), text["scenes"])


def test_a_version_1_store_reads_unchanged(v1_url):
    store = FeatureStore.open(v1_url)
    assert store.schema_version == 1
    assert _records(store) == (["wave", "jump"], {"bad.mp4": {"reason": "empty-file", "run_id": "r0", "size": 0}},
                               [{"run_id": "r0", "extracted": 1}], IDENTITY, ["wave/a.mp4"], ["s wave", "s jump"],
                               [[2.0] * 8] * 2, [[2.0] * 8] * 2, ["a gym."])
    assert zarr.open_group(v1_url).attrs["schema_version"] == 1  # reading wrote nothing


def test_writing_upgrades_it_in_place_keeping_every_record(v1_url):
    before = _records(FeatureStore.open(v1_url))
    store = FeatureStore.create_or_open(v1_url, CFG, {"created": "now"})
    assert store.schema_version == SCHEMA_VERSION == 3
    assert _records(FeatureStore.open(v1_url)) == before
    root = zarr.open_group(v1_url)
    assert not {"failures", "runs", "classes", "clip_identity"} & set(root.attrs)  # moved, not copied
    assert root.attrs["provenance"] == {"created": "then"}  # the store's own provenance stays
    store.add_run({"run_id": "r1"})
    store.record_failure("worse.mp4", {"reason": "unreadable"})
    again = FeatureStore.open(v1_url)
    assert [r["run_id"] for r in again.runs()] == ["r0", "r1"] and sorted(again.failures()) == ["bad.mp4", "worse.mp4"]
    with pytest.raises(Exception, match="weights loaded now differ"):
        again.record_weights({**IDENTITY, "weights_sha256": "d" * 64})
    assert FeatureStore.create_or_open(v1_url, CFG, {}).schema_version == 3  # a second open: nothing to do


def test_a_version_2_store_only_gets_its_new_number(tmp_path):
    url = str(tmp_path / "v2.zarr")
    made = FeatureStore.create_or_open(url, CFG, {"created": "then"})
    made.add_run({"run_id": "r0"})
    made.root.attrs["schema_version"] = 2  # version 3 added only optional arrays: a v2 store looks like this
    attrs = {k: v for k, v in zarr.open_group(url).attrs.items() if k != "schema_version"}
    assert FeatureStore.open(url).schema_version == 2  # read as it is
    store = FeatureStore.create_or_open(url, CFG, {"created": "now"})
    assert store.schema_version == 3 and [r["run_id"] for r in store.runs()] == ["r0"]
    assert {k: v for k, v in zarr.open_group(url).attrs.items() if k != "schema_version"} == attrs
