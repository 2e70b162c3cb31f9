"""A local copy of a store on object storage, brought up to date before it is read: training reads at disk speed.

zarr reads an entry as a dozen small GETs, one after another: over S3 a 10,000-video store takes
minutes to load at the start of every `fgm-train` (docs/scale-out.md has the measurement). Here the
store's objects are listed once (one request per thousand objects), the ones new or changed since
the last copy (by ETag, else size and time) are fetched concurrently, and objects gone from the
store are removed from the copy. Leases (`claims/`) are left out: they say who is extracting now.
An entry written while the copy is made is at worst copied incomplete, and read as such.
"""

from __future__ import annotations

import hashlib
import json
import os

import fsspec

from fgm_common.cache import cache_root
from fgm_common.store.layout import CLAIMS
from fgm_common.store.remote import is_remote, storage_options

MANIFEST = ".fgm-copy.json"  # object -> the tag it had when copied


def _tag(info: dict) -> str:
    return str(info.get("ETag") or (info.get("size"), info.get("LastModified") or info.get("mtime")))


def local_copy(url: str, cache_dir: str | None = None) -> str:
    """`url` itself when it is not on object storage; else a local folder with the same objects, updated now."""
    if not is_remote(url):
        return url
    fs, root = fsspec.core.url_to_fs(url, **storage_options(url))
    root = root.rstrip("/")
    dest = cache_root(cache_dir) / "stores" / hashlib.sha256(url.encode()).hexdigest()[:16]
    dest.mkdir(parents=True, exist_ok=True)
    manifest_path = dest / MANIFEST
    had = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    listing = {path[len(root) + 1:]: _tag(info) for path, info in fs.find(root, detail=True).items()
               if not path[len(root) + 1:].startswith(f"{CLAIMS}/")}
    changed = sorted(rel for rel, tag in listing.items() if had.get(rel) != tag or not (dest / rel).is_file())
    for rel in changed:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
    if changed:  # one call: s3fs fetches them concurrently
        fs.get([f"{root}/{rel}" for rel in changed], [str(dest / rel) for rel in changed])
    for rel in set(had) - set(listing):
        (dest / rel).unlink(missing_ok=True)
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(listing))
    os.replace(tmp, manifest_path)
    return str(dest)
