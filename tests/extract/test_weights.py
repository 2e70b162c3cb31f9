"""Where CLIP weights come from: decided fast offline, cached tags loaded with no network, one line naming the ways out."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from huggingface_hub import constants as hub_constants

from extract.clip_model import ClipWeightsError, load_clip, state_sha256
from extract.weights import WAYS_OUT, fetch, locate, reachable, unavailable_line
from tests.extract.weights_helpers import (HUB_REPO, TINY, cache_tiny_weights, forbid_network, hub_offline_env,
                                           no_proxy, register_tag)

WAYS = ("--pretrained /path/ckpt.pt", "--clip-cache-dir", "--pretrained none", "HF_HUB_OFFLINE=1")


def closed_port() -> int:
    """A local port that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_reachable_knows_an_open_port_from_a_closed_one_and_gives_up_on_a_hanging_lookup(monkeypatch):
    no_proxy(monkeypatch)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert reachable("127.0.0.1", server.getsockname()[1], timeout=2)
    t0 = time.perf_counter()
    assert not reachable("127.0.0.1", closed_port(), timeout=5)
    assert time.perf_counter() - t0 < 2  # refused at once, not after the timeout

    def hang(*_args, **_kwargs):
        time.sleep(3)
        raise TimeoutError("the lookup never answered")  # what the abandoned thread meets, long after

    monkeypatch.setattr(socket, "create_connection", hang)  # a name lookup that never answers
    t0 = time.perf_counter()
    assert not reachable("huggingface.co", 443, timeout=0.3)
    assert time.perf_counter() - t0 < 1.5


def test_an_https_proxy_is_probed_instead_of_the_hub(monkeypatch):
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen()
        monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{proxy.getsockname()[1]}")
        assert reachable("127.0.0.1", closed_port(), timeout=2)  # the hub's port is closed, the proxy answers
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        assert not reachable("127.0.0.1", closed_port(), timeout=2)  # listed in NO_PROXY: probed directly


@pytest.mark.parametrize("offline", [True, False], ids=["HF_HUB_OFFLINE", "closed-port"])
def test_unavailable_tag_fails_fast_in_one_line_naming_the_ways_out(monkeypatch, tmp_path, caplog, offline):
    """Not cached, hub offline or unreachable: one line, no hub call, no retry, in well under the hub's minute."""
    no_proxy(monkeypatch)
    hub_offline_env(monkeypatch, offline)
    monkeypatch.setattr(hub_constants, "ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    if offline:
        forbid_network(monkeypatch)  # offline means not even the probe
    caplog.set_level(logging.DEBUG)
    t0 = time.perf_counter()
    with pytest.raises(ClipWeightsError) as e:
        load_clip("ViT-B-32", "openai", device="cpu", cache_dir=str(tmp_path / "empty"))
    assert time.perf_counter() - t0 < 3
    message = str(e.value)
    assert "\n" not in message and message.startswith("no CLIP weights for ViT-B-32/openai: ")
    assert ("HF_HUB_OFFLINE is set" if offline else "127.0.0.1 cannot be reached") in message
    assert str(tmp_path / "empty") in message
    assert all(way in message for way in WAYS)
    assert not [r for r in caplog.records if "Retry" in r.getMessage()]


def test_cached_tag_loads_with_no_network_attempt(monkeypatch, tmp_path):
    """A tag whose file is in the hub cache: found without a probe, read with the hub client offline."""
    no_proxy(monkeypatch)
    hub_offline_env(monkeypatch, False)  # nobody asked for offline: the cache alone decides
    tag = register_tag(monkeypatch)
    path = cache_tiny_weights(tmp_path / "hub", seed=7)
    attempts = forbid_network(monkeypatch)
    assert locate(TINY, tag, str(tmp_path / "hub")).kind == "cache"
    loaded = load_clip(TINY, tag, device="cpu", cache_dir=str(tmp_path / "hub"))
    seeded = load_clip(TINY, "none", random_seed=7, device="cpu")
    other = load_clip(TINY, "none", random_seed=8, device="cpu")
    assert attempts == [] and hub_constants.HF_HUB_OFFLINE is False  # switched back after the load
    assert state_sha256(loaded.model) == seeded.identity["weights_sha256"] != other.identity["weights_sha256"]
    assert loaded.identity == {"model": TINY, "pretrained": tag, "open_clip": loaded.identity["open_clip"],
                               "random_weights": False, "embed_dim": seeded.embed_dim}  # a tag: no file hash
    assert locate(TINY, str(path)).kind == "file"


def test_safetensors_are_looked_for_first_and_url_tags_in_their_own_cache(monkeypatch, tmp_path):
    no_proxy(monkeypatch)
    hub_offline_env(monkeypatch, True)
    tag = register_tag(monkeypatch)
    forbid_network(monkeypatch)
    safe = cache_tiny_weights(tmp_path / "hub", seed=0, filename="open_clip_model.safetensors")
    assert locate(TINY, tag, str(tmp_path / "hub")).path == str(safe)
    register_tag(monkeypatch, {"url": "https://weights.invalid/tiny/tiny-clip.pt", "hf_hub": ""})
    assert not locate(TINY, tag, str(tmp_path / "urls")).available
    (tmp_path / "urls").mkdir()
    (tmp_path / "urls" / "tiny-clip.pt").write_bytes(b"weights")
    assert locate(TINY, tag, str(tmp_path / "urls")) == locate(TINY, tag, str(tmp_path / "urls"))
    assert locate(TINY, tag, str(tmp_path / "urls")).path == str(tmp_path / "urls" / "tiny-clip.pt")


def test_fetch_turns_a_failed_download_into_an_answer(monkeypatch, tmp_path):
    """The hub answers the probe but the download fails: unavailable, said in one line, not raised."""
    no_proxy(monkeypatch)
    hub_offline_env(monkeypatch, False)
    tag = register_tag(monkeypatch)
    monkeypatch.setattr("extract.weights.reachable", lambda *_args, **_kw: True)

    def failed(*_args, **_kwargs):
        raise FileNotFoundError(f"Failed to download file for {HUB_REPO}\nsecond line")

    monkeypatch.setattr("open_clip.download_pretrained", failed)
    source = fetch(TINY, tag, str(tmp_path))
    assert not source.available and "the download failed (FileNotFoundError: Failed to download" in source.why
    line = unavailable_line(source)
    assert "\n" not in line and line.endswith(WAYS_OUT)
