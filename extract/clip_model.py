"""Frozen open_clip towers: load by name and weights source, encode frames (N, D) and sentences (S, D)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import open_clip
import torch

from extract.errors import ClipWeightsError
from extract.preprocess import pil
from extract.seeded import seeded
from extract.weights import WAYS_OUT, hub_offline, locate, unavailable_line
from fgm_common.config import is_random_weights
from fgm_common.options import resolve_device

# Small architectures for tests and CPU demos; registered with open_clip so the normal loading path
# (`--clip-model fgm-tiny-vit --pretrained none`) builds them. They have no pretrained weights.
open_clip.add_model_config(Path(__file__).parent / "model_configs")


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def state_sha256(model: torch.nn.Module) -> str:
    """Hash of every parameter and buffer: proves random weights were rebuilt identically."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().reshape(-1).view(np.uint8))  # the bytes, without a copy
    return h.hexdigest()


@dataclass
class FrozenClip:
    """An eval-mode open_clip model with its preprocessing and tokenizer."""

    model: Any
    preprocess: Any
    tokenizer: Any
    name: str
    pretrained: str
    device: str
    identity: dict  # what the store records: model, weights source, hashes
    # tokens of the forward running in this thread: several threads may encode at once (Tower.parallel)
    _tokens: threading.local = field(default_factory=threading.local, repr=False, compare=False)
    _token_hook: Any = field(default=None, repr=False, compare=False)
    _hook_lock: Any = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[-1]) if hasattr(self.model, "text_projection") else int(
            self.identity["embed_dim"]
        )

    def preprocess_frames(self, frames: list[np.ndarray]) -> torch.Tensor:
        """RGB uint8 frames (H, W, 3) -> model input (N, 3, S, S) with open_clip's own preprocessing."""
        return pil(self.preprocess)(frames)

    @torch.inference_mode()
    def encode_batch(self, batch: torch.Tensor, tokens: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Model input (N, 3, S, S) -> embeddings (N, D) f32 and, if asked, last-block input tokens (N, L, W).

        Safe to call from several threads at once: each thread's tokens land in its own list.
        """
        if tokens:
            self._hook_tokens()
            self._tokens.sink = []
        try:
            emb = self.model.encode_image(batch.to(self.device))  # (N, D)
            tok = self._tokens.sink[0].float().cpu().numpy() if tokens else None  # (N, L, W)
        finally:
            self._tokens.sink = None
        return emb.float().cpu().numpy(), tok

    def _hook_tokens(self) -> None:
        """Put one hook at the last vision block's input that hands its tokens to the calling thread's list.

        One hook for the model's life: adding and removing a hook per call would change the module's
        hook table while another thread's forward walks it.
        """
        with self._hook_lock:
            if self._token_hook is None:
                local = self._tokens

                def keep(_module, args):
                    sink = getattr(local, "sink", None)
                    if sink is not None:
                        sink.append(args[0].detach())

                self._token_hook = last_vision_block(self.model).register_forward_pre_hook(keep)

    def encode_frames(self, frames: list[np.ndarray], tokens: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """RGB uint8 frames (H, W, 3) -> embeddings (N, D) and optional tokens (N, L, W)."""
        return self.encode_batch(self.preprocess_frames(frames), tokens)

    @torch.inference_mode()
    def encode_texts(self, sentences: list[str], batch_size: int = 64) -> np.ndarray:
        """Sentences -> text embeddings (S, D) f32, not normalised."""
        out = []
        for i in range(0, len(sentences), batch_size):
            ids = self.tokenizer(sentences[i : i + batch_size]).to(self.device)  # (b, context_length)
            out.append(encode_text_prefix(self.model, ids).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.embed_dim), np.float32)


def encode_text_prefix(model: Any, ids: torch.Tensor) -> torch.Tensor:
    """open_clip's `encode_text` (b, context_length) -> (b, D), run only up to the last end token.

    In a causal text tower pooled at the end token (CLIP's), that token's output depends only on
    the tokens before it, so the padding after the longest sentence changes nothing and need not
    run: a 10-token prompt costs a seventh of 77. Other towers (no causal mask, other pooling) run
    whole. The test checks the result against `encode_text` itself.
    """
    causal = getattr(model, "attn_mask", None) is not None and hasattr(model, "token_embedding")
    if not causal or getattr(model, "text_pool_type", None) != "argmax":
        return model.encode_text(ids)
    ends = ids.argmax(dim=-1)  # (b,) the end token has the highest id
    ids = ids[:, : int(ends.max()) + 1]  # (b, L)
    n = ids.shape[1]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(ids).to(cast) + model.positional_embedding[:n].to(cast)  # (b, L, W)
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:n, :n]))  # (b, L, W)
    x = x[torch.arange(len(ids), device=ids.device), ends]  # (b, W)
    proj = model.text_projection
    if proj is None:
        return x
    return proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj  # (b, D)


def input_size(model: Any) -> int:
    """Side S of the square (N, 3, S, S) input of an open_clip model's image tower."""
    size = model.visual.image_size
    return int(size if isinstance(size, int) else size[0])


def last_vision_block(model: Any) -> torch.nn.Module:
    """The last transformer block of a ViT vision tower; tokens are cached at its input."""
    try:
        return model.visual.transformer.resblocks[-1]
    except AttributeError as e:
        raise ValueError(
            "--tokens needs a ViT vision tower (e.g. ViT-B-32); this model has none"
        ) from e


class _NotRandomInitWarning(logging.Filter):
    """Drops open_clip's root-logger warning that a model is random, where random weights were asked for.

    The caller says so once in its own words, and the store records it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded")


@contextmanager
def _quiet_random_init() -> Iterator[None]:
    root, quiet = logging.getLogger(), _NotRandomInitWarning()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


def architecture(name: str) -> torch.nn.Module:
    """open_clip's model `name` with random weights, in eval mode: for counting parameters and FLOPs."""
    with _quiet_random_init():
        return open_clip.create_model(name, pretrained=None).eval()


def load_clip(name: str, pretrained: str, random_seed: int = 0, device: str = "auto",
              cache_dir: str | None = None) -> FrozenClip:
    """Build an open_clip model frozen in eval mode; raise ClipWeightsError naming the ways out."""
    device = resolve_device(device)
    if name not in open_clip.list_models() and not name.startswith(("hf-hub:", "local-dir:")):
        raise ValueError(f"unknown CLIP model {name!r}; choose one of open_clip.list_models(), e.g. ViT-B-32")
    identity: dict[str, Any] = {"model": name, "pretrained": pretrained, "open_clip": open_clip.__version__}
    if is_random_weights(pretrained):
        with seeded(random_seed), _quiet_random_init():
            model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None)
        identity.update(random_seed=random_seed, weights_sha256=state_sha256(model), random_weights=True)
    else:
        if not os.path.exists(pretrained) and pretrained not in open_clip.list_pretrained_tags_by_model(name):
            raise ClipWeightsError(
                f"{pretrained!r} is neither a file nor a pretrained tag of {name}; tags: "
                f"{open_clip.list_pretrained_tags_by_model(name) or 'none'}; or use --pretrained none"
            )
        source = locate(name, pretrained, cache_dir)  # a second or two at most, before any hub call
        if not source.available:
            raise ClipWeightsError(unavailable_line(source))
        if source.kind == "file":
            identity["file_sha256"] = file_sha256(pretrained)
        try:
            with hub_offline() if source.kind == "cache" else nullcontext():
                model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained,
                                                                             cache_dir=cache_dir)
        except (OSError, RuntimeError, ValueError) as e:  # hub/network failures surface as these
            raise ClipWeightsError(f"could not load CLIP weights {name}/{pretrained}: {type(e).__name__}: {e}\n"
                                   f"{WAYS_OUT}") from e
        identity["random_weights"] = False
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    identity["embed_dim"] = int(model.text_projection.shape[-1]) if hasattr(model, "text_projection") else None
    tokenizer = open_clip.get_tokenizer(name)
    return FrozenClip(model, preprocess, tokenizer, name, pretrained, device, identity)
