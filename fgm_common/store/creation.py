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


def made_once(url: str, open_root: Callable[[], zarr.Group], make: Callable[[zarr.Group], None],
              poll: float = 0.2, clock: Callable[[], float] = time.time) -> zarr.Group:
    """The root of the store at `url` once it has a schema version: `make(root)` runs here when this
    process wins the marker; else the one that won is waited for. StoreError on a foreign zarr group."""
    marker = JsonObjects(url, CLAIMS)
    root = open_root()
    while "schema_version" not in root.attrs:
        if set(root.keys()) - set(FOLDERS):
            raise StoreError(f"{url} holds a zarr group that is not an fgm store; choose another --out")
        try:
            root.require_group(CLAIMS)
        except zarr.errors.ContainsGroupError:  # made by another process between zarr's look and its write
            pass
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
