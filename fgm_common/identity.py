"""Weights identities: the dicts that name the exact weights of a frozen tower, and their comparison.

extract/clip_model.py and extract/backbones.py make them (model, weights source, hashes); the store
keeps them (`clip_identity`, `backbone_identity`) and so does a checkpoint (`clip_identity`). Features
made with other weights are never mixed in: wherever weights are loaded again they are compared here.
"""

from __future__ import annotations

# The hashes in a weights identity that pin the exact weights.
IDENTITY_HASHES = ("weights_sha256", "file_sha256")


def weights_mismatch(recorded: dict, actual: dict) -> str | None:
    """The first hash `recorded` pins that `actual` does not match (None: the same weights)."""
    for key in IDENTITY_HASHES:
        if recorded.get(key) and actual.get(key) != recorded[key]:
            return key
    return None
