"""Rebuild the store's own CLIP towers for the full model's adapters, learnable text context and text tokens."""

from __future__ import annotations

import torch

from fgm_common.console import console
from fgm_common.identity import weights_mismatch
from fgm_common.store import FeatureStore
from train.parts.adapter import TEXT_POOLS, TextPromptLearner, TokenTailWithAdapters


def load_store_clip(store: FeatureStore, device: str = "cpu", cache_dir: str | None = None):
    """The exact CLIP that made the store's features (weights hash checked), or a clear error."""
    from extract.clip_model import load_clip

    cfg = store.config
    clip = load_clip(cfg.clip_model, cfg.pretrained, cfg.random_seed, device=device, cache_dir=cache_dir)
    if key := weights_mismatch(store.clip_identity, clip.identity):
        raise ValueError(
            f"the CLIP weights rebuilt now differ from those that made {store.url} ({key} mismatch); "
            "the token adapters would run on other weights. Use the same checkpoint file / fgm version, "
            "or train a variant without token adapters (e.g. --variants no_adapter)."
        )
    return clip


def encode_text_tokens(clip_model, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token outputs of the frozen text tower: ids (S, L) -> features (S, L, D) f32, mask (S, L) bool.

    Every position goes through `ln_final` and the text projection, as `encode_text` does for the
    pooled (end-of-text) token only, so all tokens live in the joint image-text space; the feature at
    the end-of-text position therefore equals `encode_text` exactly (checked here). `mask` is True
    from the start token to the end-of-text token inclusive. No gradient: the tower is frozen.
    """
    if not hasattr(clip_model, "ln_final") or clip_model.text_pool_type not in TEXT_POOLS:
        raise ValueError("text-token features need an open_clip CLIP text tower pooled at the end-of-text "
                         f"token (text_pool_type in {sorted(TEXT_POOLS)}); use a classifier other than "
                         "token_interaction with this model")
    ids = token_ids.to(clip_model.positional_embedding.device)  # (S, L)
    captured: list[torch.Tensor] = []
    # A hook on ln_final reads the full sequence from open_clip's own encode_text: no copy of its forward.
    handle = clip_model.ln_final.register_forward_hook(lambda _m, _a, out: captured.append(out))
    try:
        with torch.no_grad():
            pooled = clip_model.encode_text(ids)  # (S, D)
    finally:
        handle.remove()
    x = captured[0]  # (S, L, W) after ln_final
    proj = clip_model.text_projection
    with torch.no_grad():
        if isinstance(proj, torch.nn.Module):
            feats = proj(x)
        elif proj is not None:
            feats = x @ proj  # (S, L, D)
        else:
            feats = x
    eot = TEXT_POOLS[clip_model.text_pool_type](ids, getattr(clip_model, "text_eos_id", None))  # (S,)
    rows = torch.arange(ids.shape[0], device=ids.device)
    if not torch.allclose(feats[rows, eot], pooled, atol=1e-5, rtol=1e-4):
        raise RuntimeError("per-token text features disagree with encode_text at the end-of-text token; "
                           "this open_clip version pools text differently, report it")
    mask = torch.arange(ids.shape[1], device=ids.device)[None, :] <= eot[:, None]  # (S, L)
    return feats.float().cpu().clone(), mask.cpu()


class ClipParts:
    """Callable (variant, model_config) -> (token tail or None, prompt learner or None) for new_model."""

    def __init__(self, clip, class_sentences: dict[str, list[str]], classes: list[str], has_tokens: bool,
                 adapters: bool = True):
        self.clip = clip
        self.has_tokens = has_tokens
        self.adapters = adapters  # False: build no token tail and no prompt learner (CPU runs)
        sentences, owner = [], []
        for c, name in enumerate(classes):
            for s in class_sentences[name]:
                sentences.append(s)
                owner.append(c)
        self.token_ids = clip.tokenizer(sentences).cpu()  # (S, L)
        self.class_of = torch.tensor(owner)  # (S,) class index of each sentence
        self._text_tokens: tuple[torch.Tensor, torch.Tensor] | None = None

    def text_tokens(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen per-token features of every class sentence (S, L, D) and their mask (S, L); computed once.

        Rows follow `class_of` (sentences of class 0 first). See `encode_text_tokens`.
        """
        if self._text_tokens is None:
            self._text_tokens = encode_text_tokens(self.clip.model, self.token_ids)
        return self._text_tokens

    def interaction_inputs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments of `classifier.TokenInteractionClassifier` besides (hidden, class_text)."""
        feats, mask = self.text_tokens()
        return {"text_tokens": feats, "text_mask": mask, "class_of": self.class_of}

    def _prompt(self, n_ctx: int):
        """A prompt learner over the sentences short enough to take n_ctx context vectors; None if a class has none."""
        length = self.token_ids.shape[1]
        eot = self.token_ids.argmax(-1)  # the end-of-text id is the largest in CLIP's BPE vocabulary
        keep = eot + n_ctx < length
        if set(self.class_of[keep].tolist()) != set(self.class_of.tolist()):
            console.print(f"[yellow]learnable text context off: some class has no sentence short enough for "
                          f"{n_ctx} context tokens in a context of {length}[/yellow]")
            return None
        ids = self.token_ids[keep]
        # The text mask is causal: positions after a sentence's end token never reach its pooled
        # output, so trimming the padding to the longest sentence (+ context) changes nothing but time.
        ids = ids[:, : int(eot[keep].max()) + 1 + n_ctx]
        return TextPromptLearner(self.clip.model, n_ctx=n_ctx, token_ids=ids, class_of=self.class_of[keep])

    def __call__(self, variant, mcfg):
        if not self.adapters:
            return None, None
        tail = TokenTailWithAdapters(self.clip.model, n_blocks=1, bottleneck=mcfg.adapter_bottleneck) \
            if variant.token_adapters and self.has_tokens and mcfg.use_adapter else None
        prompt = self._prompt(variant.prompt_ctx) if variant.prompt_ctx and mcfg.classifier == "text" else None
        return tail, prompt
