"""Cheap (size, mtime) and exact (sha256) fingerprints of a source video or frame folder."""

from __future__ import annotations

import hashlib
from pathlib import Path


FINGERPRINT = ("size", "mtime_ns", "sha256")  # the keys an entry's attrs and a failure record keep


def recorded_fingerprint(meta: dict) -> dict:
    """The source's fingerprint as an entry's attrs record it."""
    return {k: meta[k] for k in FINGERPRINT}


def stat_fingerprint(path: str | Path) -> tuple[int, int]:
    """(size in bytes, mtime in ns) of a file, or summed/maxed over a frame folder."""
    p = Path(path)
    if p.is_dir():
        stats = [f.stat() for f in sorted(p.iterdir()) if f.is_file()]
        return sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)
    s = p.stat()
    return s.st_size, s.st_mtime_ns


def content_sha256(path: str | Path) -> str:
    """sha256 of the file's bytes (a frame folder: of its files' names and bytes in order)."""
    h = hashlib.sha256()
    p = Path(path)
    files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            h.update(f.name.encode())
        with open(f, "rb") as fh:
            while block := fh.read(1 << 22):
                h.update(block)
    return h.hexdigest()
