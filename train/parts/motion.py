"""Motion stream (Eq. 5, Figure 1b): flow CNN + temporal model, motion decoder, and the visual-TCN ablation."""

from __future__ import annotations

import torch
from torch import nn

from fgm_common.store import CLIP, FLOW, FLOW_HIST


class FlowCNN(nn.Module):
    """Per-pair flow CNN: field (N, 2, G, G) + histogram (N, Hh) -> (N, Dm).

    BatchNorm, not GroupNorm: GroupNorm subtracts each field's own mean per channel group, which
    erases a uniform flow (the global motion direction); BatchNorm keeps differences between
    fields (docs/method.md has the measurement).
    """

    def __init__(self, hist_dim: int, out_dim: int, widths: tuple[int, ...] = (16, 32, 64, 64)):
        super().__init__()
        layers, c_in = [], 2
        for c_out in widths:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        self.out = nn.Linear(c_in + hist_dim, out_dim)

    def forward(self, flow: torch.Tensor, hist: torch.Tensor) -> torch.Tensor:
        x = self.convs(flow).mean(dim=(2, 3))  # (N, C) global average pool
        return self.out(torch.cat([x, hist], dim=-1))  # (N, Dm)


class TemporalConv(nn.Module):
    """Residual stack of 1D temporal convolutions: (B, T, D) -> (B, T, D)."""

    def __init__(self, dim: int, max_len: int, dropout: float, n_layers: int = 2, kernel: int = 3):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(dim, dim, kernel, padding=kernel // 2) for _ in range(n_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(n_layers))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.convs, self.norms):
            y = conv(norm(x).transpose(1, 2)).transpose(1, 2)  # (B, T, D)
            x = x + self.drop(nn.functional.gelu(y))
        return x


class TemporalGRU(nn.Module):
    """Bidirectional GRU, halves concatenated: (B, T, D) -> (B, T, D); D must be even."""

    def __init__(self, dim: int, max_len: int, dropout: float):
        super().__init__()
        if dim % 2:
            raise ValueError(f"motion_dim must be even for the bidirectional GRU, got {dim}")
        self.gru = nn.GRU(dim, dim // 2, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]  # (B, T, D)


class TemporalTransformer(nn.Module):
    """Small pre-LN TransformerEncoder with a learned positional embedding: (B, T, D) -> (B, T, D)."""

    def __init__(self, dim: int, max_len: int, dropout: float, n_layers: int = 2, heads: int = 4):
        super().__init__()
        self.pos = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pos.shape[0]:
            raise ValueError(f"sequence of {x.shape[1]} steps exceeds the positional table ({self.pos.shape[0]})")
        return self.encoder(x + self.pos[: x.shape[1]])  # (B, T, D)


TEMPORAL = {"conv": TemporalConv, "gru": TemporalGRU, "transformer": TemporalTransformer}


class MotionEncoder(nn.Module):
    """Eq. 5: FlowCNN per field, then a temporal model: (B, Tf, 2, G, G), (B, Tf, Hh) -> (B, Tf, Dm)."""

    def __init__(self, hist_dim: int, dim: int, temporal: str = "conv", max_len: int = 64, dropout: float = 0.1):
        super().__init__()
        if temporal not in TEMPORAL:
            raise ValueError(f"unknown temporal model {temporal!r}; choose one of {sorted(TEMPORAL)}")
        self.cnn = FlowCNN(hist_dim, dim)
        self.temporal = TEMPORAL[temporal](dim, max_len, dropout)

    def forward(self, flow: torch.Tensor, hist: torch.Tensor) -> torch.Tensor:
        b, tf = flow.shape[:2]
        x = self.cnn(flow.flatten(0, 1), hist.flatten(0, 1)).view(b, tf, -1)  # (B, Tf, Dm)
        return self.temporal(x)


class MotionDecoderLayer(nn.Module):
    """Pre-LN cross-attention (motion -> visual), self-attention, feed-forward: (B, Tf, Dm), (B, T, Dm)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_s, self.norm_f = (nn.LayerNorm(dim) for _ in range(4))
        self.cross = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))

    def forward(self, m: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        kv = self.norm_kv(vis)
        m = m + self.cross(self.norm_q(m), kv, kv, need_weights=False)[0]
        s = self.norm_s(m)
        m = m + self.self_attn(s, s, s, need_weights=False)[0]
        return m + self.ff(self.norm_f(m))  # (B, Tf, Dm)


class MotionDecoder(nn.Module):
    """Figure 1b: motion tokens attend to visual tokens: m (B, Tf, Dm), visual (B, T, D) -> (B, Tf, Dm)."""

    def __init__(self, dim: int, visual_dim: int, n_layers: int = 1, heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.vis_in = nn.Linear(visual_dim, dim)
        self.layers = nn.ModuleList(MotionDecoderLayer(dim, heads, dropout) for _ in range(n_layers))

    def forward(self, m: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        vis = self.vis_in(visual)  # (B, T, Dm)
        for layer in self.layers:
            m = layer(m, vis)
        return m


class VisualTCN(nn.Module):
    """No-motion ablation: dilated residual temporal convs over visual features: (B, T, D) -> (B, T, Dm)."""

    def __init__(self, visual_dim: int, dim: int, n_layers: int = 3, kernel: int = 3, dropout: float = 0.1):
        super().__init__()
        self.inp = nn.Linear(visual_dim, dim)
        self.convs = nn.ModuleList(
            nn.Conv1d(dim, dim, kernel, padding=(kernel // 2) * 2**i, dilation=2**i) for i in range(n_layers)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        x = self.inp(v).transpose(1, 2)  # (B, Dm, T)
        for conv in self.convs:
            x = x + self.drop(nn.functional.gelu(conv(x)))
        return x.transpose(1, 2)  # (B, T, Dm)


class FlowStream(nn.Module):
    """Registry entry "flow": batch["flow"] (B, Tf, 2, G, G) and batch["flow_hist"] (B, Tf, Hh) -> (B, Tf, Dm)."""

    def __init__(self, clip_dim: int, hist_dim: int, dim: int, temporal: str, max_len: int, dropout: float):
        super().__init__()
        self.encoder = MotionEncoder(hist_dim, dim, temporal, max_len, dropout)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.encoder(batch[FLOW], batch[FLOW_HIST])


class VisualStream(nn.Module):
    """Registry entry "visual_tcn": batch["clip"] (B, T, D) -> (B, T, Dm); flow is never read."""

    def __init__(self, clip_dim: int, hist_dim: int, dim: int, temporal: str, max_len: int, dropout: float):
        super().__init__()
        self.tcn = VisualTCN(clip_dim, dim, dropout=dropout)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.tcn(batch[CLIP])


MOTION_ENCODERS = {"flow": FlowStream, "visual_tcn": VisualStream}
