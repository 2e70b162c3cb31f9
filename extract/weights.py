"""Where a CLIP tag's weights come from, decided within one short connect probe, before any hub call.

open_clip resolves a pretrained tag through the Hugging Face hub (or a URL), and offline the hub
client retries each candidate file with backoff, a warning per try, before it gives up. Here the
same decision is made up front: a local file; the file already in the cache `open_clip` would use
(then loaded with the hub switched to offline, so not one network call); a hub that answers a
short TCP connect (then downloaded as usual); or nowhere, with one line that names the ways out.
"""

from __future__ import annotations

import os
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import huggingface_hub
import open_clip
from huggingface_hub import constants as hub_constants
from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

# Long enough for a TCP handshake to a far hub; short enough that an offline start is not noticed.
PROBE_TIMEOUT_S = 1.5
# Where open_clip keeps URL (non-hub) downloads when no cache_dir is given (open_clip.pretrained).
URL_CACHE = os.path.join("~", ".cache", "clip")

WAYS_OUT = ("ways out: --pretrained /path/ckpt.pt (a checkpoint copied from a machine with network), "
            "--clip-cache-dir DIR (a cache that holds it), --pretrained none (random weights); "
            "HF_HUB_OFFLINE=1 reads the cache without trying the network")


@dataclass(frozen=True)
class WeightsSource:
    """How a (model, pretrained) pair gets its weights: `kind` is file, cache, download or unavailable.

    `path` is the file for file and cache; `why` says, in one line, why unavailable.
    """

    kind: str
    path: str = ""
    why: str = ""

    @property
    def available(self) -> bool:
        return self.kind != "unavailable"


@dataclass(frozen=True)
class _Origin:
    """Where open_clip fetches a tag from: a hub repo and its candidate files, or one URL."""

    host: str
    port: int
    cache: str  # the folder a user would look in, for the message
    hub_repo: str = ""
    hub_files: tuple[str, ...] = ()
    url_file: str = ""


def locate(name: str, pretrained: str, cache_dir: str | None = None,
           timeout: float = PROBE_TIMEOUT_S) -> WeightsSource:
    """Decide where `pretrained` (a file or one of `name`'s open_clip tags) comes from; no hub call.

    At most `timeout` seconds (the connect probe) when the weights are neither a file nor cached.
    """
    if os.path.exists(pretrained):
        return WeightsSource("file", pretrained)
    cfg = open_clip.get_pretrained_cfg(name, pretrained)
    if not cfg:
        return WeightsSource("unavailable", why=f"{pretrained!r} is neither a file nor a pretrained tag of {name}")
    origin = _origin(cfg, cache_dir)
    cached = _cached_file(origin)
    if cached:
        return WeightsSource("cache", cached)
    if hub_constants.HF_HUB_OFFLINE:
        offline = "HF_HUB_OFFLINE is set"
    elif not reachable(origin.host, origin.port, timeout):
        offline = f"{origin.host} cannot be reached"
    else:
        return WeightsSource("download")
    return WeightsSource("unavailable", why=f"no CLIP weights for {name}/{pretrained}: {offline} and they are "
                                            f"not in the cache {origin.cache}")


def fetch(name: str, pretrained: str, cache_dir: str | None = None,
          timeout: float = PROBE_TIMEOUT_S) -> WeightsSource:
    """`locate`, then download a tag that must be downloaded into the cache now: file, cache or unavailable.

    For callers that go on without pretrained weights when they cannot be had (fgm-demo): a failed
    download is an answer here, not an error later in the middle of the run.
    """
    source = locate(name, pretrained, cache_dir, timeout)
    if source.kind != "download":
        return source
    try:
        path = open_clip.download_pretrained(open_clip.get_pretrained_cfg(name, pretrained), cache_dir=cache_dir)
    except (OSError, RuntimeError, ValueError) as e:  # hub/network failures surface as these
        first = str(e).splitlines()[0] if str(e) else ""
        return WeightsSource("unavailable", why=f"no CLIP weights for {name}/{pretrained}: the download failed "
                                                f"({type(e).__name__}: {first})")
    return WeightsSource("cache", path)


def unavailable_line(source: WeightsSource) -> str:
    """The one line said when weights cannot be had: why, then the ways out."""
    return f"{source.why}; {WAYS_OUT}"


def _origin(cfg: dict, cache_dir: str | None) -> _Origin:
    """The hub repo (preferred by open_clip when it has one) or the URL that `cfg` downloads from."""
    if cfg.get("hf_hub") and open_clip.pretrained.has_hf_hub():
        repo, filename = os.path.split(cfg["hf_hub"])
        filename = filename or HF_WEIGHTS_NAME
        return _Origin(*_host_port(hub_constants.ENDPOINT), cache=cache_dir or hub_constants.HF_HUB_CACHE,
                       hub_repo=repo, hub_files=(*_safetensors_first(filename), filename))
    url = cfg["url"]
    folder = cache_dir or os.path.expanduser(URL_CACHE)
    return _Origin(*_host_port(url), cache=folder, url_file=os.path.join(folder, os.path.basename(url)))


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def _safetensors_first(filename: str) -> tuple[str, ...]:
    """The .safetensors file open_clip tries before a .bin/.pth one (open_clip.pretrained)."""
    if filename == HF_WEIGHTS_NAME:
        return (HF_SAFE_WEIGHTS_NAME,)
    if filename.endswith((".bin", ".pth")):
        return (filename[:-4] + ".safetensors",)
    return ()


def _cached_file(origin: _Origin) -> str:
    """The weights file already in the cache open_clip would read, or ''."""
    if origin.url_file:
        return origin.url_file if os.path.isfile(origin.url_file) else ""
    for filename in origin.hub_files:
        found = huggingface_hub.try_to_load_from_cache(origin.hub_repo, filename, cache_dir=origin.cache)
        if isinstance(found, str):  # not None, not the cached "does not exist" marker
            return found
    return ""


def reachable(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True if a TCP connection to `host` (or the HTTPS proxy, when one is set) opens within `timeout` s.

    Run in a daemon thread so a name lookup that hangs (getaddrinfo has no timeout) is abandoned too.
    """
    proxy = getproxies().get("https")
    if proxy and not proxy_bypass(host):  # NO_PROXY lists the hosts reached directly
        host, port = _host_port(proxy)
    opened: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            opened.append(True)
        except OSError:  # refused, unresolvable, unreachable, timed out
            pass

    probe = threading.Thread(target=connect, name="fgm-hub-probe", daemon=True)
    probe.start()
    probe.join(timeout)  # returns at once when refused or unresolvable
    return bool(opened)


@contextmanager
def hub_offline() -> Iterator[None]:
    """The hub client in offline mode while open_clip reads a cached file: no request, no retry.

    huggingface_hub reads HF_HUB_OFFLINE once at import; its maintainers' way to switch it later is
    the module constant, put back afterwards.
    """
    before = hub_constants.HF_HUB_OFFLINE
    hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = before
