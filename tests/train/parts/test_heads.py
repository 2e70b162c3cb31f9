"""Stream heads, stream dropout, the head blend and its inner split: known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from train.fitting.blend import (BLENDS, INNER_FOLDS, MIN_INNER_VIDEOS, BlendContext, fit_blend, fit_stack, inner_folds,
                                 stack_check)
from train.parts.heads import HEADS, HeadStacker, blend_logits, stream_dropout
from train.fitting.splits import Fold


# ---- stream dropout --------------------------------------------------------------------------------
def test_stream_dropout_hides_one_stream_at_most_at_the_asked_rate():
    n = 4000
    v, m = torch.ones(n, 3, 5), torch.ones(n, 3, 7)
    gen = torch.Generator().manual_seed(0)
    dv, dm = stream_dropout(v, m, 0.25, generator=gen)
    v_hidden, m_hidden = (dv.sum(dim=(1, 2)) == 0), (dm.sum(dim=(1, 2)) == 0)
    assert not (v_hidden & m_hidden).any()  # never both
    assert abs(v_hidden.float().mean().item() - 0.25) < 0.03 and abs(m_hidden.float().mean().item() - 0.25) < 0.03
    kept = ~v_hidden  # a stream is hidden whole or kept whole
    assert torch.equal(dv[kept], v[kept]) and torch.equal(dm[~m_hidden], m[~m_hidden])


def test_stream_dropout_zero_is_the_identity_and_more_than_half_is_refused():
    v, m = torch.randn(4, 3, 5), torch.randn(4, 3, 7)
    dv, dm = stream_dropout(v, m, 0.0)
    assert dv is v and dm is m
    with pytest.raises(ValueError, match="0.5"):
        stream_dropout(v, m, 0.6)


# ---- blend of head logits --------------------------------------------------------------------------
def _heads(b: int = 4, c: int = 3) -> dict[str, torch.Tensor]:
    return {name: torch.randn(b, c) for name in HEADS}


def test_one_hot_fused_blend_returns_the_fused_logits_unchanged():
    heads = _heads()
    assert blend_logits(heads, torch.tensor([1.0, 0.0, 0.0])) is heads["fused"]


def test_blend_is_the_weighted_sum_of_log_probabilities_and_skips_zero_weights():
    heads = _heads()
    heads["visual"][:, 1] = float("-inf")  # a masked head with weight 0 must not make NaN
    z = blend_logits(heads, torch.tensor([0.5, 2.0, 0.0, 0.0]))
    want = 0.5 * torch.log_softmax(heads["fused"], -1) + 2.0 * torch.log_softmax(heads["motion"], -1)
    assert torch.allclose(z, want) and torch.isfinite(z).all()
    with pytest.raises(ValueError, match="every blend weight is 0"):
        blend_logits(heads, torch.zeros(len(HEADS)))


# ---- fitting the blend -----------------------------------------------------------------------------
def _blend(heads: dict, w: np.ndarray) -> np.ndarray:
    """sum_k w_k log_softmax(z_k) over the heads given, in numpy: what blend_logits computes."""
    return sum(wk * torch.log_softmax(torch.as_tensor(heads[h]), -1).numpy() for h, wk in zip(HEADS, w) if h in heads)


def test_a_pure_noise_head_gets_a_share_near_zero():
    rng = np.random.default_rng(0)
    n, c = 300, 4
    y = rng.integers(0, c, n)
    heads = {"fused": rng.normal(0, 4, (n, c)),  # confident and unrelated to the labels
             "motion": 4 * np.eye(c)[y] + rng.normal(0, 1, (n, c)),  # right about 95 % of the time
             "visual": rng.normal(0, 4, (n, c))}
    w = fit_blend(heads, y)
    share = w / w.sum()
    assert share[HEADS.index("motion")] > 0.85
    assert share[HEADS.index("fused")] < 0.1 and share[HEADS.index("visual")] < 0.1
    blended = _blend(heads, w)
    assert (blended.argmax(1) == y).mean() >= (heads["motion"].argmax(1) == y).mean() - 0.01  # noise costs ~nothing


def test_complementary_heads_are_blended_to_beat_each_alone():
    # 6 classes = 3 looks x 2 motions: the motion head knows the motion only, the visual head the look only
    look, motion = np.repeat(np.arange(3), 20), np.tile(np.arange(2), 30)
    y = 2 * look + motion
    by_motion = np.where(np.arange(6)[None, :] % 2 == motion[:, None], 3.0, 0.0)  # (60, 6)
    by_look = np.where(np.arange(6)[None, :] // 2 == look[:, None], 3.0, 0.0)
    rng = np.random.default_rng(1)
    heads = {"fused": rng.normal(0, 1, (60, 6)), "motion": by_motion, "visual": by_look}
    w = fit_blend(heads, y)
    assert w[HEADS.index("motion")] > 0.5 and w[HEADS.index("visual")] > 0.5
    z = _blend(heads, w)
    assert (z.argmax(1) == y).mean() == 1.0  # each alone is right at most 1/3 or 1/2 of the time


def test_missing_heads_get_weight_zero():
    y = np.array([0, 1, 0, 1])
    w = fit_blend({"fused": np.eye(2)[y] * 2.0}, y)
    assert w[0] > 0 and w[1] == w[2] == 0


# ---- the inner split ---------------------------------------------------------------------------------
def test_inner_folds_hold_out_each_training_video_once_and_stratify():
    labels = np.repeat(np.arange(3), 8)
    fold = Fold("f", np.flatnonzero(np.arange(24) % 4 != 0), np.arange(0, 24, 4))
    inner = inner_folds(fold, labels, np.array([""] * 24), seed=0)
    held = np.concatenate([f.val for f in inner])
    assert len(inner) == INNER_FOLDS and sorted(held) == sorted(fold.train)  # each training video once
    assert not set(held) & set(fold.val)  # the validation fold is never touched
    for f in inner:
        assert not set(f.train) & set(f.val) and set(f.train) | set(f.val) == set(fold.train)
        assert set(labels[f.val]) == {0, 1, 2}  # stratified: every class held out in every inner fold


def test_inner_folds_hold_out_whole_groups_when_the_videos_have_them():
    labels = np.tile(np.arange(3), 8)
    groups = np.repeat(np.array(["p1", "p2", "p3", "p4"]), 6)
    fold = Fold("f", np.arange(18), np.arange(18, 24))  # p4 is the outer validation person
    inner = inner_folds(fold, labels, groups, seed=0)
    assert len(inner) == 3 and sorted(np.concatenate([f.val for f in inner])) == list(range(18))
    for f in inner:
        assert not set(groups[f.train]) & set(groups[f.val]) and len(set(groups[f.val])) == 1
    two = inner_folds(Fold("g", np.arange(12), np.arange(12, 24)), labels, groups, seed=0)
    assert len(two) == 2  # two training persons: two folds, each holding one out


@pytest.mark.parametrize("blend", ["inner", "stack"])
def test_too_small_a_fold_falls_back_to_the_fused_head(blend):
    fold = Fold("f", np.arange(MIN_INNER_VIDEOS - 1), np.array([9]))

    def never(*_):
        raise AssertionError("no inner model may be trained")

    ctx = BlendContext(np.zeros(10, int), np.array([""] * 10), fold, 0, never, None)
    found = BLENDS[blend](ctx)
    assert np.array_equal(found.weights, np.eye(len(HEADS))[0]) and found.stack is None


# ---- the stacked blend -------------------------------------------------------------------------------
def _factored_heads(n: int, rng) -> tuple[dict, np.ndarray]:
    """6 classes = 3 looks x 2 motions. Each stream head knows its factor and is more confident still about a made-up other."""
    look, motion = rng.integers(0, 3, n), rng.integers(0, 2, n)
    y = 2 * look + motion
    classes = np.arange(6)
    guess_motion, guess_look = rng.integers(0, 2, n), rng.integers(0, 3, n)  # what each head makes up
    visual = 2.0 * (classes[None] // 2 == look[:, None]) + 3.0 * (classes[None] % 2 == guess_motion[:, None])
    moving = 2.0 * (classes[None] % 2 == motion[:, None]) + 3.0 * (classes[None] // 2 == guess_look[:, None])
    fused = rng.normal(0, 1, (n, 6))
    return {"fused": fused, "motion": moving, "visual": visual}, y


def _stacked(heads: dict, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    stacker = HeadStacker(len(bias))
    stacker.set(torch.as_tensor(weight), torch.as_tensor(bias))
    return stacker({k: torch.as_tensor(v, dtype=torch.float32) for k, v in heads.items()}).numpy()


def test_a_stacker_of_scalar_weights_is_the_scalar_blend():
    heads = {k: v.float() for k, v in _heads(5, 4).items()}
    w = torch.tensor([0.5, 2.0, 1.0, 0.0])
    weight = torch.stack([wk * torch.eye(4) for wk in w], dim=1)  # (C, K, C)
    assert np.allclose(_stacked(heads, weight.numpy(), np.zeros(4)), blend_logits(heads, w).numpy(), atol=1e-5)


def test_the_stacker_learns_which_factor_each_head_knows():
    rng = np.random.default_rng(0)
    held, y = _factored_heads(150, rng)  # the held-out training predictions
    test, y_test = _factored_heads(600, rng)
    w = fit_blend(held, y)
    scalar = (_blend(test, w).argmax(1) == y_test).mean()
    stacked = (_stacked(test, *fit_stack(held, y, w)).argmax(1) == y_test).mean()
    assert stacked >= 0.95 and stacked > scalar + 0.15  # the made-up halves cancel only when mapped per class


def test_with_little_evidence_the_stacker_predicts_what_the_scalar_blend_does():
    rng = np.random.default_rng(3)
    n, c = 12, 4  # a handful of held-out videos: a noise head and a good one
    y = rng.integers(0, c, n)
    held = {"fused": rng.normal(0, 4, (n, c)), "motion": 4 * np.eye(c)[y] + rng.normal(0, 1, (n, c))}
    w = fit_blend(held, y)
    y_new = rng.integers(0, c, 400)
    new = {"fused": rng.normal(0, 4, (400, c)), "motion": 4 * np.eye(c)[y_new] + rng.normal(0, 1, (400, c))}
    agree = (_stacked(new, *fit_stack(held, y, w)).argmax(1) == _blend(new, w).argmax(1)).mean()
    assert agree >= 0.95


def test_the_stack_check_keeps_the_stacker_where_it_predicts_unseen_folds_better():
    held, y = _factored_heads(150, np.random.default_rng(0))
    scalar, stacked = stack_check(held, y, np.arange(150) % 3)
    assert stacked < scalar / 2


def test_the_stack_check_keeps_the_scalar_blend_where_a_stacker_only_fits_noise():
    # ud810-sized: 9 classes, 6 held-out videos each over 3 inner folds, one good head and three noise heads
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(9), 6)
    noise = {name: rng.normal(0, 4, (len(y), 9)) for name in ("fused", "visual", "probe")}
    held = {**noise, "motion": 4 * np.eye(9)[y] + rng.normal(0, 1.5, (len(y), 9))}
    scalar, stacked = stack_check(held, y, np.tile(np.repeat(np.arange(3), 2), 9))
    assert scalar < stacked


def test_the_stack_falls_back_to_scalar_weights_when_a_class_was_never_held_out():
    labels = np.repeat(np.arange(3), 4)
    fold = Fold("f", np.arange(8), np.arange(8, 12))  # class 2 only in validation

    def fit_heads(inner, _ckpt):
        z = 3.0 * np.eye(3)[labels[inner.val]]
        return {"fused": z, "motion": z, "visual": z}

    found = BLENDS["stack"](BlendContext(labels, np.array([""] * 12), fold, 0, fit_heads, Path("unused")))
    assert found.stack is None and found.weights.sum() > 0


def test_a_stacker_missing_a_head_it_was_fitted_with_refuses():
    weight = np.zeros((3, len(HEADS), 3), dtype=np.float32)
    weight[:, HEADS.index("probe")] = np.eye(3)
    with pytest.raises(ValueError, match="probe"):
        _stacked({"fused": np.zeros((2, 3))}, weight, np.zeros(3))


# ---- stream isolation --------------------------------------------------------------------------------
def test_isolated_streams_are_trained_by_their_own_heads_only():
    from train.fitting.losses import context_loss
    from train.parts.model import build_model
    from train.parts.model_config import ModelConfig

    cfg = ModelConfig(clip_dim=16, flow_grid=16, flow_hist_dim=16, n_classes=3, n_frames=5, n_flow=5, hidden=16,
                      motion_dim=8, adapter_bottleneck=4, aligner="interp", stream_dropout=0.0)
    model = build_model(cfg, torch.randn(3, 16), torch.randn(4, 16)).train()
    batch = {"clip": torch.randn(4, 5, 16), "flow": torch.randn(4, 5, 2, 16, 16), "flow_hist": torch.randn(4, 5, 16)}
    label = torch.tensor([0, 1, 2, 0])

    def grads(module, loss) -> float:
        model.zero_grad(set_to_none=True)
        loss(model(batch)).backward()
        return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)

    def ce(head):
        return lambda out: torch.nn.functional.cross_entropy(out["heads"][head], label)

    def context_prior(out):
        return context_loss(out["scene_p"], label, out["scene_q"])

    assert grads(model.motion, ce("fused")) == 0.0  # the fused head learns on top of the motion encoder
    assert grads(model.motion, ce("motion")) > 0.0  # the motion head is what trains it
    # the visual stream (the adapter): not through v, nor through the context features the fusion reads
    assert grads(model.adapter, ce("fused")) == 0.0
    assert grads(model.adapter, ce("visual")) > 0.0 and grads(model.adapter, context_prior) > 0.0
    assert grads(model.context, ce("fused")) > 0.0  # the context encoder's own map still learns from it
