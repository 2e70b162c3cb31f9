"""Model parts: shapes, forward+backward, identity-at-init adapters, DTW and interpolation known answers."""

from __future__ import annotations

import pytest
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

from train.parts.adapter import EmbeddingAdapter, TextPromptLearner, TokenTailWithAdapters
from train.parts.align import ALIGNERS, DTWAligner, dtw_weights, interpolate_steps
from train.parts.classifier import CLASSIFIERS, MAX_LOGIT_SCALE, TextClassifier, zero_shot_logits
from train.parts.context import ContextEncoder
from train.parts.fusion import FUSIONS, ConcatFusion
from train.parts.motion import MOTION_ENCODERS, TEMPORAL, MotionDecoder, MotionEncoder, VisualTCN

B, T, TF, D, G, HH, C, K, DM, H = 3, 5, 4, 16, 16, 16, 3, 4, 8, 12


def assert_grads(module: torch.nn.Module) -> None:
    """Every trainable parameter got a finite gradient."""
    for name, p in module.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"


@pytest.fixture
def tiny_clip() -> CLIP:
    torch.manual_seed(1)
    model = CLIP(
        embed_dim=16,
        vision_cfg=CLIPVisionCfg(image_size=32, patch_size=16, width=32, layers=2, head_width=16),
        text_cfg=CLIPTextCfg(context_length=8, vocab_size=64, width=32, heads=2, layers=1),
    )
    return model.eval()


def test_embedding_adapter_starts_as_identity_and_learns():
    ad = EmbeddingAdapter(D, 4)
    v = torch.randn(B, T, D)
    assert torch.equal(ad(v), v)
    ad(v).pow(2).sum().backward()
    assert_grads(ad)
    assert ad.up.weight.grad.abs().sum() > 0
    torch.nn.init.normal_(ad.up.weight)
    assert not torch.allclose(ad(v), v)


def _tokens_entering(model: CLIP, block: int, images: torch.Tensor) -> torch.Tensor:
    seen = {}
    handle = model.visual.transformer.resblocks[block].register_forward_pre_hook(
        lambda mod, args: seen.setdefault("x", args[0].detach().clone())
    )
    model.encode_image(images)
    handle.remove()
    return seen["x"]  # (N, L, W)


@pytest.mark.parametrize("n_blocks", [1, 2])
def test_token_tail_reproduces_encode_image(tiny_clip, n_blocks):
    images = torch.randn(4, 3, 32, 32)
    tokens = _tokens_entering(tiny_clip, -n_blocks, images)
    assert tokens.shape == (4, 5, 32)  # class token + 2x2 patches
    tail = TokenTailWithAdapters(tiny_clip, n_blocks=n_blocks, bottleneck=4)
    with torch.no_grad():
        expected = tiny_clip.encode_image(images)
    torch.testing.assert_close(tail(tokens), expected, rtol=1e-5, atol=1e-5)
    # a non-zero adapter must change the embedding (the comparison above can fail)
    torch.nn.init.normal_(tail.mlp_adapters[-1].up.weight)
    assert not torch.allclose(tail(tokens), expected, atol=1e-4)


def test_token_tail_freezes_clip_and_trains_adapters(tiny_clip):
    tail = TokenTailWithAdapters(tiny_clip, n_blocks=1, bottleneck=4)
    tail(torch.randn(6, 5, 32)).sum().backward()
    frozen = [p for n, p in tail.named_parameters() if "adapters" not in n]
    assert frozen and all(not p.requires_grad and p.grad is None for p in frozen)
    assert_grads(tail)
    assert all(p.requires_grad for p in tiny_clip.parameters())  # the caller's model is untouched


SOT, EOT = 62, 63  # hand-made ids: EOT is the largest id, as argmax pooling assumes


def test_prompt_learner_matches_encode_text_with_inserted_words(tiny_clip):
    ids = torch.tensor([[SOT, 7, 9, EOT, 0, 0, 0, 0], [SOT, 11, EOT, 0, 0, 0, 0, 0]])
    init = torch.tensor([3, 4])
    learner = TextPromptLearner(tiny_clip, n_ctx=2, init_ids=init)
    expected_ids = torch.tensor([[SOT, 3, 4, 7, 9, EOT, 0, 0], [SOT, 3, 4, 11, EOT, 0, 0, 0]])
    with torch.no_grad():
        expected = tiny_clip.encode_text(expected_ids)
    got = learner(ids)  # (2, 16)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    got.sum().backward()
    assert learner.ctx.grad is not None and learner.ctx.grad.abs().sum() > 0
    assert all(p.grad is None for n, p in learner.named_parameters() if n != "ctx")
    with pytest.raises(ValueError, match="too long"):
        learner(torch.tensor([[SOT, 1, 2, 3, 4, 5, EOT, 0]]))


def test_prompt_learner_class_mean(tiny_clip):
    ids = torch.tensor([[SOT, 7, EOT, 0, 0, 0, 0, 0], [SOT, 8, EOT, 0, 0, 0, 0, 0], [SOT, 9, EOT, 0, 0, 0, 0, 0]])
    learner = TextPromptLearner(tiny_clip, n_ctx=2, token_ids=ids, class_of=torch.tensor([0, 0, 1]))
    per_class = learner()
    assert per_class.shape == (2, 16)
    torch.testing.assert_close(per_class.norm(dim=-1), torch.ones(2))
    single = torch.nn.functional.normalize(learner(ids[2:]), dim=-1)[0]
    torch.testing.assert_close(per_class[1], single)


def test_prompt_learner_trimmed_padding_changes_nothing(tiny_clip):
    """The text mask is causal: cutting padding after the longest sentence (+ context) keeps every output."""
    ids = torch.tensor([[SOT, 7, 9, EOT, 0, 0, 0, 0], [SOT, 8, EOT, 0, 0, 0, 0, 0]])
    learner = TextPromptLearner(tiny_clip, n_ctx=2)
    torch.testing.assert_close(learner(ids[:, :6]), learner(ids))
    assert not torch.allclose(learner(ids[:, :6]), learner(ids[:, [0, 1, 2, 3, 4, 5, 6, 7]].roll(1, 0)))


@pytest.mark.parametrize("temporal", sorted(TEMPORAL))
def test_motion_encoder_each_temporal(temporal):
    enc = MotionEncoder(HH, DM, temporal=temporal, max_len=8, dropout=0.0)
    m = enc(torch.randn(B, TF, 2, G, G), torch.rand(B, TF, HH))
    assert m.shape == (B, TF, DM)
    m.pow(2).sum().backward()
    assert_grads(enc)


def test_motion_decoder_and_visual_tcn():
    dec = MotionDecoder(DM, D, heads=2, dropout=0.0)
    out = dec(torch.randn(B, TF, DM), torch.randn(B, T, D))
    assert out.shape == (B, TF, DM)
    out.sum().backward()
    assert_grads(dec)
    tcn = VisualTCN(D, DM)
    y = tcn(torch.randn(B, T, D))
    assert y.shape == (B, T, DM)
    y.sum().backward()
    assert_grads(tcn)


@pytest.mark.parametrize("name", sorted(MOTION_ENCODERS))
def test_motion_registry(name):
    enc = MOTION_ENCODERS[name](D, HH, DM, "conv", 8, 0.0)
    batch = {"clip": torch.randn(B, T, D)}
    if name == "flow":
        batch |= {"flow": torch.randn(B, TF, 2, G, G), "flow_hist": torch.rand(B, TF, HH)}
    m = enc(batch)  # visual_tcn must not read flow: it is absent here
    assert m.shape == (B, TF if name == "flow" else T, DM)
    m.sum().backward()
    assert_grads(enc)


@pytest.mark.parametrize("name", sorted(ALIGNERS))
def test_aligners_shape_and_gradient_to_motion(name):
    aligner = ALIGNERS[name](DM, D)
    m = torch.randn(B, TF, DM, requires_grad=True)
    out = aligner(m, torch.randn(B, T, D))
    assert out.shape == (B, T, DM)
    out.pow(2).sum().backward()
    assert m.grad is not None and torch.isfinite(m.grad).all() and m.grad.abs().sum() > 0
    if name == "attention":
        assert_grads(aligner)


def _identity_dtw(dim: int) -> DTWAligner:
    aligner = DTWAligner(dim, dim)
    with torch.no_grad():
        aligner.proj.weight.copy_(torch.eye(dim))
        aligner.proj.bias.zero_()
    return aligner


def test_dtw_undoes_a_twofold_stretch_of_motion():
    v = torch.randn(B, T, DM)
    m = v.repeat_interleave(2, dim=1)  # (B, 2T, DM): each visual step shown twice
    w = dtw_weights(v, m)  # (B, T, 2T)
    expected = torch.zeros(T, 2 * T)
    expected[torch.arange(T), 2 * torch.arange(T)] = 0.5
    expected[torch.arange(T), 2 * torch.arange(T) + 1] = 0.5
    torch.testing.assert_close(w, expected.expand(B, -1, -1))
    torch.testing.assert_close(_identity_dtw(DM)(m, v), v)


def test_dtw_repeats_motion_onto_a_stretched_visual():
    m = torch.randn(B, TF, DM)
    v = m.repeat_interleave(2, dim=1)  # (B, 2Tf, DM): visual twice as dense as motion
    torch.testing.assert_close(_identity_dtw(DM)(m, v), v)


def test_interpolation_known_answers():
    m = torch.randn(B, TF, DM)
    assert torch.equal(interpolate_steps(m, TF), m)
    two = torch.stack([torch.zeros(DM), torch.ones(DM)]).expand(B, -1, -1)  # (B, 2, DM)
    torch.testing.assert_close(interpolate_steps(two, 3)[:, 1], torch.full((B, DM), 0.5))


def test_context_encoder_picks_the_matching_scene():
    scene = torch.randn(K, D)
    enc = ContextEncoder(scene, out_dim=DM, class_text=torch.randn(C, D))
    v = scene[torch.tensor([2, 0, 3, 1, 2])].expand(B, -1, -1)  # (B, T, D)
    c, p = enc(v)
    assert c.shape == (B, T, DM) and p.shape == (B, T, K)
    torch.testing.assert_close(p.sum(-1), torch.ones(B, T))
    assert p.argmax(-1)[0].tolist() == [2, 0, 3, 1, 2]
    assert enc.class_prior.shape == (C, K)
    c.sum().backward()
    assert_grads(enc)


@pytest.mark.parametrize("name", sorted(FUSIONS))
@pytest.mark.parametrize("context_dim", [0, 6])
def test_fusions(name, context_dim):
    fusion = FUSIONS[name](D, DM, context_dim, H, 0.0)
    c = torch.randn(B, T, context_dim) if context_dim else None
    h_t, h = fusion(torch.randn(B, T, D), torch.randn(B, T, DM), c)
    assert h_t.shape == (B, T, H) and h.shape == (B, H)
    torch.testing.assert_close(h, h_t.mean(dim=1))
    (h.pow(2).sum() + h_t.sum()).backward()
    assert_grads(fusion)


def test_concat_fusion_is_linear_of_the_mean():
    fusion = ConcatFusion(D, DM, 0, H)
    v, m = torch.randn(B, T, D), torch.randn(B, T, DM)
    _, h = fusion(v, m)
    torch.testing.assert_close(h, fusion.out(torch.cat([v, m], -1).mean(1)))


def token_inputs() -> dict:
    """Class-sentence token features and mask, as ClipParts.interaction_inputs() gives them: one sentence per class."""
    return {"text_tokens": torch.randn(C, 4, D), "text_mask": torch.ones(C, 4, dtype=torch.bool)}


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_classifiers(name):
    extra = token_inputs() if name == "token_interaction" else {}
    head = CLASSIFIERS[name](H, torch.randn(C, D), **extra)
    logits = head(torch.randn(B, H), h_t=torch.randn(B, T, H))
    assert logits.shape == (B, C)
    logits.sum().backward()
    assert_grads(head)


def test_text_classifier_known_answer_and_scale_cap():
    class_text = torch.eye(C, D)
    head = TextClassifier(C, class_text)
    with torch.no_grad():
        head.proj.weight.copy_(torch.eye(D, C))
        head.proj.bias.zero_()
        head.logit_scale.fill_(10.0)  # far above the cap
    logits = head(torch.eye(C))
    assert logits.argmax(-1).tolist() == list(range(C))
    torch.testing.assert_close(logits.diagonal(), torch.full((C,), float(torch.tensor(MAX_LOGIT_SCALE).exp())))
    swapped = head(torch.eye(C), class_emb=class_text.flip(0))
    assert swapped.argmax(-1).tolist() == list(reversed(range(C)))


def test_zero_shot_logits_known_answer():
    class_text = torch.randn(C, D)
    v = (class_text[1] * 3.0).expand(B, T, D)
    logits = zero_shot_logits(v, class_text)
    assert (logits.argmax(-1) == 1).all()
    torch.testing.assert_close(logits[:, 1], torch.full((B,), 100.0))
