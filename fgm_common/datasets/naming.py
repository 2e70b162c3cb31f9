"""Reading a store key (a path relative to the input root, maybe with '#start-end'): its folders and its stem.

Every dataset adapter parses keys with these helpers so that all of them treat sub-clip suffixes, frame
folders (no extension) and a parent folder above the published root the same way.
"""

from __future__ import annotations

import re

from fgm_common.datasets.base import LayoutError

_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")


def clip_path(key: str) -> str:
    """'a/b.mp4#1000-2000' -> 'a/b.mp4': the file or frame folder the key was extracted from."""
    return key.split("#", 1)[0]


def components(key: str) -> list[str]:
    """The folders and the file (or frame folder) name of a key, outermost first."""
    return [p for p in clip_path(key).split("/") if p]


def stem(key: str) -> str:
    """The clip's own name without its extension: 'x/person01_boxing_d1_uncomp.avi' -> 'person01_boxing_d1_uncomp'.

    A frame folder has no extension and is returned whole.
    """
    parts = components(key)
    return _EXTENSION.sub("", parts[-1]) if parts else ""


class Excluded(LayoutError):
    """A clip that fits the published layout but that the adapter leaves out by design (CASIA two-person
    clips, FineGym elements outside the chosen set). Callers that must label every clip may skip these."""


def fail(key: str, expected: str) -> LayoutError:
    """The error every adapter raises: names the file and what its layout should have been."""
    return LayoutError(f"{key}: expected {expected}")


def excluded(key: str, why: str) -> Excluded:
    """The error for a clip left out on purpose: names the file and why."""
    return Excluded(f"{key}: left out, {why}")
