"""Trainer over a tiny store: exact resume after a kill, checkpoint contents, refusals, no validation leak, every variant."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fgm_common.store import CLIP
from train.parts.clip_parts import ClipParts, load_store_clip
from train.parts.probe import pooled
from train.fitting.losses import PriorState, compute_losses
from train.parts.model_config import ModelConfig
from train.fitting.splits import Fold, SplitSpec, make_folds
from train.fitting.config import TrainConfig
from train.fitting.trainer import Trainer, new_model, predict_logits
from train.experiments.variants import get_variant, model_variants

# small widths keep a step fast; batch 2 over 3 training videos gives 2 steps per epoch (one of size 1)
SMALL = dict(hidden=32, motion_dim=32, batch_size=2, device="cpu")


class Killed(Exception):
    """Stands in for a kill between epochs."""


@pytest.fixture(scope="module")
def parts(store, fs):
    """The store's own CLIP for token adapters and learnable text context."""
    return ClipParts(load_store_clip(store), fs.class_sentences, fs.classes, has_tokens=True)


@pytest.fixture(scope="module")
def fold(fs) -> Fold:
    return make_folds(SplitSpec("stratified", val_fraction=0.5), fs.labels)[0]  # 3 train, 3 val


def trainer(fs, fold, parts, path, variant="full", **kw) -> Trainer:
    cfg = TrainConfig(**{**SMALL, "variant": variant, **kw})
    return Trainer(fs, fold, cfg, new_model(fs, cfg, get_variant(variant), parts), path)


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ---- resume ------------------------------------------------------------------------------------
def test_resume_after_a_kill_reproduces_the_uninterrupted_run(fs, fold, parts, tmp_path):
    epochs, kill_after = 3, 1
    whole = trainer(fs, fold, parts, tmp_path / "whole.pt", epochs=epochs).fit()
    # the full model with everything on: DTW, k-means clusters, context, token tail, text context
    mcfg = whole.model.cfg
    assert (mcfg.aligner, mcfg.use_context) == ("dtw", True)
    assert min(mcfg.w_align, mcfg.w_motion, mcfg.w_context, mcfg.w_cluster) > 0
    assert whole.model.token_tail is not None and whole.model.prompt_learner is not None
    assert len(whole.history) == epochs and any(h["cluster"] > 0 for h in whole.history[1:])
    assert int((whole.state.cluster_of >= 0).sum()) == len(fold.train)  # k-means ran over every training video

    def kill(epoch, record):
        if epoch == kill_after:
            raise Killed

    path = tmp_path / "killed.pt"
    with pytest.raises(Killed):
        trainer(fs, fold, parts, path, epochs=epochs).fit(on_epoch_end=kill)
    partial = torch.load(path, weights_only=True)
    assert (partial["epoch"], partial["done"]) == (kill_after, False)

    epochs_seen = []
    resumed = trainer(fs, fold, parts, path, epochs=epochs).fit(
        resume=True, on_epoch_end=lambda e, r: epochs_seen.append(e))
    assert epochs_seen == list(range(kill_after + 1, epochs + 1))  # only the missing epochs ran
    assert resumed.history == whole.history  # exact floats: every loss term of every epoch
    assert_same_state(resumed.model.state_dict(), whole.model.state_dict())
    assert_same_state(resumed.state.state_dict(), whole.state.state_dict())
    assert resumed.state.cluster_of.numel() > 0 and bool(resumed.state.seen.all())

    # a finished checkpoint is not trained again
    again = trainer(fs, fold, parts, path, epochs=epochs)
    ran = again.fit(resume=True, on_epoch_end=lambda e, r: pytest.fail("a finished run trained again"))
    assert_same_state(ran.model.state_dict(), whole.model.state_dict())


# ---- checkpoint ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished(fs, fold, parts, tmp_path_factory):
    """A one-epoch run of the full variant and its checkpoint path."""
    path = tmp_path_factory.mktemp("ckpt") / "fold" / "checkpoint.pt"
    t = trainer(fs, fold, parts, path, epochs=1)
    t.extra = {"classes": fs.classes, "variant": "full"}
    return t, t.fit(), path


def test_checkpoint_loads_safely_and_holds_both_configs(finished, fs, fold, parts):
    t, run, path = finished
    assert run.checkpoint == path and path.exists() and not path.with_suffix(".tmp").exists()
    ckpt = torch.load(path, weights_only=True)  # plain tensors and containers only
    assert (ckpt["format"], ckpt["epoch"], ckpt["done"]) == (1, 1, True)
    assert ckpt["train_config"] == t.cfg.to_dict()
    assert ckpt["model_config"] == run.model.cfg.to_dict()
    assert TrainConfig(**ckpt["train_config"]) == t.cfg
    assert ckpt["fold"] == {"name": fold.name, "train": fold.train.tolist(), "val": fold.val.tolist()}
    assert ckpt["classes"] == fs.classes and ckpt["variant"] == "full"  # extra travels along
    assert ckpt["history"] == run.history

    # a model rebuilt from the checkpoint alone predicts what the trained one does
    mcfg = ModelConfig.from_dict(ckpt["model_config"])
    cfg = TrainConfig(**ckpt["train_config"])
    rebuilt = new_model(fs, cfg, get_variant("full"), parts)
    assert rebuilt.cfg == mcfg
    rebuilt.load_checkpoint_state(ckpt["model"])
    cpu = torch.device("cpu")
    expected = predict_logits(run.model, fs, fold.val, cpu)
    assert expected.shape == (len(fold.val), len(fs.classes))
    assert np.array_equal(predict_logits(rebuilt, fs, fold.val, cpu), expected)


def test_the_probe_is_fitted_once_trained_on_the_training_videos_alone(finished, fs, fold, parts):
    t, run, path = finished
    probe = run.model.probe
    assert probe.fitted
    assert torch.allclose(probe.mean, pooled(fs.tensors[CLIP][torch.as_tensor(fold.train)]).mean(0))
    rebuilt = new_model(fs, t.cfg, get_variant("full"), parts)
    assert not rebuilt.probe.fitted
    rebuilt.load_checkpoint_state(torch.load(path, weights_only=True)["model"])  # the checkpoint carries the fit
    assert rebuilt.probe.fitted and torch.equal(rebuilt.probe.weight, probe.weight)


@pytest.mark.parametrize("change", [{"lr": 5e-4}, {"epochs": 2}, {"hidden": 16}])
def test_resume_with_other_settings_is_refused(finished, fs, fold, parts, change):
    _, _, path = finished
    with pytest.raises(ValueError, match="other settings"):
        trainer(fs, fold, parts, path, **{"epochs": 1, **change}).fit(resume=True)


def test_resume_on_another_split_is_refused(finished, fs, fold, parts):
    _, _, path = finished
    other = Fold(fold.name, fold.val, fold.train)
    with pytest.raises(ValueError, match="another split"):
        trainer(fs, other, parts, path, epochs=1).fit(resume=True)


# ---- no validation leak ----------------------------------------------------------------------------
def test_validation_videos_are_never_read_during_fit(fs, fold, tmp_path, monkeypatch):
    seen = []
    batch = fs.batch

    def recording(idx, device=None):
        seen.extend(torch.as_tensor(idx).tolist())
        return batch(idx, device)

    monkeypatch.setattr(fs, "batch", recording)
    run = trainer(fs, fold, None, tmp_path / "c.pt", epochs=3).fit()
    assert run.model.cfg.w_cluster > 0 and run.state.cluster_of.numel()  # k-means ran, on training h only
    assert set(seen) == set(fold.train.tolist())  # every training video, nothing else
    assert not set(seen) & set(fold.val.tolist())


def test_a_monitor_is_recorded_and_changes_nothing(fs, fold, tmp_path):
    # a meddling monitor: it draws from the global RNG (which dropout draws from in the next epoch)
    # and leaves the model in eval mode; the Trainer must still train exactly as without it
    seen_training = []

    def meddling(model) -> dict[str, float]:
        seen_training.append(model.training)
        model.eval()
        torch.rand(1000)
        return {"val_acc_fused": 0.5}

    plain = trainer(fs, fold, None, tmp_path / "plain.pt", epochs=3).fit()
    watched = trainer(fs, fold, None, tmp_path / "watched.pt", epochs=3).fit(monitor=meddling)
    assert seen_training == [True, True, True]  # after each epoch's training steps
    assert [r.pop("val_acc_fused") for r in watched.history] == [0.5, 0.5, 0.5]
    assert watched.history == plain.history  # exact floats: every loss term of every epoch
    assert_same_state(watched.model.state_dict(), plain.model.state_dict())
    assert watched.model.training == plain.model.training


# ---- every variant -------------------------------------------------------------------------------
def with_extra_arrays(fs, names: tuple[str, ...]):
    """fs plus random (N, T, 40) stand-ins for extra backbone arrays (no_clip's resnet50) the tiny store lacks."""
    if not names:
        return fs
    n, t = fs.tensors["clip"].shape[:2]
    return dataclasses.replace(fs, tensors={**fs.tensors, **{k: torch.randn(n, t, 40) for k in names}}, extra=names)


# model variants only: the non-neural baselines (zero_shot, linear_probe) are exercised in test_baselines.py
@pytest.mark.parametrize("name", sorted(model_variants()))
def test_every_variant_runs_forward_and_backward(name, fs, fold, parts, request):
    variant = get_variant(name)
    # a region variant reads tracked boxes: the same videos from a store with boxes (conftest box_fs)
    fs = request.getfixturevalue("box_fs") if variant.needs_regions else fs
    fs = with_extra_arrays(fs, variant.extra_arrays)
    cfg = TrainConfig(**SMALL, variant=name)
    model = new_model(fs, cfg, variant, parts).train()
    mcfg = model.cfg
    for key, value in variant.model.items():
        assert getattr(mcfg, key) == value  # the variant's overrides reached the model
    # clip_parts builds the CLIP-side parts exactly when the variant asks for them and the store allows
    assert (model.token_tail is not None) == (variant.token_adapters and mcfg.use_adapter)
    assert (model.prompt_learner is not None) == (variant.prompt_ctx > 0 and mcfg.classifier == "text")
    state = PriorState.from_config(mcfg).train()
    batch = fs.batch(fold.train)
    out = model(batch)
    assert out["logits"].shape == (len(fold.train), len(fs.classes))
    losses = compute_losses(out, batch, state, mcfg)
    assert torch.isfinite(losses["total"])
    losses["total"].backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable
    grads = {n: p.grad for n, p in trainable.items() if p.grad is not None}
    assert all(torch.isfinite(g).all() for g in grads.values()), [n for n, g in grads.items() if not torch.isfinite(g).all()]
    assert any(g.abs().sum() > 0 for g in grads.values())
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert all(dict(model.named_parameters())[n].grad is None for n in frozen)  # frozen CLIP stays frozen
    if model.token_tail is not None:
        assert any(n.startswith("token_tail") and g.abs().sum() > 0 for n, g in grads.items())


def test_new_model_is_seeded(fs):
    cfg = TrainConfig(**SMALL, seed=3)
    a = new_model(fs, cfg, get_variant("no_adapter"))
    b = new_model(fs, cfg, get_variant("no_adapter"))
    c = new_model(fs, dataclasses.replace(cfg, seed=4), get_variant("no_adapter"))
    assert_same_state(a.state_dict(), b.state_dict())
    assert any(not torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))


def test_zero_shot_protocol_masks_held_out_classes_in_the_loss(fs, fold, tmp_path, monkeypatch):
    """With train_classes, the loss only ever sees those classes' logits (the others are -inf)."""
    import train.fitting.trainer as T

    seen_logits = []
    real = T.compute_losses

    def spy(out, batch, state, cfg):
        seen_logits.append(out["logits"].detach().clone())
        return real(out, batch, state, cfg)

    monkeypatch.setattr(T, "compute_losses", spy)
    cfg = TrainConfig(**{**SMALL, "epochs": 1})
    keep = [c for c in range(len(fs.classes)) if c != 0]
    train_idx = fold.train[np.isin(fs.labels[fold.train], keep)]
    t = Trainer(fs, Fold("z", train_idx, fold.val), cfg, new_model(fs, cfg, get_variant("no_adapter"), None),
                tmp_path / "z.pt", train_classes=keep)
    t.fit()
    logits = torch.cat(seen_logits)
    assert torch.isinf(logits[:, 0]).all() and torch.isfinite(logits[:, keep]).all()
    assert not t.model.probe.fitted  # a probe cannot score the held-out classes: it stays out
