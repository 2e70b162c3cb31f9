"""Fixtures for every stage-two test."""

from __future__ import annotations

import pytest
import torch

from fgm_common.datasets import get_dataset
from fgm_common.store import FeatureStore
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
