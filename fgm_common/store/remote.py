"""Where a store lives: a local folder or an fsspec URL; the optional package a URL needs, and how zarr opens it.

Credentials and endpoint of an s3:// store come from the standard AWS environment
(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...), which s3fs and
botocore read themselves; fgm adds no settings of its own.
"""

from __future__ import annotations

import importlib
from typing import Any

from fsspec.utils import get_protocol

from fgm_common.store.layout import StoreError

# protocol -> (the module that implements it, the fgm extra that installs it)
_OPTIONAL = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3")}


def require_filesystem(url: str) -> None:
    """StoreError at once, naming the extra to install, when `url`'s filesystem package is not installed."""
    need = _OPTIONAL.get(get_protocol(url))
    if need is None:
        return
    module, extra = need
    try:
        importlib.import_module(module)
    except ImportError as e:
        raise StoreError(f"{url} is on object storage, which needs {module}: pip install 'fgm[{extra}]'") from e


def is_remote(url: str) -> bool:
    """Whether `url` is on object storage (s3://, ...), where every read is a network request."""
    return get_protocol(url) in _OPTIONAL


def storage_options(url: str) -> dict[str, Any]:
    """Options of the fsspec filesystem of `url`: on object storage, listings asked afresh and one GET per read.

    s3fs otherwise keeps a folder's first listing for the life of the process, and zarr lists groups
    through it: a run would not see the entries, failures and runs that other processes sharing the
    store wrote since, not even through a store it opens again. With `max_concurrency` above 1, s3fs
    asks every object's size (a HEAD) before reading it, to split big objects into parallel ranges;
    a store's objects are small, so that HEAD doubled the requests of every read.
    """
    return {"use_listings_cache": False, "max_concurrency": 1} if get_protocol(url) in _OPTIONAL else {}


def zarr_options(url: str) -> dict[str, Any]:
    """Keyword arguments for zarr.open_group: `storage_options` where there are any."""
    options = storage_options(url)
    return {"storage_options": options} if options else {}
