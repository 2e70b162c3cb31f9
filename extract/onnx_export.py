"""Export a FrozenClip's image tower to ONNX (fp32 or dynamic int8), cached by the weights' hash.

The file name carries the model, a hash of the visual tower's weights, the precision and the
outputs, so other weights never reuse a file. A sidecar JSON holds the file's sha256; a cached file
whose bytes no longer match is rebuilt, never run. Exporting needs no network: it traces the model
already loaded. Files are written under a temporary name and renamed, so an interrupted export
leaves nothing that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path

import torch

from extract.clip_model import FrozenClip, file_sha256, input_size, last_vision_block, state_sha256
from fgm_common.cache import cache_root

OPSET = 17
# onnxruntime.quantization.quantize_dynamic's settings for onnx-int8: int8 weights per output channel
# (more faithful where pretrained weights have outlier channels); only MatMul/Gemm, because an int8
# patch-embedding Conv (ConvInteger) ran slower than the fp32 one; 7-bit weights (reduce_range), because
# on CPUs without VNNI ORT's u8s8 kernel (AVX2 vpmaddubsw) saturates pairs of 8-bit products in int16:
# there full 8-bit weights kept min cosine 0.986 on real frames, 7-bit ones 0.9997 (docs/clip-runtime.md)
QUANTIZATION = {"method": "onnxruntime.quantization.quantize_dynamic", "weight_type": "QInt8",
                "per_channel": True, "reduce_range": True, "op_types": ["MatMul", "Gemm"]}
QUANT_TAG = "int8-" + hashlib.sha256(json.dumps(QUANTIZATION, sort_keys=True).encode()).hexdigest()[:6]  # file name


def onnx_root(cache_dir: str | None = None) -> Path:
    """Where exported towers live: the fgm cache (fgm_common/cache.py), then /onnx."""
    return cache_root(cache_dir) / "onnx"


class _Visual(torch.nn.Module):
    """pixels (N, 3, S, S) -> embedding (N, D) [, tokens entering the last vision block (N, L, W)]."""

    def __init__(self, model: torch.nn.Module, tokens: bool):
        super().__init__()
        self.model, self.tokens = model, tokens

    def forward(self, pixels: torch.Tensor):
        captured: list[torch.Tensor] = []
        handle = last_vision_block(self.model).register_forward_pre_hook(lambda _m, a: captured.append(a[0])) \
            if self.tokens else None
        try:
            emb = self.model.encode_image(pixels)  # (N, D)
        finally:
            if handle is not None:
                handle.remove()
        return (emb, captured[0]) if self.tokens else emb


def _export(clip: FrozenClip, tokens: bool, path: Path) -> None:
    size = input_size(clip.model)
    example = torch.zeros(2, 3, size, size, device=clip.device)
    names = ["embedding", "tokens"] if tokens else ["embedding"]
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # nn.MultiheadAttention's inference fast path is a fused op the ONNX exporter cannot translate
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on constants, its deprecation: not the user's
            torch.onnx.export(_Visual(clip.model, tokens).eval(), (example,), str(path), input_names=["pixels"],
                              output_names=names, dynamic_axes={n: {0: "n"} for n in ["pixels", *names]},
                              opset_version=OPSET, dynamo=False)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def quantize(src: Path, dst: Path, settings: dict = QUANTIZATION) -> None:
    """Write `src` with int8 weights to `dst` by quantize_dynamic under `settings` (QUANTIZATION's keys)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(logging.ERROR)  # its advice to pre-process the graph is for its developers
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType[settings["weight_type"]],
                         per_channel=settings.get("per_channel", False),
                         reduce_range=settings.get("reduce_range", False),
                         op_types_to_quantize=settings.get("op_types"))
    finally:
        root_logger.setLevel(level)


def weights_key(clip: FrozenClip) -> str:
    """16 hex digits naming the weights: the hash load_clip already took (random or file), else the visual tower's."""
    known = clip.identity.get("weights_sha256") or clip.identity.get("file_sha256")
    return (known or state_sha256(clip.model.visual))[:16]


def onnx_tower_path(clip: FrozenClip, tokens: bool, int8: bool, cache_dir: str | None = None) -> tuple[Path, str]:
    """(path, sha256) of the ONNX tower for `clip`, exported (and quantised) now unless a verified copy is cached."""
    weights = weights_key(clip)
    precision, outputs = QUANT_TAG if int8 else "fp32", "tokens" if tokens else "emb"
    stem = f"{clip.name.replace('/', '_')}-{weights}-{precision}-{outputs}-op{OPSET}"
    root = onnx_root(cache_dir)
    path, sidecar = root / f"{stem}.onnx", root / f"{stem}.json"
    if path.is_file() and sidecar.is_file():
        recorded = json.loads(sidecar.read_text()).get("sha256")
        if recorded == file_sha256(path):
            return path, recorded
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{stem}.{os.getpid()}.tmp.onnx"
    temps = [tmp]  # all removed at the end, whatever fails
    try:
        _export(clip, tokens, tmp)
        if int8:
            fp32, tmp = tmp, root / f".{stem}.{os.getpid()}.tmp-int8.onnx"
            temps.append(tmp)
            quantize(fp32, tmp)
        digest = file_sha256(tmp)
        os.replace(tmp, path)
    finally:
        for t in temps:
            t.unlink(missing_ok=True)
    sidecar.write_text(json.dumps({"sha256": digest, "model": clip.name, "visual_weights": weights,
                                   "quantization": QUANTIZATION if int8 else None, "tokens": tokens,
                                   "opset": OPSET, "torch": torch.__version__}))
    return path, digest
