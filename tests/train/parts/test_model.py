"""FGMCLIP end to end: config round trip, every registry choice forward+backward, frozen CLIP, overfit sanity."""

from __future__ import annotations

import json
import math

import pytest
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

from train.parts.adapter import TextPromptLearner, TokenTailWithAdapters
from train.parts.align import ALIGNERS
from train.fitting.blend import BLENDS
from train.parts.classifier import CLASSIFIERS
from train.parts.fusion import FUSIONS
from train.fitting.losses import PriorState, compute_losses
from train.parts.heads import HEADS
from train.parts.model import FGMCLIP, build_model
from train.parts.model_config import ModelConfig
from train.parts.motion import MOTION_ENCODERS, TEMPORAL

B, T, TF, D, G, HH, C, K = 3, 5, 4, 16, 16, 16, 3, 4


def make_cfg(**kw) -> ModelConfig:
    base = dict(clip_dim=D, flow_grid=G, flow_hist_dim=HH, n_classes=C, n_frames=T, n_flow=TF,
                hidden=16, motion_dim=8, adapter_bottleneck=4, aligner="interp")
    return ModelConfig(**(base | kw))


def make_batch(n: int = B, flow: bool = True) -> dict:
    batch = {"clip": torch.randn(n, T, D), "label": torch.arange(n) % C, "index": torch.arange(n)}
    if flow:
        batch |= {"flow": torch.randn(n, TF, 2, G, G), "flow_hist": torch.rand(n, TF, HH)}
    return batch


def run_step(model: FGMCLIP, cfg: ModelConfig, batch: dict) -> dict:
    """One training forward/backward with every loss term active; returns the outputs."""
    state = PriorState.from_config(cfg).train()
    out = model(batch)
    state.update(out, batch)
    state.set_clusters(torch.arange(len(batch["label"])) % 2)
    compute_losses(model(batch), batch, state, cfg)["total"].backward()
    return out


def assert_grads(model: torch.nn.Module) -> None:
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"


def test_config_round_trip_and_validation():
    cfg = make_cfg(temporal="gru", w_cluster=0.0, cluster_k=7)
    again = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.n_clusters == 7 and make_cfg().n_clusters == C
    with pytest.raises(ValueError, match="does not know"):
        ModelConfig.from_dict(cfg.to_dict() | {"future_field": 1})
    with pytest.raises(ValueError, match="aligner"):
        make_cfg(aligner="nope")
    with pytest.raises(ValueError, match="motion_dim"):
        make_cfg(motion_dim=6)


def test_output_shapes_default_config():
    cfg = make_cfg(aligner="dtw")
    out = build_model(cfg, torch.randn(C, D), torch.randn(K, D))(make_batch())
    shapes = {k: tuple(v.shape) for k, v in out.items() if k != "heads"}
    assert {k: tuple(z.shape) for k, z in out["heads"].items()} == {"fused": (B, C), "motion": (B, C), "visual": (B, C)}
    assert shapes == {"logits": (B, C), "v": (B, T, D), "m": (B, TF, 8), "m_aligned": (B, T, 8),
                      "v_proj": (B, T, 8), "scene_p": (B, T, K), "scene_q": (C, K), "h_t": (B, T, 16), "h": (B, 16)}


CHOICES = ([("motion_encoder", n) for n in MOTION_ENCODERS] + [("temporal", n) for n in TEMPORAL]
           + [("aligner", n) for n in ALIGNERS] + [("fusion", n) for n in FUSIONS]
           + [("classifier", n) for n in CLASSIFIERS] + [("blend", n) for n in BLENDS]
           + [("use_motion_decoder", False), ("use_context", False), ("use_adapter", False),
              ("stream_heads", False), ("stream_dropout", 0.25), ("standardize_visual", False),
              ("isolate_streams", False)])


@pytest.mark.parametrize("field,value", CHOICES)
def test_every_choice_forward_and_backward(field, value):
    single = {"blend": "fused", "isolate_streams": False}  # what a model without stream heads must also set
    cfg = make_cfg(**{field: value}, **(single if field == "stream_heads" else {}))
    inputs = None
    if value == "token_interaction":  # class-sentence tokens, as ClipParts.interaction_inputs() gives them
        inputs = {"text_tokens": torch.randn(C, 4, D), "text_mask": torch.ones(C, 4, dtype=torch.bool)}
    model = build_model(cfg, torch.randn(C, D), torch.randn(K, D), classifier_inputs=inputs).train()
    out = run_step(model, cfg, make_batch())
    assert out["logits"].shape == (B, C)
    assert (out["scene_p"] is None) == (not cfg.use_context)
    assert_grads(model)


def test_visual_tcn_needs_no_flow():
    cfg = make_cfg(motion_encoder="visual_tcn")
    model = build_model(cfg, torch.randn(C, D), torch.randn(K, D))
    out = model(make_batch(flow=False))
    assert out["m"].shape == (B, T, 8) and out["logits"].shape == (B, C)


def test_frozen_clip_parts_get_no_gradient():
    clip = CLIP(embed_dim=D, vision_cfg=CLIPVisionCfg(image_size=32, patch_size=16, width=32, layers=2, head_width=16),
                text_cfg=CLIPTextCfg(context_length=8, vocab_size=64, width=32, heads=2, layers=1))
    ids = torch.tensor([[62, 5 + c, 63, 0, 0, 0, 0, 0] for c in range(C)])
    learner = TextPromptLearner(clip, n_ctx=2, token_ids=ids, class_of=torch.arange(C))
    tail = TokenTailWithAdapters(clip, n_blocks=1, bottleneck=4)
    cfg = make_cfg()
    model = build_model(cfg, torch.randn(C, D), torch.randn(K, D), token_tail=tail, prompt_learner=learner).train()
    batch = make_batch() | {"tokens": torch.randn(B, T, 5, 32)}
    run_step(model, cfg, batch)
    assert_grads(model)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen, "the CLIP tail and text tower should be frozen"
    assert all(model.get_parameter(n).grad is None for n in frozen)
    assert learner.ctx.grad is not None and tail.attn_adapters[0].up.weight.grad is not None
    with pytest.raises(KeyError, match="tokens"):
        model(make_batch())


def test_checkpoint_state_leaves_out_only_the_frozen_clip_copies():
    clip = CLIP(embed_dim=D, vision_cfg=CLIPVisionCfg(image_size=32, patch_size=16, width=32, layers=2, head_width=16),
                text_cfg=CLIPTextCfg(context_length=8, vocab_size=64, width=32, heads=2, layers=1))
    ids = torch.tensor([[62, 5 + c, 63, 0, 0, 0, 0, 0] for c in range(C)])

    def build():
        torch.manual_seed(0)
        return build_model(make_cfg(), torch.randn(C, D), torch.randn(K, D),
                           token_tail=TokenTailWithAdapters(clip, n_blocks=1, bottleneck=4),
                           prompt_learner=TextPromptLearner(clip, n_ctx=2, token_ids=ids, class_of=torch.arange(C)))

    model = build()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    state = model.checkpoint_state()
    assert frozen and model.frozen_clip_keys() == frozen and not frozen & set(state)
    assert set(state) | frozen == set(model.state_dict())  # every trainable weight and buffer is kept
    with torch.no_grad():
        model.prompt_learner.ctx.add_(1.0)  # a trained weight, to see it travel
    batch = make_batch() | {"tokens": torch.randn(B, T, 5, 32)}
    again = build()
    again.load_checkpoint_state(model.checkpoint_state())
    assert torch.equal(model.eval()(batch)["logits"], again.eval()(batch)["logits"])
    again.load_checkpoint_state(model.state_dict())  # a checkpoint that still carries the copies loads too
    with pytest.raises(RuntimeError, match="missing"):
        again.load_checkpoint_state({k: v for k, v in state.items() if k != "prompt_learner.ctx"})
    with pytest.raises(RuntimeError, match="retrain"):  # a weight of another shape, as from older parts
        again.load_checkpoint_state({**state, "prompt_learner.ctx": torch.zeros(1, 1)})


def flow_signal_data(n_per_class: int, n_classes: int, gen: torch.Generator) -> dict:
    """Visual features and histograms pure noise; each class is one mean flow direction."""
    label = torch.arange(n_classes).repeat(n_per_class)
    angle = 2 * math.pi * label.float() / n_classes
    direction = torch.stack([angle.cos(), angle.sin()], dim=-1)  # (N, 2)
    n = len(label)
    flow = 2.0 * direction[:, None, :, None, None] + torch.randn(n, TF, 2, G, G, generator=gen)
    return {"clip": torch.randn(n, T, D, generator=gen), "flow": flow,
            "flow_hist": torch.rand(n, TF, HH, generator=gen), "label": label, "index": torch.arange(n)}


def train_and_score(motion_encoder: str, steps: int = 100) -> tuple[float, float]:
    """Train on 12 samples (4 classes x 3), return (train accuracy, held-out accuracy on 80)."""
    n_classes = 4
    gen = torch.Generator().manual_seed(1)
    train, test = flow_signal_data(3, n_classes, gen), flow_signal_data(20, n_classes, gen)
    cfg = ModelConfig(clip_dim=D, flow_grid=G, flow_hist_dim=HH, n_classes=n_classes, n_frames=T, n_flow=TF,
                      hidden=32, motion_dim=32, adapter_bottleneck=8, motion_encoder=motion_encoder)
    torch.manual_seed(0)
    model = build_model(cfg, torch.randn(n_classes, D), torch.randn(K, D))
    state = PriorState.from_config(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        out = model(train)
        loss = compute_losses(out, train, state, cfg)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        state.update(out, train)
    model.eval()
    with torch.no_grad():
        acc = [(model(d)["logits"].argmax(-1) == d["label"]).float().mean().item() for d in (train, test)]
    return acc[0], acc[1]


def test_overfit_flow_signal_and_visual_tcn_cannot_see_it():
    train_acc, test_acc = train_and_score("flow")
    assert train_acc > 0.9
    assert test_acc >= 0.6, "the flow stream should generalise: its signal is in the flow"
    _, tcn_test = train_and_score("visual_tcn")
    assert tcn_test <= 0.45, "visual features are noise: chance is 0.25"


# ---- the visual probe ----------------------------------------------------------------------------
def test_the_model_has_a_probe_head_once_it_is_fitted_and_not_before():
    cfg = make_cfg()
    model = build_model(cfg, torch.randn(C, D), torch.randn(K, D)).eval()
    batch = make_batch(6)
    assert "probe" not in model(batch)["heads"]
    model.probe.fit(batch["clip"], batch["label"])
    heads = model(batch)["heads"]
    assert set(heads) == set(HEADS)
    assert torch.allclose(heads["probe"], model.probe(batch["clip"]))  # it reads the frozen features, not v
    model.blend_weights.copy_(torch.tensor([0.0, 0.0, 0.0, 1.0]))
    assert torch.allclose(model(batch)["logits"], torch.log_softmax(heads["probe"], -1))


def test_a_checkpoint_from_before_the_probe_loads_with_the_probe_given_no_weight():
    cfg = make_cfg(visual_probe=False)
    model = build_model(cfg, torch.randn(C, D), torch.randn(K, D))
    state = model.checkpoint_state()
    state["blend_weights"] = torch.tensor([0.25, 0.5, 0.25])  # three heads, as such checkpoints have
    model.load_checkpoint_state(state)
    assert model.blend_weights.tolist() == [0.25, 0.5, 0.25, 0.0]


def test_a_fitted_stacker_makes_the_evaluation_prediction_and_training_steps_never_need_it():
    model = build_model(make_cfg(), torch.randn(C, D), torch.randn(K, D))
    batch = make_batch(6)
    weight = torch.zeros(C, len(HEADS), C)
    weight[:, HEADS.index("probe")] = torch.eye(C)  # the probe alone, which only exists after training
    model.stacker.set(weight, torch.zeros(C))
    model.train()
    out = model(batch)  # a training step: the probe is not fitted yet, the scalar blend stands in
    assert torch.equal(out["logits"], out["heads"]["fused"])
    model.probe.fit(batch["clip"], batch["label"])
    model.eval()
    out = model(batch)
    assert torch.allclose(out["logits"], torch.log_softmax(out["heads"]["probe"], -1), atol=1e-5)
