"""Making a new store: of processes started at once on it, exactly one writes it and the others wait for it.

Every process first makes the `claims` group (the same bytes whoever writes them), then tries to
create the marker `claims/creation.json` exclusively (store/objects.py). The winner writes the
record folders and, last, the root's attrs with the schema version; the others wait until those
appear. A maker that died before finishing leaves its marker: after `MAKER_SECONDS` it is taken
over, and a root holding only the store's own folders counts as a creation in progress, not as
a foreign zarr group.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Callable

import zarr

from fgm_common.store.layout import CLAIMS, FOLDERS, StoreError
from fgm_common.store.objects import JsonObjects

MARKER = "creation.json"
MAKER_SECONDS = 60.0  # longer than making a store takes (prepare may download backbone weights)


def in_the_making(root: zarr.Group) -> bool:
    """True when the root has no schema version yet and holds nothing but the store's own folders: a store
    whose maker has not written its version (the last thing it writes), or died before it did."""
    return "schema_version" not in root.attrs and set(root.keys()) <= set(FOLDERS)


def require_group(root: zarr.Group, name: str) -> zarr.Group:
    """root[name], made when absent; another process making it at the same moment is not an error."""
    try:
        return root.require_group(name)
    except zarr.errors.ContainsGroupError:  # made by the other process between zarr's look and its write
        return root[name]


def made_once(url: str, open_root: Callable[[], zarr.Group], make: Callable[[zarr.Group], None],
              poll: float = 0.2, clock: Callable[[], float] = time.time) -> zarr.Group:
    """The root of the store at `url` once it has a schema version: `make(root)` runs here when this
    process wins the marker; else the one that won is waited for. StoreError on a foreign zarr group."""
    marker = JsonObjects(url, CLAIMS)
    root = open_root()
    while "schema_version" not in root.attrs:
        if not in_the_making(root):
            raise StoreError(f"{url} holds a zarr group that is not an fgm store; choose another --out")
        require_group(root, CLAIMS)
        if marker.create(MARKER, {"host": socket.gethostname(), "pid": os.getpid(), "started": clock()}):
            try:
                for folder in FOLDERS:
                    root.require_group(folder)
                make(root)  # writes the root's attrs last
            finally:
                marker.delete(MARKER)
            return root
        maker = marker.get(MARKER)
        if maker is not None and clock() - float(maker.get("started", 0)) > MAKER_SECONDS:
            marker.delete(MARKER)  # its maker died half way: make the store here
            continue
        time.sleep(poll)
        root = open_root()
    return root
