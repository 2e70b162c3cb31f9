"""Loss terms (Eq. 1, 2, 11, context prior, Eq. 13-14), their weighted total, and PriorState."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from train.parts.heads import STREAM_HEADS

# EMA momentum of the running class-mean motion m_hat (Eq. 11).
MOTION_MOMENTUM = 0.9
# Temperature of the contrastive visual-motion alignment (Eq. 2), as in CLIP-style InfoNCE.
ALIGN_TAU = 0.1


class PriorState(nn.Module):
    """Training-set statistics the prior losses read; buffers only, so it rides in checkpoints.

    m_hat (C, T, Dm): running class mean of detached m_aligned; seen (C,): class has a mean yet;
    cluster_of (N,): cluster of each dataset index, -1 where unknown (empty before set_clusters).
    Updates happen only in training mode: the trainer calls state.train()/state.eval() with the model.
    """

    def __init__(self, n_classes: int, n_frames: int, motion_dim: int, momentum: float = MOTION_MOMENTUM):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("m_hat", torch.zeros(n_classes, n_frames, motion_dim))
        self.register_buffer("seen", torch.zeros(n_classes, dtype=torch.bool))
        self.register_buffer("cluster_of", torch.full((0,), -1, dtype=torch.long))

    @classmethod
    def from_config(cls, cfg) -> "PriorState":
        return cls(cfg.n_classes, cfg.n_frames, cfg.motion_dim)

    @torch.no_grad()
    def update(self, out: dict, batch: dict) -> None:
        """Fold this training batch's per-class mean of out["m_aligned"] (B, T, Dm) into m_hat."""
        if not self.training:
            return
        m = F.normalize(out["m_aligned"].detach().to(self.m_hat.dtype), dim=-1)  # (B, T, Dm) unit
        label = batch["label"].to(self.m_hat.device)  # (B,)
        if m.shape[1:] != self.m_hat.shape[1:]:
            raise ValueError(f"m_aligned steps/dims {tuple(m.shape[1:])} differ from the prior's "
                             f"{tuple(self.m_hat.shape[1:])}: the model and PriorState configs disagree")
        for y in label.unique():
            mean = m[label == y].mean(dim=0)  # (T, Dm)
            if self.seen[y]:
                self.m_hat[y].mul_(self.momentum).add_(mean, alpha=1 - self.momentum)
            else:
                self.m_hat[y] = mean  # first sighting: no zero vector to decay from
                self.seen[y] = True

    def set_clusters(self, clusters: Mapping[int, int] | Sequence[int] | torch.Tensor) -> None:
        """Cluster of each training video by dataset index: {index: cluster} or a dense (N,) array."""
        if isinstance(clusters, Mapping):
            size = max(clusters, default=-1) + 1
            dense = torch.full((size,), -1, dtype=torch.long)
            if clusters:
                dense[torch.tensor(list(clusters.keys()))] = torch.tensor(list(clusters.values()))
        else:
            dense = torch.as_tensor(clusters, dtype=torch.long).reshape(-1)
        self.cluster_of = dense.to(self.seen.device)

    def lookup_clusters(self, index: torch.Tensor) -> torch.Tensor:
        """Cluster of each dataset index (B,) -> (B,), -1 where none is known."""
        index = index.to(self.cluster_of.device)
        known = (index >= 0) & (index < self.cluster_of.numel())
        out = torch.full_like(index, -1)
        out[known] = self.cluster_of[index[known]]
        return out

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # cluster_of's length is the dataset size, unknown at construction: take the saved one.
        key = prefix + "cluster_of"
        if key in state_dict:
            self.cluster_of = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def ce_loss(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Eq. 1: mean cross-entropy of logits (B, C) against labels (B,)."""
    return F.cross_entropy(logits, label)


def align_loss(v_proj: torch.Tensor, m_aligned: torch.Tensor, tau: float = ALIGN_TAU) -> torch.Tensor:
    """Eq. 2 made contrastive: symmetric InfoNCE between each video's visual and motion features, -> ().

    The paper names this term contrastive but writes only its positive part, mean_t ||v_t - m_t||^2,
    which has a trivial minimum (both streams constant). On unit vectors ||a - b||^2 = 2 - 2 cos(a, b),
    so the positive logits below are Eq. 2 up to an affine map; the other videos of the batch are
    the negatives that rule out the collapse. Features are averaged over t per video (unit per step
    first). With a batch of one there are no negatives and the loss is 0.
    """
    a = F.normalize(F.normalize(v_proj, dim=-1).mean(dim=1), dim=-1)  # (B, Dm)
    b = F.normalize(F.normalize(m_aligned, dim=-1).mean(dim=1), dim=-1)  # (B, Dm)
    if len(a) < 2:
        return v_proj.new_zeros(())
    logits = a @ b.T / tau  # (B, B)
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def motion_loss(m_aligned: torch.Tensor, label: torch.Tensor, state: PriorState) -> torch.Tensor:
    """Eq. 11 on unit vectors: mean over samples and t of ||m~_t - m_hat[y, t]||^2 in [0, 4].

    Normalising keeps the term from being won by shrinking the motion features (and from dwarfing
    the cross-entropy while they are large); m_hat is the running class mean of unit features.
    Classes without a mean yet are skipped.
    """
    seen = state.seen[label]  # (B,)
    if not seen.any():
        return m_aligned.new_zeros(())
    target = F.normalize(state.m_hat[label[seen]], dim=-1)  # (B', T, Dm)
    return (F.normalize(m_aligned[seen], dim=-1) - target).pow(2).sum(dim=-1).mean()


def context_loss(scene_p: torch.Tensor, label: torch.Tensor, scene_q: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """KL(q_y || mean_t p_t): scene_p (B, T, K), label (B,), scene_q (C, K) -> (), mean over samples."""
    p = scene_p.mean(dim=1).clamp_min(eps)  # (B, K)
    q = scene_q[label]  # (B, K)
    return (q * (q.clamp_min(eps).log() - p.log())).sum(dim=-1).mean()


def cluster_loss(h: torch.Tensor, clusters: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Eq. 14, hinged: on unit h (B, H) with clusters (B,) (-1 = unknown) -> () >= 0.

    mean ||hi-hj||^2 over same-cluster pairs + mean max(0, margin - ||hi-hj||^2) over the others.
    """
    z = F.normalize(h, dim=-1)
    d = torch.cdist(z, z).pow(2)  # (B, B)
    known = clusters >= 0
    pair = known[:, None] & known[None, :] & ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    same = pair & (clusters[:, None] == clusters[None, :])
    diff = pair & (clusters[:, None] != clusters[None, :])
    loss = h.new_zeros(())
    if same.any():
        loss = loss + d[same].mean()
    if diff.any():
        loss = loss + F.relu(margin - d[diff]).mean()
    return loss


def _heads(out: dict) -> dict:
    """The outputs' heads by name; an output with logits alone is one fused head."""
    return out.get("heads") or {"fused": out["logits"]}


def _ce(out, batch, state, cfg):
    return ce_loss(_heads(out)["fused"], batch["label"])


def _stream(out, batch, state, cfg):
    """Mean cross-entropy of the stream heads (train/parts/heads.py); 0 for a model without them."""
    own = [z for name, z in _heads(out).items() if name in STREAM_HEADS]
    if not own:
        return out["logits"].new_zeros(())
    return sum(ce_loss(z, batch["label"]) for z in own) / len(own)


def _align(out, batch, state, cfg):
    return align_loss(out["v_proj"], out["m_aligned"])


def _motion(out, batch, state, cfg):
    return motion_loss(out["m_aligned"], batch["label"], state)


def _context(out, batch, state, cfg):
    if out.get("scene_p") is None or not out["scene_p"].requires_grad:
        # no context, or frozen features upstream (no adapter): the KL would be a constant
        return out["logits"].new_zeros(())
    return context_loss(out["scene_p"], batch["label"], out["scene_q"])


def _cluster(out, batch, state, cfg):
    if state.cluster_of.numel() == 0:
        return out["h"].new_zeros(())  # before the first k-means refresh
    if "index" not in batch:
        raise KeyError("the cluster loss needs batch['index'] (dataset indices) once clusters are set")
    return cluster_loss(out["h"], state.lookup_clusters(batch["index"]), cfg.cluster_margin)


# name -> (ModelConfig weight field or None for weight 1, term)
LOSS_TERMS = {
    "ce": (None, _ce),
    "stream": ("w_stream", _stream),
    "align": ("w_align", _align),
    "motion": ("w_motion", _motion),
    "context": ("w_context", _context),
    "cluster": ("w_cluster", _cluster),
}


def compute_losses(out: dict, batch: dict, state: PriorState, cfg) -> dict[str, torch.Tensor]:
    """Every term by name plus `total` = ce (of the fused head) + sum of weight * term; a term of weight 0 is 0."""
    losses, total = {}, out["logits"].new_zeros(())
    for name, (weight_field, term) in LOSS_TERMS.items():
        weight = 1.0 if weight_field is None else getattr(cfg, weight_field)
        if weight == 0:
            losses[name] = out["logits"].new_zeros(())
            continue
        losses[name] = term(out, batch, state, cfg)
        total = total + weight * losses[name]
    losses["total"] = total
    return losses
