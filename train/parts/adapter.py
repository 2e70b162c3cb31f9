"""Trainable adapters on frozen CLIP: embedding adapter, last-block token tail, CoOp text prompts."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class EmbeddingAdapter(nn.Module):
    """Residual bottleneck v + up(GELU(down(LN(v)))): (..., dim) -> (..., dim), identity at init."""

    def __init__(self, dim: int, bottleneck: int = 64):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.down = nn.Linear(dim, bottleneck)
        self.up = nn.Linear(bottleneck, dim)
        # Zero `up` so training starts from the frozen CLIP features, not from a random perturbation.
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return v + self.up(F.gelu(self.down(self.norm(v))))


def _freeze(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.requires_grad_(False)
    return module


# Pooling of the final token sequence (N, L, W) -> (N, W), as open_clip's VisionTransformer does.
VISION_POOLS = {
    "tok": lambda x: x[:, 0],  # class token
    "avg": lambda x: x[:, 1:].mean(dim=1),  # mean of patch tokens, class token excluded
}


class TokenTailWithAdapters(nn.Module):
    """Last `n_blocks` frozen CLIP vision blocks + ln_post + proj with zero-init adapters: (N, L, W) -> (N, D).

    Input tokens are those ENTERING block `layers - n_blocks` (after ln_pre, class token first).
    The feature store caches the tokens entering the last block only, so with the store use
    n_blocks=1. With all adapters at zero the output equals `clip_model.encode_image` exactly.
    """

    def __init__(self, clip_model: nn.Module, n_blocks: int = 1, bottleneck: int = 64):
        super().__init__()
        visual = clip_model.visual
        if getattr(visual, "attn_pool", None) is not None:
            raise ValueError("TokenTailWithAdapters needs a ViT tower without attentional pooling "
                             "(CoCa-style towers are not supported); train without token adapters")
        blocks = visual.transformer.resblocks
        if not 1 <= n_blocks <= len(blocks):
            raise ValueError(f"n_blocks must be in 1..{len(blocks)}, got {n_blocks}")
        for blk in blocks[-n_blocks:]:
            if not all(hasattr(blk, a) for a in ("ln_1", "attention", "ls_1", "ln_2", "mlp", "ls_2")):
                raise ValueError(f"unsupported vision block type {type(blk).__name__}; use a standard open_clip ViT")
        if visual.pool_type not in VISION_POOLS:
            raise ValueError(f"unsupported pool_type {visual.pool_type!r}; expected one of {sorted(VISION_POOLS)}")
        # Deep copies: freezing here must not change the caller's CLIP model.
        self.blocks = _freeze(copy.deepcopy(nn.ModuleList(blocks[-n_blocks:])))
        self.ln_post = _freeze(copy.deepcopy(visual.ln_post))
        proj = visual.proj
        self.proj = None if proj is None else nn.Parameter(proj.detach().clone(), requires_grad=False)
        self.batch_first = getattr(visual.transformer, "batch_first", True)
        self.pool_type = visual.pool_type
        self.final_ln_after_pool = bool(getattr(visual, "final_ln_after_pool", False))
        width = visual.transformer.width
        self.attn_adapters = nn.ModuleList(EmbeddingAdapter(width, bottleneck) for _ in range(n_blocks))
        self.mlp_adapters = nn.ModuleList(EmbeddingAdapter(width, bottleneck) for _ in range(n_blocks))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = tokens  # (N, L, W)
        if not self.batch_first:
            x = x.transpose(0, 1)  # (L, N, W): the blocks expect sequence-first here
        for blk, a_attn, a_mlp in zip(self.blocks, self.attn_adapters, self.mlp_adapters):
            # Houlsby placement: the adapter acts on each sublayer's output, inside the residual.
            x = x + a_attn(blk.ls_1(blk.attention(q_x=blk.ln_1(x))))
            x = x + a_mlp(blk.ls_2(blk.mlp(blk.ln_2(x))))
        if not self.batch_first:
            x = x.transpose(0, 1)  # (N, L, W)
        pool = VISION_POOLS[self.pool_type]
        pooled = self.ln_post(pool(x)) if self.final_ln_after_pool else pool(self.ln_post(x))  # (N, W)
        return pooled @ self.proj if self.proj is not None else pooled  # (N, D)


def _eot_argmax(ids: torch.Tensor, eos_id: int | None) -> torch.Tensor:
    return ids.argmax(dim=-1)  # CLIP BPE: the end-of-text id is the largest id in the vocabulary


def _eot_eos(ids: torch.Tensor, eos_id: int | None) -> torch.Tensor:
    return (ids == eos_id).int().argmax(dim=-1)


# Where the sentence embedding is read, as open_clip's text_global_pool does.
TEXT_POOLS = {"argmax": _eot_argmax, "eos": _eot_eos}


class TextPromptLearner(nn.Module):
    """CoOp context: n_ctx learned vectors after SOT, frozen text tower: token ids (S, L) -> (S, D).

    With `init_ids` (n_ctx token ids) the context starts as their token embeddings, and the output
    then equals `clip_model.encode_text` of [SOT, *init_ids, rest of the sentence] exactly (test).
    Without it, the context starts as N(0, 0.02) like CoOp: no token sequence gives that output.
    The sentence is shifted right by n_ctx; the last n_ctx positions (padding) are dropped, so every
    sentence must end at least n_ctx positions before the context length.
    `token_ids`/`class_of` stored here let `forward()` run without arguments; `class_of` (S,) maps
    each sentence to its class and then the result is the L2-normalised class mean (C, D).
    """

    def __init__(self, clip_model: nn.Module, n_ctx: int = 4, init_ids: torch.Tensor | None = None,
                 token_ids: torch.Tensor | None = None, class_of: torch.Tensor | None = None):
        super().__init__()
        if clip_model.text_pool_type not in TEXT_POOLS:
            raise ValueError(f"unsupported text pool {clip_model.text_pool_type!r}; "
                             f"expected one of {sorted(TEXT_POOLS)}")
        self.n_ctx = n_ctx
        self.pool = TEXT_POOLS[clip_model.text_pool_type]
        self.eos_id = getattr(clip_model, "text_eos_id", None)
        self.token_embedding = _freeze(copy.deepcopy(clip_model.token_embedding))
        self.transformer = _freeze(copy.deepcopy(clip_model.transformer))
        self.ln_final = _freeze(copy.deepcopy(clip_model.ln_final))
        self.register_buffer("positional_embedding", clip_model.positional_embedding.detach().clone())
        self.register_buffer("attn_mask", clip_model.attn_mask, persistent=False)
        proj = clip_model.text_projection  # a Parameter (W, D), an nn.Linear, or None
        if isinstance(proj, nn.Module):
            self.text_projection = _freeze(copy.deepcopy(proj))
        elif proj is not None:
            self.text_projection = nn.Parameter(proj.detach().clone(), requires_grad=False)
        else:
            self.text_projection = None
        width = self.token_embedding.embedding_dim
        if init_ids is not None:
            if init_ids.shape != (n_ctx,):
                raise ValueError(f"init_ids must hold n_ctx={n_ctx} token ids, got shape {tuple(init_ids.shape)}")
            ctx = self.token_embedding(init_ids).detach().clone()  # (n_ctx, W)
        else:
            ctx = torch.randn(n_ctx, width) * 0.02
        self.ctx = nn.Parameter(ctx)
        self.register_buffer("token_ids", token_ids)
        self.register_buffer("class_of", class_of)

    def forward(self, token_ids: torch.Tensor | None = None) -> torch.Tensor:
        ids = self.token_ids if token_ids is None else token_ids  # (S, L) int64
        if ids is None:
            raise ValueError("no token ids: pass them here or at construction")
        s, length = ids.shape
        eot = self.pool(ids, self.eos_id)  # (S,) position of the pooled token before the shift
        if int(eot.max()) + self.n_ctx >= length:
            raise ValueError(f"a sentence is too long to insert {self.n_ctx} context vectors; "
                             "shorten it or lower n_ctx")
        emb = self.token_embedding(ids)  # (S, L, W)
        ctx = self.ctx.unsqueeze(0).expand(s, -1, -1)  # (S, n_ctx, W)
        x = torch.cat([emb[:, :1], ctx, emb[:, 1:length - self.n_ctx]], dim=1)  # (S, L, W)
        x = x + self.positional_embedding[:length]
        mask = None if self.attn_mask is None else self.attn_mask[:length, :length]  # ids may be trimmed
        x = self.transformer(x, attn_mask=mask)
        x = self.ln_final(x)
        pooled = x[torch.arange(s, device=x.device), eot + self.n_ctx]  # (S, W)
        if isinstance(self.text_projection, nn.Module):
            pooled = self.text_projection(pooled)
        elif self.text_projection is not None:
            pooled = pooled @ self.text_projection  # (S, D)
        if token_ids is not None or self.class_of is None:
            return pooled
        return _class_mean(F.normalize(pooled, dim=-1), self.class_of)  # (C, D)


def _class_mean(z: torch.Tensor, class_of: torch.Tensor) -> torch.Tensor:
    """Mean of L2-normalised sentence embeddings per class, renormalised: (S, D), (S,) -> (C, D)."""
    n_classes = int(class_of.max()) + 1
    total = z.new_zeros(n_classes, z.shape[1]).index_add(0, class_of, z)  # (C, D)
    return F.normalize(total, dim=-1)  # the mean's direction equals the sum's
