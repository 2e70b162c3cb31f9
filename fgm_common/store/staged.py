"""Write one entry's group to object storage in three round trips, not one per check zarr makes.

zarr creating a group and its arrays straight on S3 checks each name and each parent before every
object it writes (HEAD, LIST, GET), one request after another (docs/scale-out.md counts them).
Here zarr makes the group in memory, so its metadata and chunks are byte for byte what it would
have written, and the objects go up in three steps: the group's metadata saying `complete: false`,
every array's objects at once, then the metadata with the final attrs. The store's rule holds as
before: `complete` reads true only once every array is there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import zarr
from zarr.storage import MemoryStore

GROUP_META = "zarr.json"


def put_group(fs, path: str, attrs: dict[str, Any], arrays: dict[str, np.ndarray], final: dict[str, Any]) -> None:
    """Write the group `path` (a folder of the sync fsspec filesystem `fs`) with `arrays` as zarr v3, its attrs
    `attrs` until every array is written, then `final`."""
    blobs: dict = {}  # object key inside the group -> zarr Buffer
    group = zarr.open_group(MemoryStore(blobs), mode="w", attributes=attrs)
    for name, arr in arrays.items():
        group.create_array(name, data=arr)
    first = blobs[GROUP_META].to_bytes()
    group.attrs.update(final)
    fs.pipe_file(f"{path}/{GROUP_META}", first)
    fs.pipe({f"{path}/{key}": buf.to_bytes() for key, buf in blobs.items() if key != GROUP_META})
    fs.pipe_file(f"{path}/{GROUP_META}", blobs[GROUP_META].to_bytes())
