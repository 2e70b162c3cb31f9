"""Fixtures for every stage-two test."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    # Tiny tensors gain nothing from intra-op threads, and on a busy 2-core machine the spinning
    # threads made the overfit test ~10x slower (measured: 4 s vs 45 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
