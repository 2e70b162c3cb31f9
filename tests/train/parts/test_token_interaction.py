"""Weighted token-wise interaction classifier: loop reference, masks, known answers, the tiny store's CLIP text tokens."""

from __future__ import annotations

import math

import pytest
import torch

from fgm_common.datasets import get_dataset
from fgm_common.store import FeatureStore
from train.parts.classifier import (
    CLASSIFIERS,
    MAX_LOGIT_SCALE,
    LinearHead,
    TextClassifier,
    TokenInteractionClassifier,
    interaction_inputs_from_state,
)
from train.parts.clip_parts import ClipParts, load_store_clip
from train.fitting.data import load_features

S, L, D, C = 5, 7, 8, 3
CLASS_OF = torch.tensor([0, 0, 1, 2, 2])
LENGTHS = torch.tensor([3, 7, 2, 5, 4])  # real tokens per sentence; sentence 1 fills the context


def tokens_and_mask(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(L)[None, :] < LENGTHS[:, None]  # (S, L)
    return torch.randn(S, L, D, generator=g), mask


def make(hidden: int = 6, seed: int = 0, tokens=None, mask=None, class_of=CLASS_OF, n_classes=C,
         random_weights: bool = True) -> TokenInteractionClassifier:
    """A classifier whose token/frame weight branches are random (not their zero init), so weights matter."""
    t, m = tokens_and_mask(seed) if tokens is None else (tokens, mask)
    torch.manual_seed(seed)
    clf = TokenInteractionClassifier(hidden, torch.zeros(n_classes, D), t, m, class_of=class_of)
    if random_weights:
        with torch.no_grad():
            for lin in (clf.text_weight, clf.frame_weight):
                lin.weight.normal_(0, 1.0)
                lin.bias.normal_(0, 1.0)
    return clf


def loop_reference(clf: TokenInteractionClassifier, h_t: torch.Tensor) -> torch.Tensor:
    """The WTI formula written out with Python loops over videos, sentences, real tokens and frames: (B, C)."""
    n_classes = int(clf.class_count.numel())
    out = torch.zeros(h_t.shape[0], n_classes)
    for b in range(h_t.shape[0]):
        frames = [torch.nn.functional.normalize(clf.frame_proj(x), dim=0) for x in h_t[b]]
        v = torch.softmax(torch.stack([clf.frame_weight(f)[0] for f in frames]), dim=0)
        for s in range(clf.text_tokens.shape[0]):
            toks = [clf.text_tokens[s, i] for i in range(clf.text_tokens.shape[1]) if clf.text_mask[s, i]]
            w = torch.softmax(torch.stack([clf.text_weight(t)[0] for t in toks]), dim=0)
            sim = [[float(torch.dot(t, f)) for f in frames] for t in toks]  # [i][t]
            t2v = sum(float(w[i]) * max(sim[i]) for i in range(len(toks)))
            v2t = sum(float(v[j]) * max(sim[i][j] for i in range(len(toks))) for j in range(len(frames)))
            out[b, int(clf.class_of[s])] += 0.5 * (t2v + v2t) / float(clf.class_count[clf.class_of[s]])
    return out * math.exp(min(float(clf.logit_scale), MAX_LOGIT_SCALE))


# ---- the formula -------------------------------------------------------------------------------
def test_registered_and_forward_backward():
    assert CLASSIFIERS["token_interaction"] is TokenInteractionClassifier
    clf = make()
    h_t = torch.randn(3, 4, 6, requires_grad=True)  # (B, T, H)
    logits = clf(h_t.mean(1), None, h_t=h_t)
    assert logits.shape == (3, C) and torch.isfinite(logits).all()
    logits.logsumexp(-1).sum().backward()
    for name, p in clf.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert h_t.grad.abs().sum() > 0


def test_matches_the_formula_written_with_loops():
    clf = make(seed=1)
    h_t = torch.randn(2, 5, 6)
    with torch.no_grad():
        got = clf(h_t.mean(1), h_t=h_t)
        want = loop_reference(clf, h_t)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)


def test_zero_init_weight_branches_give_plain_means():
    # With a, b at zero, score = mean over real tokens of max_t S + mean over frames of max_i S.
    clf = make(random_weights=False)
    h_t = torch.randn(2, 4, 6)
    with torch.no_grad():
        f = torch.nn.functional.normalize(clf.frame_proj(h_t), dim=-1)  # (B, T, D)
        got = clf.sentence_scores(h_t)  # (B, S)
        for s in range(S):
            tok = clf.text_tokens[s, : LENGTHS[s]]  # (n, D) real tokens
            sim = torch.einsum("nd,btd->bnt", tok, f)  # (B, n, T)
            want = 0.5 * (sim.amax(2).mean(1) + sim.amax(1).mean(1))
            torch.testing.assert_close(got[:, s], want)


def test_class_score_is_the_mean_of_its_sentences():
    clf = make(seed=2)
    h_t = torch.randn(3, 4, 6)
    with torch.no_grad():
        per_sentence = clf.sentence_scores(h_t)  # (B, S)
        logits = clf(h_t.mean(1), h_t=h_t) / clf.logit_scale.exp()
    torch.testing.assert_close(logits[:, 0], per_sentence[:, :2].mean(1))
    torch.testing.assert_close(logits[:, 1], per_sentence[:, 2])
    torch.testing.assert_close(logits[:, 2], per_sentence[:, 3:].mean(1))


# ---- masks ---------------------------------------------------------------------------------------
def test_padding_tokens_never_affect_the_score():
    tokens, mask = tokens_and_mask()
    h_t = torch.randn(2, 4, 6)
    clf = make(tokens=tokens, mask=mask)
    with torch.no_grad():
        frames = clf.frame_proj(h_t)  # (B, T, D)
        # Padding made equal to a frame: had it leaked into the max over tokens it would score 1 there,
        # and huge values would dominate the token softmax.
        poisoned = tokens.clone()
        poisoned[~mask] = frames[0, 0]
        poisoned[0, -1] = 1e4 * torch.randn(D)
        other = make(tokens=poisoned, mask=mask)
        other.load_state_dict({k: v for k, v in clf.state_dict().items() if k != "text_tokens"}, strict=False)
        assert not torch.equal(other.text_tokens, clf.text_tokens)
        torch.testing.assert_close(other(h_t.mean(1), h_t=h_t), clf(h_t.mean(1), h_t=h_t), rtol=0, atol=0)
        # the same poisoned tokens with every position marked real do change the scores: the check can fail
        unmasked = make(tokens=poisoned, mask=torch.ones_like(mask))
        unmasked.load_state_dict({k: v for k, v in clf.state_dict().items()
                                  if k not in ("text_tokens", "text_mask")}, strict=False)
        assert not torch.allclose(unmasked(h_t.mean(1), h_t=h_t), clf(h_t.mean(1), h_t=h_t))


def test_all_padding_columns_are_trimmed():
    tokens, mask = tokens_and_mask()
    mask = mask.clone()
    mask[1, 5:] = False  # now no sentence uses the last two positions
    clf = make(tokens=tokens, mask=mask)
    assert clf.text_tokens.shape == (S, 5, D) and clf.text_mask.shape == (S, 5)


# ---- known answers -------------------------------------------------------------------------------
def test_frames_equal_to_a_class_tokens_score_exactly_one_and_win():
    one_per_class = torch.arange(C)
    g = torch.Generator().manual_seed(3)
    tokens = torch.randn(C, L, D, generator=g)
    mask = torch.arange(L)[None, :] < torch.tensor([4, 6, 3])[:, None]
    clf = make(hidden=D, tokens=tokens, mask=mask, class_of=one_per_class)
    with torch.no_grad():
        clf.frame_proj.weight.copy_(torch.eye(D))
        clf.frame_proj.bias.zero_()
        for c in range(C):
            h_t = tokens[c, mask[c]][None] * 3.0  # (1, T = real tokens of c, D); scale is normalised away
            logits = clf(h_t.mean(1), h_t=h_t)[0] / clf.logit_scale.exp()  # cosine-level scores (C,)
            torch.testing.assert_close(logits[c], torch.tensor(1.0))  # every max is an exact match
            assert int(logits.argmax()) == c and (logits[torch.arange(C) != c] < 1 - 1e-3).all()


def test_rebuilds_from_its_own_state_dict():
    clf = make(seed=4)
    state = {f"classifier.{k}": v for k, v in clf.state_dict().items()}  # as inside FGMCLIP's state dict
    torch.manual_seed(99)  # different init: everything must come from the state
    again = TokenInteractionClassifier(6, torch.zeros(C, D), **interaction_inputs_from_state(state))
    again.load_state_dict(clf.state_dict(), strict=True)
    h_t = torch.randn(2, 4, 6)
    with torch.no_grad():
        torch.testing.assert_close(again(h_t.mean(1), h_t=h_t), clf(h_t.mean(1), h_t=h_t), rtol=0, atol=0)


def test_errors_say_what_to_do():
    clf = make()
    with pytest.raises(ValueError, match="h_t="):
        clf(torch.randn(2, 6))
    with pytest.raises(ValueError, match="interaction_inputs"):
        TokenInteractionClassifier(6, torch.zeros(C, D))
    tokens, mask = tokens_and_mask()
    with pytest.raises(ValueError, match="at least one sentence"):
        TokenInteractionClassifier(6, torch.zeros(4, D), tokens, mask, class_of=CLASS_OF)


def test_other_heads_accept_and_ignore_h_t():
    h, h_t = torch.randn(2, 6), torch.randn(2, 4, 6)
    for head in (TextClassifier(6, torch.randn(C, D)), LinearHead(6, torch.randn(C, D))):
        torch.testing.assert_close(head(h, None, h_t=h_t), head(h))


# ---- the store's CLIP text tower ----------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_parts(tiny_store):
    """ClipParts built as train/experiments/experiment.py builds it, over the tiny store."""
    store = FeatureStore.open(tiny_store)
    fs = load_features(store, get_dataset("folder"), tokens=True)
    clip = load_store_clip(store, device="cpu")
    return fs, clip, ClipParts(clip, fs.class_sentences, fs.classes, "tokens" in fs.tensors)


def test_text_tokens_of_the_store_clip(tiny_parts):
    fs, clip, parts = tiny_parts
    feats, mask = parts.text_tokens()
    sentences = [s for name in fs.classes for s in fs.class_sentences[name]]
    n, length = parts.token_ids.shape
    assert feats.shape == (n, length, clip.embed_dim) and mask.shape == (n, length) and n == len(sentences)
    assert parts.text_tokens()[0] is feats  # computed once
    assert not feats.requires_grad
    eot = parts.token_ids.argmax(-1)  # CLIP BPE: end-of-text has the largest id
    for s in range(n):  # a contiguous run from the start token to end-of-text inclusive
        assert mask[s].tolist() == [i <= int(eot[s]) for i in range(length)]
    # known answer: the end-of-text token's feature is the sentence embedding encode_text gives
    pooled = torch.from_numpy(clip.encode_texts(sentences))  # (S, D)
    torch.testing.assert_close(feats[torch.arange(n), eot], pooled, atol=1e-5, rtol=1e-4)
    # causal attention: the start token sees only itself, so it is the same in every sentence
    torch.testing.assert_close(feats[:, 0], feats[:1, 0].expand(n, -1))


def test_classifier_over_the_store_text_tokens(tiny_parts):
    fs, clip, parts = tiny_parts
    d = clip.embed_dim
    torch.manual_seed(0)
    clf = TokenInteractionClassifier(d, fs.class_text, **parts.interaction_inputs())
    h_t = torch.randn(2, 6, d, requires_grad=True)  # (B, T, H)
    logits = clf(h_t.mean(1), h_t=h_t)
    assert logits.shape == (2, len(fs.classes)) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert h_t.grad.abs().sum() > 0
    # frames equal to one sentence's real tokens: that sentence scores exactly 1, the most any can
    with torch.no_grad():
        clf.frame_proj.weight.copy_(torch.eye(d))
        clf.frame_proj.bias.zero_()
        feats, mask = parts.text_tokens()
        for s in (0, feats.shape[0] - 1):
            scores = clf.sentence_scores(feats[s, mask[s]][None])[0]  # (S,)
            torch.testing.assert_close(scores[s], torch.tensor(1.0))
            assert float(scores.max()) <= 1.0 + 1e-6
