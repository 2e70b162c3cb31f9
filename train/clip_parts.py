"""Rebuild the store's own CLIP towers for the full model's adapters and learnable text context."""

from __future__ import annotations

import torch

from fgm_common.console import console
from fgm_common.store import FeatureStore
from train.adapter import TextPromptLearner, TokenTailWithAdapters


def load_store_clip(store: FeatureStore, device: str = "cpu", cache_dir: str | None = None):
    """The exact CLIP that made the store's features (weights hash checked), or a clear error."""
    from extract.clip_model import load_clip

    cfg = store.config
    clip = load_clip(cfg.clip_model, cfg.pretrained, cfg.random_seed, device=device, cache_dir=cache_dir)
    recorded = store.clip_identity
    for key in ("weights_sha256", "file_sha256"):
        if recorded.get(key) and clip.identity.get(key) != recorded[key]:
            raise ValueError(
                f"the CLIP weights rebuilt now differ from those that made {store.url} ({key} mismatch); "
                "the token adapters would run on other weights. Use the same checkpoint file / fgm version, "
                "or train a variant without token adapters (e.g. --variants no_adapter)."
            )
    return clip


class ClipParts:
    """Callable (variant, model_config) -> (token tail or None, prompt learner or None) for new_model."""

    def __init__(self, clip, class_sentences: dict[str, list[str]], classes: list[str], has_tokens: bool):
        self.clip = clip
        self.has_tokens = has_tokens
        sentences, owner = [], []
        for c, name in enumerate(classes):
            for s in class_sentences[name]:
                sentences.append(s)
                owner.append(c)
        self.token_ids = clip.tokenizer(sentences).cpu()  # (S, L)
        self.class_of = torch.tensor(owner)

    def _prompt(self, n_ctx: int):
        """A prompt learner over the sentences short enough to take n_ctx context vectors; None if a class has none."""
        length = self.token_ids.shape[1]
        eot = self.token_ids.argmax(-1)  # the end-of-text id is the largest in CLIP's BPE vocabulary
        keep = eot + n_ctx < length
        if set(self.class_of[keep].tolist()) != set(self.class_of.tolist()):
            console.print(f"[yellow]learnable text context off: some class has no sentence short enough for "
                          f"{n_ctx} context tokens in a context of {length}[/yellow]")
            return None
        return TextPromptLearner(self.clip.model, n_ctx=n_ctx, token_ids=self.token_ids[keep], class_of=self.class_of[keep])

    def __call__(self, variant, mcfg):
        tail = TokenTailWithAdapters(self.clip.model, n_blocks=1, bottleneck=mcfg.adapter_bottleneck) \
            if variant.token_adapters and self.has_tokens and mcfg.use_adapter else None
        prompt = self._prompt(variant.prompt_ctx) if variant.prompt_ctx and mcfg.classifier == "text" else None
        return tail, prompt
