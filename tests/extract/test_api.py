"""extract.api: the settings a store records (make_config) and one library call from videos to a store."""

from __future__ import annotations

import hashlib

import pytest

from extract.api import extract, make_config
from extract.flow import cuda_available
from fgm_common.store import CLIP, FeatureStore

TINY = {"clip_model": "fgm-tiny-vit", "pretrained": "none"}


def test_fps_sampling_ignores_the_frame_count():
    cfg = make_config(frames=8, fps=5.0, **TINY)
    assert (cfg.sampling, cfg.num_frames, cfg.fps) == ("fps", 0, 5.0)
    assert cfg == make_config(fps=5.0, **TINY)  # so both name the same store


def test_auto_flow_is_resolved_to_what_runs_here():
    assert make_config(flow="auto", **TINY).flow.backend == ("cuda-farneback" if cuda_available() else "dis")
    with pytest.raises(ValueError, match="unknown flow backend"):
        make_config(flow="optical-magic", **TINY)


def test_a_local_checkpoint_is_named_by_its_bytes(tmp_path):
    weights = tmp_path / "clip.pt"
    weights.write_bytes(b"not really weights")
    cfg = make_config(clip_model="fgm-tiny-vit", pretrained=str(weights))
    assert cfg.clip_sha256 == hashlib.sha256(b"not really weights").hexdigest()


def test_backbone_weights_without_a_backbone_are_refused():
    with pytest.raises(ValueError, match="--backbone NAME"):
        make_config(backbone_weights="none", **TINY)


def test_extract_writes_every_video_and_a_second_call_skips_them(tiny_videos, tmp_path):
    out, cfg = str(tmp_path / "store.zarr"), make_config(frames=4, **TINY)
    found = []
    first = extract(tiny_videos, out, cfg, on_found=found.append)
    assert first.extracted == first.total == len(found[0].items) > 0 and not first.failed
    entries = FeatureStore.open(out).entries()
    assert len(entries) == first.total and all(FeatureStore.open(out).read(e, (CLIP,))[CLIP].shape[0] == 4
                                               for e in entries)
    again = extract(tiny_videos, out, cfg)
    assert (again.extracted, again.skipped) == (0, first.total)
