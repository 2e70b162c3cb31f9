"""A pretrained tag of the tiny CLIP for tests: registered with open_clip, optionally in a fake hub cache; no network."""

from __future__ import annotations

import socket
from pathlib import Path

import open_clip
import pytest
import torch
from huggingface_hub import constants as hub_constants

TINY = "fgm-tiny-vit"
TAG = "fgmtest"  # open_clip lower-cases tags and turns '-' into '_'; this one is already clean
HUB_REPO = "fgm-test/tiny-clip"
COMMIT = "0123456789abcdef0123456789abcdef01234567"  # what refs/main names; any 40 hex digits


def register_tag(monkeypatch: pytest.MonkeyPatch, cfg: dict | None = None) -> str:
    """Give the tiny model the tag `TAG`, fetched from `HUB_REPO` on the hub unless `cfg` says otherwise."""
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, TINY, {TAG: cfg or {"url": "", "hf_hub": f"{HUB_REPO}/"}})
    return TAG


def cache_tiny_weights(cache_dir: Path, seed: int, filename: str = "open_clip_pytorch_model.bin") -> Path:
    """Write a seeded random tiny model's state_dict where the hub client caches `HUB_REPO`'s `filename`."""
    repo = cache_dir / f"models--{HUB_REPO.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY, pretrained=None)
    torch.save(model.state_dict(), snapshot / filename)
    return snapshot / filename


def forbid_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Make every name lookup and connect fail loudly; returns the list of attempts, which must stay empty."""
    attempts: list[tuple] = []

    def refuse(*args, **_kwargs):
        attempts.append(args)
        raise AssertionError(f"network attempt: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def hub_offline_env(monkeypatch: pytest.MonkeyPatch, offline: bool) -> None:
    """HF_HUB_OFFLINE as the hub client sees it (read once at its import, so set on the module too)."""
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", offline)


def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
