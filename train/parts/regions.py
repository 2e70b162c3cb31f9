"""Region motion tokens (issue 15, Figure 1a): tracked people and objects become motion tokens beside the global one.

The motion-slot entry "flow_regions" (`REGION_ENCODERS`) keeps today's flow encoder for the global
motion and adds, per flow step, one token per track slot (the flow inside its box, relative to the
global flow) and one per slot pair (relative position, size and motion); a Motion Interactor lets
each step's global token attend over that step's region tokens. Its output projection starts at
zero, so the encoder starts as the plain "flow" one. The batch keys (REGION_*) are named here
because the parts cannot import the fitting code that fills them (train/fitting/regions.py turns
the store's box arrays into K slots per video).
"""

from __future__ import annotations

import torch
from torch import nn

from fgm_common.store import FLOW, FLOW_HIST
from train.parts.motion import TEMPORAL, MotionEncoder

# Batch keys, one row per video: region_hist (Tf, K, Hh), region_box (Tf, K, 4) as (cx, cy, w, h) in
# fractions of the frame, region_valid (Tf, K) (1 where the slot's track has a box, detected or
# interpolated between two detections), region_seen (Tf, K) (1 where detected: region_hist is measured
# only there), region_person (K,), region_aspect () (the frame's width / height)
REGION_HIST, REGION_BOX, REGION_VALID, REGION_PERSON = "region_hist", "region_box", "region_valid", "region_person"
REGION_SEEN, REGION_ASPECT = "region_seen", "region_aspect"
REGION_KEYS = (REGION_HIST, REGION_BOX, REGION_VALID, REGION_SEEN, REGION_PERSON, REGION_ASPECT)
# What every refusal of a store without boxes tells the user to do.
BOXES_HINT = ("extract a store with boxes: `fgm-extract VIDEOS --out NEW_STORE --detector hog` (a new store: the "
              "detector is part of a store's config)")
# Smallest box side taken into a log (fraction of the frame): a degenerate box stays finite.
MIN_SIDE = 1e-3
# Side of the body flow patch (PATCH x PATCH cells per box) and the smallest box height its unit divides by
# (fraction of the frame): a sliver of a box must not turn grid noise into large body-relative motion.
PATCH, MIN_PATCH_HEIGHT = 8, 0.05


def body_patches(flow: torch.Tensor, box: torch.Tensor, aspect: torch.Tensor, side: int = PATCH) -> torch.Tensor:
    """flow (B, Tf, 2, G, G), box (B, Tf, K, 4), aspect (B,) -> each box's body-relative flow (B, Tf, K, 2*side²).

    `flow` is in pixels of the G x G grid, `box` is (cx, cy, w, h) in fractions of the frame, `aspect`
    the frame's width / height. Each of the side x side cells is the mean of 2 x 2 bilinear samples
    (a coarse average: a cell of a box as tall as the grid spans about G / side grid pixels). The
    box's own mean motion is subtracted, leaving where the limbs move relative to the body (the
    histogram keeps the box's motion as a whole); both flow components are then in % of the box's
    height in frame pixels, so a near and a far person making the same gesture give the same patch.
    The grid squeezed the frame to a square, so x-flow is scaled back by the aspect first.
    """
    b, tf, _, g, _ = flow.shape
    k, fine = box.shape[2], 2 * side
    offsets = (torch.arange(fine, device=flow.device, dtype=flow.dtype) + 0.5) / fine - 0.5  # (fine,) box sides
    cx, cy, w, h = box.to(flow.dtype).unbind(-1)  # (B, Tf, K) each
    xs = 2 * (cx[..., None] + offsets * w[..., None]) - 1  # (B, Tf, K, fine) in grid_sample's [-1, 1]
    ys = 2 * (cy[..., None] + offsets * h[..., None]) - 1
    grid = torch.stack(torch.broadcast_tensors(xs[..., None, :], ys[..., :, None]), -1)  # (B, Tf, K, fine, fine, 2)
    grid = grid.reshape(b * tf, k * fine, fine, 2)  # the K boxes stacked along the output's rows
    fields = flow.reshape(b * tf, 2, g, g)
    got = nn.functional.grid_sample(fields, grid, align_corners=False, padding_mode="border")  # (B*Tf, 2, K*fine, fine)
    got = got.view(b * tf, 2, k, fine, fine).transpose(1, 2).reshape(b * tf * k, 2, fine, fine)
    patch = nn.functional.avg_pool2d(got, 2)  # (B*Tf*K, 2, side, side)
    patch = patch - patch.mean((2, 3), keepdim=True)
    unsquash = torch.stack([aspect.to(flow.dtype), torch.ones_like(aspect, dtype=flow.dtype)], -1)  # (B, 2)
    unsquash = unsquash[:, None, None, :].expand(b, tf, k, 2).reshape(-1, 2, 1, 1)  # (B*Tf*K, 2, 1, 1)
    height = h.reshape(-1, 1, 1, 1).clamp_min(MIN_PATCH_HEIGHT) * g  # (B*Tf*K, 1, 1, 1) box height in grid pixels
    return (100 * patch * unsquash / height).view(b, tf, k, -1)  # (B, Tf, K, 2 * side * side)


def _mlp(d_in: int, dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, dim), nn.GELU(), nn.Linear(dim, dim))


class SlotTokens(nn.Module):
    """A token per track slot and step, then the temporal model per slot over time -> (B, Tf, K, Dm).

    Input per slot and step: its flow histogram minus the frame's (motion relative to the global
    motion; zero where the box is interpolated, as the store measured no histogram there), its body
    flow patch (`body_patches`: where in the box the limbs move, which a histogram cannot say), its
    box (cx, cy, w, h), log area, whether the detector saw it, and the slot's person flag (objects and
    people share the MLP, the flag tells them apart). A step where the slot has no box enters the
    temporal model as a zero vector, and the interactor never attends to it.
    """

    def __init__(self, hist_dim: int, dim: int, temporal: str, max_len: int, dropout: float):
        super().__init__()
        self.embed = _mlp(hist_dim + 2 * PATCH * PATCH + 7, dim)
        self.temporal = TEMPORAL[temporal](dim, max_len, dropout)

    def forward(self, hist: torch.Tensor, global_hist: torch.Tensor, flow: torch.Tensor, box: torch.Tensor,
                aspect: torch.Tensor, valid: torch.Tensor, seen: torch.Tensor, person: torch.Tensor) -> torch.Tensor:
        b, tf, k = valid.shape
        keep = valid.unsqueeze(-1).to(hist.dtype)  # (B, Tf, K, 1)
        seen = seen.unsqueeze(-1).to(hist.dtype)  # (B, Tf, K, 1)
        relative = (hist - global_hist.unsqueeze(2)) * seen  # (B, Tf, K, Hh)
        patch = body_patches(flow, box, aspect).to(hist.dtype)  # (B, Tf, K, 2 * PATCH * PATCH)
        log_area = box[..., 2:].clamp_min(MIN_SIDE).log().sum(-1, keepdim=True)  # (B, Tf, K, 1)
        flag = person[:, None, :, None].expand(b, tf, k, 1)  # (B, Tf, K, 1)
        x = torch.cat([relative, patch, box, log_area, seen, flag], -1) * keep  # (B, Tf, K, Hh + 2P² + 7)
        x = self.embed(x) * keep  # (B, Tf, K, Dm)
        x = x.transpose(1, 2).reshape(b * k, tf, -1)  # (B*K, Tf, Dm): each slot over time
        return self.temporal(x).view(b, k, tf, -1).transpose(1, 2)  # (B, Tf, K, Dm)


class PairTokens(nn.Module):
    """A token per slot pair i < j and step: (B, Tf, P, Dm) and its validity (B, Tf, P), P = K(K-1)/2.

    Input: relative position (cx_i - cx_j, cy_i - cy_j), log size ratios (w_i/w_j, h_i/h_j),
    relative motion (hist_i - hist_j, zero unless the detector saw both) and the two person flags;
    valid where both slots have a box.
    """

    def __init__(self, hist_dim: int, dim: int):
        super().__init__()
        self.embed = _mlp(hist_dim + 6, dim)

    def forward(self, hist: torch.Tensor, box: torch.Tensor, valid: torch.Tensor, seen: torch.Tensor,
                person: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, tf, k = valid.shape
        i, j = torch.triu_indices(k, k, 1, device=box.device)  # (P,) each
        log_size = box[..., 2:].clamp_min(MIN_SIDE).log()  # (B, Tf, K, 2)
        flags = torch.stack([person[:, i], person[:, j]], -1)[:, None].expand(b, tf, len(i), 2)  # (B, Tf, P, 2)
        measured = (seen[..., i] * seen[..., j]).unsqueeze(-1).to(hist.dtype)  # (B, Tf, P, 1)
        x = torch.cat([box[..., i, :2] - box[..., j, :2], log_size[..., i, :] - log_size[..., j, :],
                       (hist[..., i, :] - hist[..., j, :]) * measured, flags], -1)  # (B, Tf, P, Hh + 6)
        both = valid[..., i] & valid[..., j]  # (B, Tf, P)
        return self.embed(x * both.unsqueeze(-1).to(x.dtype)), both


class MotionInteractor(nn.Module):
    """Figure 1a's Motion Interactor: each step's global token attends over that step's region tokens.

    g (B, Tf, Dm), tokens (B, Tf, N, Dm), valid (B, Tf, N) bool -> g + out(attended) (B, Tf, Dm).
    A learned null token is always attended to, so a step without any region gives a finite output;
    `out` is zero-initialised, so an untrained interactor returns g exactly.
    """

    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.null = nn.Parameter(torch.randn(dim) * 0.02)
        self.norm_q, self.norm_kv = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, g: torch.Tensor, tokens: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b, tf, n, d = tokens.shape
        kv = torch.cat([self.null.expand(b * tf, 1, d), tokens.reshape(b * tf, n, d)], 1)  # (B*Tf, 1+N, Dm)
        kv = self.norm_kv(kv)
        ignore = torch.cat([valid.new_zeros(b * tf, 1), ~valid.reshape(b * tf, n)], 1)  # (B*Tf, 1+N) True = masked
        q = self.norm_q(g).reshape(b * tf, 1, d)  # (B*Tf, 1, Dm): one query per step
        att = self.attn(q, kv, kv, key_padding_mask=ignore, need_weights=False)[0]  # (B*Tf, 1, Dm)
        return g + self.out(att.view(b, tf, d))  # (B, Tf, Dm)


class RegionMotionStream(nn.Module):
    """Registry entry "flow_regions": flow, flow_hist and the REGION_KEYS of the batch -> (B, Tf, Dm).

    `encoder` is FlowStream's own (same name, same weights layout): the global tokens g (B, Tf, Dm).
    """

    def __init__(self, clip_dim: int, hist_dim: int, dim: int, temporal: str, max_len: int, dropout: float):
        super().__init__()
        self.encoder = MotionEncoder(hist_dim, dim, temporal, max_len, dropout)
        self.slots = SlotTokens(hist_dim, dim, temporal, max_len, dropout)
        self.pairs = PairTokens(hist_dim, dim)
        self.interactor = MotionInteractor(dim, dropout=dropout)

    def forward(self, batch: dict) -> torch.Tensor:
        missing = [k for k in REGION_KEYS if k not in batch]
        if missing:
            raise KeyError(f"this model reads tracked boxes and the batch lacks {missing}: load the features with "
                           f"load_features(..., regions=True) from a store with boxes; {BOXES_HINT}")
        g = self.encoder(batch[FLOW], batch[FLOW_HIST])  # (B, Tf, Dm): today's global motion tokens
        hist, box = batch[REGION_HIST], batch[REGION_BOX]  # (B, Tf, K, Hh), (B, Tf, K, 4)
        person = batch[REGION_PERSON]  # (B, K)
        valid = batch[REGION_VALID] > 0.5  # (B, Tf, K) bool; batches carry it as float
        seen = batch[REGION_SEEN].to(hist.dtype) * valid  # (B, Tf, K)
        slots = self.slots(hist, batch[FLOW_HIST], batch[FLOW], box, batch[REGION_ASPECT], valid, seen,
                           person)  # (B, Tf, K, Dm)
        pairs, pair_valid = self.pairs(hist, box, valid, seen, person)  # (B, Tf, P, Dm), (B, Tf, P)
        tokens = torch.cat([slots, pairs], 2)  # (B, Tf, K + P, Dm)
        return self.interactor(g, tokens, torch.cat([valid, pair_valid], 2))  # (B, Tf, Dm)


REGION_ENCODERS = {"flow_regions": RegionMotionStream}
