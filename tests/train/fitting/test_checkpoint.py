"""train.fitting.checkpoint: a file that is not a checkpoint is a clear error; a checkpoint rebuilds the model it saved."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from train.fitting.checkpoint import CheckpointError, load_checkpoint, rebuild_model, save_checkpoint
from train.parts.model import build_model
from train.parts.model_config import ModelConfig


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"model": {}}, path)
    with pytest.raises(CheckpointError, match="not an fgm-train checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")


def test_rebuild_without_clip_parts_matches_original():
    torch.manual_seed(0)
    cfg = ModelConfig(clip_dim=8, flow_grid=4, flow_hist_dim=6, n_classes=3, n_frames=5, n_flow=4, hidden=8, motion_dim=8)
    class_text, scene_text = torch.randn(3, 8), torch.randn(4, 8)
    model = build_model(cfg, class_text, scene_text).eval()
    ckpt = {"model_config": cfg.to_dict(), "model": model.state_dict(), "class_text": class_text,
            "scene_text": scene_text, "classes": ["a", "b", "c"], "class_sentences": {}}
    batch = {"clip": torch.randn(2, 5, 8), "flow": torch.randn(2, 4, 2, 4, 4), "flow_hist": torch.randn(2, 4, 6)}
    with torch.no_grad():
        np.testing.assert_allclose(rebuild_model(ckpt)(batch)["logits"], model(batch)["logits"], atol=1e-6)


def test_save_is_atomic_and_stamps_the_format(tmp_path):
    path = tmp_path / "run" / "checkpoint.pt"
    save_checkpoint({"model": {"w": torch.ones(2)}}, path)
    assert not path.with_suffix(".tmp").exists()
    ckpt = load_checkpoint(path, required=("model",))
    assert ckpt["format"] == 1 and torch.equal(ckpt["model"]["w"], torch.ones(2))
    torch.save({"format": 99, "model": {}}, path)
    with pytest.raises(CheckpointError, match="format 99"):
        load_checkpoint(path, required=("model",))
