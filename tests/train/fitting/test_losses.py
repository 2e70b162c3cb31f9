"""Loss terms: sign, known zeros, PriorState updates and checkpointing, weights and the total."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from train.fitting import losses as L
from train.fitting.losses import PriorState, align_loss, ce_loss, cluster_loss, compute_losses, context_loss, motion_loss
from train.parts.model_config import ModelConfig

B, T, DM, C, K, H = 4, 5, 8, 3, 4, 8


def make_cfg(**kw) -> ModelConfig:
    return ModelConfig(clip_dim=16, flow_grid=16, flow_hist_dim=16, n_classes=C, n_frames=T, n_flow=T - 1,
                       motion_dim=DM, hidden=H, **kw)


def make_out(label: torch.Tensor) -> dict:
    return {
        "logits": torch.randn(B, C, requires_grad=True),
        "v_proj": torch.randn(B, T, DM, requires_grad=True),
        "m_aligned": torch.randn(B, T, DM, requires_grad=True),
        "scene_p": torch.softmax(torch.randn(B, T, K), -1).requires_grad_(),
        "scene_q": torch.softmax(torch.randn(C, K), -1),
        "h": torch.randn(B, H, requires_grad=True),
    }


def test_ce_lower_for_correct_logits():
    label = torch.tensor([0, 1, 2, 1])
    right = F.one_hot(label, C).float() * 5
    wrong = F.one_hot((label + 1) % C, C).float() * 5
    assert ce_loss(right, label) < ce_loss(wrong, label)
    assert ce_loss(wrong, label) >= 0


def test_align_is_contrastive_low_when_paired_high_when_collapsed_or_swapped():
    m = torch.randn(B, T, DM)
    paired = align_loss(m, m)
    assert align_loss(3 * m, m) == pytest.approx(float(paired), abs=1e-5)  # direction only: scaling cannot win
    # the collapse Eq. 2 alone would reward: every video's features the same -> chance level, log(B)
    same = torch.randn(1, T, DM).expand(B, T, DM)
    assert align_loss(same, same) == pytest.approx(math.log(B), abs=1e-4)
    assert paired < math.log(B) - 0.5
    # motion matched to the wrong videos costs more than to the right ones
    assert align_loss(m, m.roll(1, dims=0)) > paired + 1.0
    assert align_loss(m[:1], m[:1]) == 0  # no negatives in a batch of one


def test_motion_prior_first_batch_then_ema_and_unseen_classes():
    state = PriorState(C, T, DM).train()
    label = torch.tensor([0, 1, 0, 1])
    m1 = torch.randn(B, T, DM)
    u1 = F.normalize(m1, dim=-1)
    state.update({"m_aligned": m1}, {"label": label})
    torch.testing.assert_close(state.m_hat[0], u1[[0, 2]].mean(0))  # the mean of unit features
    assert state.seen.tolist() == [True, True, False]
    # features pointing at their class mean cost nothing, whatever their length
    at_mean = 2.5 * state.m_hat[label]
    assert motion_loss(at_mean, label, state).abs() < 1e-6
    assert 0 < motion_loss(m1, label, state) <= 4
    # class 2 has no mean yet: it contributes nothing
    assert motion_loss(torch.randn(B, T, DM), torch.full((B,), 2), state) == 0
    m2 = torch.randn(B, T, DM)
    u2 = F.normalize(m2, dim=-1)
    state.update({"m_aligned": m2}, {"label": label})
    torch.testing.assert_close(state.m_hat[1], 0.9 * u1[[1, 3]].mean(0) + 0.1 * u2[[1, 3]].mean(0))


def test_motion_prior_frozen_in_eval_mode():
    state = PriorState(C, T, DM).eval()
    state.update({"m_aligned": torch.randn(B, T, DM)}, {"label": torch.zeros(B, dtype=torch.long)})
    assert not state.seen.any() and state.m_hat.abs().sum() == 0


def test_context_zero_when_scenes_match_prior():
    q = torch.softmax(torch.randn(C, K), -1)
    label = torch.tensor([2, 0, 1, 2])
    p = q[label][:, None].expand(B, T, K)
    assert context_loss(p, label, q).abs() < 1e-6
    assert context_loss(torch.softmax(torch.randn(B, T, K), -1), label, q) > 0


def test_cluster_zero_for_tight_separated_clusters_positive_otherwise():
    e = torch.eye(H)
    h = torch.stack([e[0], 2 * e[0], e[1], e[1]])  # same cluster coincides after normalising
    clusters = torch.tensor([0, 0, 1, 1])
    assert cluster_loss(h, clusters, margin=1.0).abs() < 1e-6  # squared distance between clusters = 2
    assert cluster_loss(h, clusters, margin=3.0) > 0  # clusters closer than the margin
    spread = torch.stack([e[0], e[2], e[1], e[1]])
    assert cluster_loss(spread, clusters, margin=1.0) > 0  # cluster 0 is not tight
    assert cluster_loss(h, torch.full((4,), -1)) == 0  # unknown clusters: no pairs


def test_all_terms_non_negative_on_random_inputs():
    label = torch.tensor([0, 1, 2, 1])
    state = PriorState(C, T, DM).train()
    state.update({"m_aligned": torch.randn(B, T, DM)}, {"label": label})
    state.set_clusters({0: 0, 1: 1, 2: 0, 3: 1})
    out = make_out(label)
    batch = {"label": label, "index": torch.arange(B)}
    losses = compute_losses(out, batch, state, make_cfg())
    for name in ("ce", "align", "motion", "context", "cluster"):
        assert losses[name] > 0, name  # > 0 here, so also >= 0


def test_total_is_the_weighted_sum_and_backpropagates():
    label = torch.tensor([0, 1, 2, 1])
    state = PriorState(C, T, DM).train()
    state.update({"m_aligned": torch.randn(B, T, DM)}, {"label": label})
    state.set_clusters(torch.tensor([0, 1, 0, 1]))
    cfg = make_cfg(w_align=0.3, w_motion=0.2, w_context=0.7, w_cluster=0.5)
    out = make_out(label)
    losses = compute_losses(out, {"label": label, "index": torch.arange(B)}, state, cfg)
    expected = (losses["ce"] + 0.3 * losses["align"] + 0.2 * losses["motion"]
                + 0.7 * losses["context"] + 0.5 * losses["cluster"])
    torch.testing.assert_close(losses["total"], expected)
    losses["total"].backward()
    assert all(out[k].grad is not None for k in ("logits", "v_proj", "m_aligned", "scene_p", "h"))


def test_zero_weight_skips_the_term(monkeypatch):
    def boom(*args):
        raise AssertionError("a term of weight 0 was computed")

    for name in ("align", "motion", "context", "cluster"):
        monkeypatch.setitem(L.LOSS_TERMS, name, (L.LOSS_TERMS[name][0], boom))
    cfg = make_cfg(w_align=0.0, w_motion=0.0, w_context=0.0, w_cluster=0.0)
    label = torch.tensor([0, 1, 2, 1])
    out = make_out(label)
    losses = compute_losses(out, {"label": label}, PriorState(C, T, DM), cfg)
    torch.testing.assert_close(losses["total"], losses["ce"])
    assert all(losses[n] == 0 for n in ("align", "motion", "context", "cluster"))


def test_cluster_term_zero_before_first_refresh_then_active():
    label = torch.tensor([0, 1, 2, 1])
    state = PriorState(C, T, DM)
    out = make_out(label)
    cfg = make_cfg()
    assert compute_losses(out, {"label": label}, state, cfg)["cluster"] == 0  # no index needed yet
    state.set_clusters({10: 0, 11: 0, 12: 1, 13: 1})
    assert state.lookup_clusters(torch.tensor([13, 10, 3, 99])).tolist() == [1, 0, -1, -1]
    got = compute_losses(out, {"label": label, "index": torch.tensor([10, 11, 12, 13])}, state, cfg)["cluster"]
    assert got > 0
    with pytest.raises(KeyError, match="index"):
        compute_losses(out, {"label": label}, state, cfg)


def test_prior_state_round_trips_through_state_dict():
    state = PriorState(C, T, DM).train()
    state.update({"m_aligned": torch.randn(B, T, DM)}, {"label": torch.tensor([0, 1, 0, 1])})
    state.set_clusters(torch.tensor([2, 0, 1, 2, 0]))
    fresh = PriorState(C, T, DM)
    fresh.load_state_dict(state.state_dict())
    for name, buf in state.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], buf), name


def test_config_weight_fields_exist_for_every_term():
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    assert all(w is None or w in fields for w, _ in L.LOSS_TERMS.values())
