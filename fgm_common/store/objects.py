"""Small JSON objects inside a store's folder, through fsspec: create-if-absent (one winner), replace, read, list.

zarr has no exclusive create, and two records need one: the weights' identity (first writer wins)
and a lease on a video (extract/claims.py). fsspec gives it on object storage (a conditional PUT,
If-None-Match) and in memory; a local folder uses a link, which is atomic and exclusive on POSIX
filesystems. Every write is whole: a reader never sees half an object.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from fgm_common.store.remote import storage_options

_TMP_PREFIX = "."  # a local write goes to a hidden file first; `names` never lists one


class JsonObjects:
    """The JSON objects of one folder of a store (`<store url>/<folder>/<name>`)."""

    def __init__(self, store_url: str, folder: str):
        self.fs, root = fsspec.core.url_to_fs(store_url, **storage_options(store_url))
        self.base = f"{root.rstrip('/')}/{folder}"
        self._local = isinstance(self.fs, LocalFileSystem)

    def path(self, name: str) -> str:
        return f"{self.base}/{name}"

    def create(self, name: str, obj: dict[str, Any]) -> bool:
        """Write `name` unless it exists; True when this call wrote it (exactly one of racing callers)."""
        data = json.dumps(obj, sort_keys=True).encode()
        path = self.path(name)
        if self._local:
            tmp = self._local_tmp(path, data)
            try:
                os.link(tmp, path)  # atomic, and fails when `path` exists
                return True
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
        try:
            self.fs.pipe_file(path, data, mode="create")
            return True
        except FileExistsError:
            return False

    def put(self, name: str, obj: dict[str, Any]) -> None:
        """Write `name` whole, replacing it if present."""
        data = json.dumps(obj, sort_keys=True).encode()
        path = self.path(name)
        if self._local:
            os.replace(self._local_tmp(path, data), path)
        else:
            self.fs.pipe_file(path, data)

    def get(self, name: str) -> dict[str, Any] | None:
        """The object, or None when there is none."""
        try:
            return json.loads(self.fs.cat_file(self.path(name)))
        except FileNotFoundError:
            return None

    def names(self, prefix: str = "") -> list[str]:
        """Names of the objects under `prefix` (a sub-folder, e.g. 'entry-id/'), sorted; [] when there are none.

        Another process's write in flight (a hidden temporary file beside its object, `_local_tmp`) is not an object.
        """
        folder = self.path(prefix).rstrip("/")
        try:
            found = self.fs.ls(folder, detail=False, refresh=True)  # object storage caches listings: not here
        except FileNotFoundError:
            return []
        names = (p.rstrip("/").rsplit("/", 1)[-1] for p in found)
        return sorted(n for n in names if not n.startswith(_TMP_PREFIX))

    def delete(self, name: str) -> None:
        """Remove `name`; nothing when it is already gone."""
        try:
            self.fs.rm_file(self.path(name))
        except FileNotFoundError:
            pass

    def prune(self, folder: str) -> None:
        """Remove `folder` when it is an empty local directory (object storage has no folders to leave behind)."""
        if self._local:
            try:
                os.rmdir(self.path(folder))
            except OSError:  # not empty (another process's lease), or already gone
                pass

    def _local_tmp(self, path: str, data: bytes) -> str:
        folder = os.path.dirname(path)
        tmp = f"{folder}/{_TMP_PREFIX}{os.path.basename(path)}.{uuid.uuid4().hex}.tmp"
        while True:
            os.makedirs(folder, exist_ok=True)
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                return tmp
            except FileNotFoundError:  # another process's prune removed the folder, empty, between the two lines
                continue
