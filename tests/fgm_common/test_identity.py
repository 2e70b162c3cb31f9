"""fgm_common.identity: which pinned hash of a weights identity another identity fails to match."""

from __future__ import annotations

from fgm_common.identity import weights_mismatch


def test_weights_mismatch_names_the_first_pinned_hash_that_differs():
    recorded = {"model": "ViT-B-32", "weights_sha256": "aa", "file_sha256": "ff"}
    assert weights_mismatch(recorded, dict(recorded)) is None
    assert weights_mismatch(recorded, recorded | {"weights_sha256": "ab"}) == "weights_sha256"
    assert weights_mismatch(recorded, recorded | {"file_sha256": "fe"}) == "file_sha256"
    assert weights_mismatch(recorded, {"weights_sha256": "aa"}) == "file_sha256"  # a pinned hash that is absent
    assert weights_mismatch({"model": "ViT-B-32"}, {"weights_sha256": "zz"}) is None  # nothing pinned: nothing to refuse
    assert weights_mismatch(recorded, recorded | {"model": "RN50"}) is None  # only the hashes pin the weights
