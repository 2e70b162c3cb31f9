"""fgm-predict with a region checkpoint: the region slots are read and give the trained model's logits.

The logits test replaces the extraction step by a copy of the store's entries (fake but well-formed
boxes), so everything after it is predict's own path and the logits can be compared exactly; the
last test runs the whole path for real: fgm-extract --detector hog, training, then predict
extracting the new video with the checkpoint's detector.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fgm_common.datasets import get_dataset
from fgm_common.store import FeatureStore, StoreError
from train.experiments.experiment import Experiment, run_experiment
from train.experiments.variants import get_variant
from train.fitting.config import TrainConfig
from train.fitting.data import load_features
from train.fitting.splits import SplitSpec
from train.fitting.trainer import new_model, predict_logits
from train.inference import predict
from train.inference.options import PredictOptions
from train.parts.regions import REGION_KEYS

OPTIONS = PredictOptions(top_k=2, device="cpu", quiet=True)


@pytest.fixture(scope="module")
def region_ckpt(box_store, tmp_path_factory):
    """flow_regions_only trained for one epoch on the store with boxes: its checkpoint."""
    out = tmp_path_factory.mktemp("region_run")
    exp = Experiment(store=box_store, train=TrainConfig(epochs=1, hidden=32, motion_dim=32, device="cpu"),
                     split=SplitSpec(val_fraction=0.5), variants=("flow_regions_only",), out=out, quiet=True)
    run_experiment(exp)
    return next(out.rglob("checkpoint.pt"))


def copying_extract(src_url: str, read: list):
    """A stand-in for predict._extract: the videos' entries of `src_url`, copied into the new store."""
    def fake(items, config, url, options):
        src = FeatureStore.open(src_url)
        store = FeatureStore.create_or_open(url, config, {"note": "test: copied entries"})
        store.record_weights(src.clip_identity)
        for it in items:
            store.write_entry(it.key, src.read(it.key), {})
            read.append(it.key)
        return SimpleNamespace(failed=[])
    return fake


def test_a_region_checkpoint_predicts_the_trained_models_logits(region_ckpt, box_store, monkeypatch):
    fs = load_features(FeatureStore.open(box_store), get_dataset("folder"), regions=True)
    videos = fs.keys[::2]  # one per class
    read = []
    monkeypatch.setattr(predict, "_extract", copying_extract(box_store, read))
    seen = {}
    real = predict.batched_logits
    monkeypatch.setattr(predict, "batched_logits", lambda m, t, *a: seen.update(t) or real(m, t, *a))
    report = predict.predict_videos(region_ckpt, videos, OPTIONS)
    assert read == videos and all(v.ok for v in report.videos)
    assert set(REGION_KEYS) <= set(seen)  # the model was given the region slots

    ckpt = torch.load(region_ckpt, weights_only=True)
    model = new_model(fs, TrainConfig(**ckpt["train_config"]), get_variant(ckpt["variant"]))
    model.load_checkpoint_state(ckpt["model"])
    assert model.cfg.needs_regions
    want = predict_logits(model, fs, np.array([fs.keys.index(v) for v in videos]), torch.device("cpu"))
    np.testing.assert_allclose(np.array([v.logits for v in report.videos]), want, atol=1e-5)


def test_a_region_checkpoint_without_boxes_in_its_config_is_refused_before_extracting(region_ckpt, tmp_path,
                                                                                       monkeypatch):
    ckpt = torch.load(region_ckpt, weights_only=True)
    ckpt["extract_config"] = {k: v for k, v in ckpt["extract_config"].items() if not k.startswith("detector")}
    forged = tmp_path / "forged.pt"
    torch.save(ckpt, forged)
    monkeypatch.setattr(predict, "_extract", lambda *a: pytest.fail("extracted before refusing"))
    with pytest.raises(StoreError, match="--detector hog"):
        predict.predict_videos(forged, ["a.mp4"], OPTIONS)


def test_extract_with_hog_train_and_predict_end_to_end(tiny_videos, tmp_path, run_extract_cli):
    store = tmp_path / "hog.zarr"
    assert run_extract_cli(tiny_videos, store, "--detector", "hog", frames=4).exit_code == 0
    out = tmp_path / "run"
    run_experiment(Experiment(store=str(store), train=TrainConfig(epochs=1, hidden=32, motion_dim=32, device="cpu"),
                              split=SplitSpec(val_fraction=0.5), variants=("flow_regions_only",), out=out, quiet=True))
    video = sorted(tiny_videos.rglob("*.mp4"))[0]
    report = predict.predict_videos(next(out.rglob("checkpoint.pt")), [video], OPTIONS)
    assert [v.ok for v in report.videos] == [True] and len(report.videos[0].logits) == len(report.classes)
