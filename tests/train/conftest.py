"""Fixtures for every stage-two test."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fgm_common.config import DetectConfig
from fgm_common.datasets import get_dataset
from fgm_common.store import CLIP, FLOW, FLOW_HIST, FeatureStore
from tests.train.box_helpers import BOX_SLOTS, fake_box_arrays
from train.fitting.data import load_features


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    # Tiny tensors gain nothing from intra-op threads, and on a busy 2-core machine the spinning
    # threads made the overfit test ~10x slower (measured: 4 s vs 45 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def store(tiny_store) -> FeatureStore:
    """The session's tiny extracted store (tests/conftest.py), opened read-only."""
    return FeatureStore.open(tiny_store)


@pytest.fixture(scope="module")
def fs(store):
    """Its features in memory, tokens included, labelled by parent folder."""
    return load_features(store, get_dataset("folder"), tokens=True)


@pytest.fixture(scope="session")
def box_store(tiny_store, tmp_path_factory) -> str:
    """The tiny store's entries, text and CLIP again plus fake_box_arrays, in a store made with detector hog.

    Its config is the tiny store's with DetectConfig("hog", top_k=BOX_SLOTS). Read-only for tests.
    """
    src = FeatureStore.open(tiny_store)
    url = str(tmp_path_factory.mktemp("box_store") / "store")
    config = dataclasses.replace(src.config, detect=DetectConfig("hog", top_k=BOX_SLOTS))
    store = FeatureStore.create_or_open(url, config, {"note": "test data: the tiny store plus random boxes"})
    store.record_weights(src.clip_identity)
    text = src.text()
    store.set_text(src.classes, text["sentences"], text["sentence_class"], text["sentence_emb"], text["scenes"],
                   text["scene_emb"])
    rng = np.random.default_rng(0)
    for entry in src.entries():
        arrays = src.read(entry)
        boxes = fake_box_arrays(len(arrays[CLIP]), len(arrays[FLOW]), BOX_SLOTS, arrays[FLOW_HIST].shape[-1], rng)
        meta = {k: v for k, v in entry.meta.items() if k not in ("key", "complete")}
        store.write_entry(entry.key, {**arrays, **boxes}, meta)
    return url


@pytest.fixture(scope="module")
def box_fs(box_store):
    """The store with boxes in memory, tokens and region slots included: the same videos, order and labels as `fs`."""
    return load_features(FeatureStore.open(box_store), get_dataset("folder"), tokens=True, regions=True)
