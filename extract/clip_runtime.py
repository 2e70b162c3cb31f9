"""Where the frozen CLIP image tower runs: torch, or ONNX Runtime in fp32 or int8 (`CLIP_RUNTIMES`).

A tower maps model input (N, 3, S, S) to embeddings (N, D) and, when asked, the tokens entering the
last vision block (N, L, W), exactly what `FrozenClip.encode_batch` returns. The ONNX towers are
exported from the loaded torch model once per (model, visual weights hash, precision, outputs) and
cached (`export.onnx_tower_path`); on its first batch every non-torch tower is compared with torch
fp32 and refused below its runtime's `min_cosine` (`Tower.check_fidelity`), because int8 error on
pretrained CLIP, whose activations have outliers, can be much larger than on random weights.
docs/clip-runtime.md gives the choices and the measurements.
"""

from __future__ import annotations

import importlib.util
import os
import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:  # torch loads with the towers, not with the registry (extract/api.py checks names before)
    import torch

    from extract.clip_model import FrozenClip

# frames of the first batch, evenly spaced, that each run also encodes in torch fp32: the check costs
# a quarter of a batch instead of a whole one; `fgm-extract fidelity` measures on whole entries
FIDELITY_FRAMES = 8
ONNX_EXTRA_HINT = "pip install 'fgm[onnx]' (onnxruntime and onnx), or use --clip-runtime torch"


class ClipRuntimeError(RuntimeError):
    """The chosen runtime cannot run here, or its output strays too far from torch fp32."""


@dataclass(frozen=True)
class RuntimeSpec:
    """A registered runtime: whether it goes through ONNX, with int8 weights, and the cosine it must keep."""

    name: str
    onnx: bool
    int8: bool
    min_cosine: float  # per-frame cosine to torch fp32 below which extraction refuses


CLIP_RUNTIMES: dict[str, RuntimeSpec] = {
    "torch": RuntimeSpec("torch", onnx=False, int8=False, min_cosine=1.0),
    "onnx": RuntimeSpec("onnx", onnx=True, int8=False, min_cosine=0.999),
    "onnx-int8": RuntimeSpec("onnx-int8", onnx=True, int8=True, min_cosine=0.99),
}


def runtime_spec(name: str) -> RuntimeSpec:
    """The registered runtime `name`; ValueError naming the choices."""
    if name not in CLIP_RUNTIMES:
        raise ValueError(f"clip runtime {name!r} is not one of {sorted(CLIP_RUNTIMES)}")
    return CLIP_RUNTIMES[name]


def require_onnxruntime() -> Any:
    """The onnxruntime module, or ClipRuntimeError naming the optional extra."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ClipRuntimeError(f"the ONNX CLIP runtimes need onnxruntime and onnx: {ONNX_EXTRA_HINT}") from e
    # onnx is checked, not imported: only the export uses it, and importing it costs start-up
    if importlib.util.find_spec("onnx") is None:
        raise ClipRuntimeError(f"the ONNX CLIP runtimes need onnx to export the tower: {ONNX_EXTRA_HINT}")
    return onnxruntime


def cpu_has_vnni() -> bool | None:
    """Whether the CPU has VNNI (int8 dot products without int16 saturation); None where unknown (not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), None)
    except OSError:
        return None
    return None if flags is None else bool({"avx512_vnni", "avx_vnni"} & set(flags))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two (N, D) arrays -> (N,)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12)


def token_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of every token of two (N, L, W) arrays -> (N * L,)."""
    width = a.shape[-1]
    return cosines(a.astype(np.float32).reshape(-1, width), b.reshape(-1, width))


def evenly_spaced(n: int, k: int) -> np.ndarray:
    """Up to k indices of range(n), evenly spaced from the first to the last (all n when k >= n)."""
    return np.unique(np.linspace(0, n - 1, min(k, n)).round().astype(int))


@dataclass
class Tower:
    """An image tower: `encode(pixels, tokens)` as FrozenClip.encode_batch, plus what the store records."""

    spec: RuntimeSpec
    encode: Callable[[torch.Tensor, bool], tuple[np.ndarray, np.ndarray | None]]
    identity: dict = field(default_factory=dict)  # runtime, versions, provider, quantisation, file hash
    parallel: int = 1  # batches `encode` may run at once, each from its own thread
    init_thread: Callable[[], None] = lambda: None  # run once in each of those threads before its first batch

    def check_fidelity(self, clip: FrozenClip, pixels: torch.Tensor, tokens: bool,
                       got: tuple[np.ndarray, np.ndarray | None]) -> None:
        """Compare `got` (this tower on `pixels` (N, 3, S, S)) with torch fp32 on FIDELITY_FRAMES of the N;
        record min/median cosine; refuse below the bar."""
        if not self.spec.onnx:
            return
        pick = evenly_spaced(len(pixels), FIDELITY_FRAMES)
        pixels, got = pixels[pick], (got[0][pick], None if got[1] is None else got[1][pick])
        ref_emb, ref_tok = clip.encode_batch(pixels, tokens=tokens)  # (N, D), (N, L, W)
        cos = cosines(got[0], ref_emb)  # (N,)
        fidelity = {"frames": int(len(cos)), "min_cosine": float(cos.min()), "median_cosine": float(np.median(cos)),
                    "threshold": self.spec.min_cosine}
        if tokens and got[1] is not None:
            fidelity["tokens_min_cosine"] = float(token_cosines(got[1], ref_tok).min())
        self.identity["fidelity"] = fidelity
        worst = min(fidelity["min_cosine"], fidelity.get("tokens_min_cosine", 1.0))
        if worst < self.spec.min_cosine:
            raise ClipRuntimeError(
                f"--clip-runtime {self.spec.name} strays from torch fp32 on the first {len(cos)} frames: "
                f"min cosine {worst:.5f} < {self.spec.min_cosine}; use --clip-runtime onnx or torch"
            )


def torch_tower(clip: FrozenClip, parallel: int = 1, threads: int = 0) -> Tower:
    """open_clip's model in torch fp32, `parallel` batches at once with `threads` intra-op threads each (0: torch's)."""
    import torch

    identity = {"runtime": "torch", "torch": torch.__version__, "sessions": parallel, "threads": threads or None}
    # the thread count is per thread (OpenMP), so the workers' setting leaves the calling thread's as it was
    init = (lambda: torch.set_num_threads(threads)) if threads else (lambda: None)
    # looked up per call, so the FrozenClip stays the one object that encodes (tests patch it there)
    return Tower(CLIP_RUNTIMES["torch"], lambda pixels, tokens: clip.encode_batch(pixels, tokens=tokens), identity,
                 parallel, init)


def cpu_sessions(cores: int | None = None) -> tuple[int, int]:
    """(sessions, intra-op threads each) for a tower on the CPU: one single-threaded session per core, up to 4.

    A session's op ends when its slowest thread does, so a producer thread that takes one core
    stalls a session spread over all of them; separate sessions on separate batches lose only the
    one that shares the core (benchmarks/tower_threads_bench.py, for torch and ONNX). Past 4, memory
    (an ONNX session holds its own copy of the weights) buys little, so more cores go to each
    session's threads.
    """
    cores = cores or os.cpu_count() or 1
    sessions = min(cores, 4)
    return sessions, max(1, cores // sessions)


def onnx_tower(clip: FrozenClip, spec: RuntimeSpec, tokens: bool, cache_dir: str | None = None,
               sessions: int = 1, threads: int = 0) -> Tower:
    """The visual tower of `clip` as `sessions` ONNX Runtime sessions of `threads` threads (0: ORT's default).

    The file is exported and cached on first use. `encode` may be called from `sessions` threads at
    once; each call takes a free session (Tower.parallel says how many).
    """
    ort = require_onnxruntime()
    from extract.onnx_export import QUANTIZATION, onnx_tower_path

    path, file_sha = onnx_tower_path(clip, tokens=tokens, int8=spec.int8, cache_dir=cache_dir)
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    want_cuda = clip.device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers()
    providers = (["CUDAExecutionProvider"] if want_cuda else []) + ["CPUExecutionProvider"]
    with ThreadPoolExecutor(sessions) as pool:  # each loads and optimises the graph on one core: side by side
        made = list(pool.map(lambda _: ort.InferenceSession(str(path), options, providers=providers), range(sessions)))
    free: queue.Queue = queue.Queue()
    for one in made:
        free.put(one)

    def encode(pixels: torch.Tensor, want_tokens: bool) -> tuple[np.ndarray, np.ndarray | None]:
        one = free.get()
        try:
            outputs = one.run(None, {"pixels": pixels.cpu().numpy()})  # [(N, D)] or [(N, D), (N, L, W)]
        finally:
            free.put(one)
        return outputs[0].astype(np.float32), (outputs[1].astype(np.float32) if want_tokens else None)

    identity = {
        "runtime": spec.name, "onnxruntime": ort.__version__, "provider": made[0].get_providers()[0],
        "sessions": sessions, "threads": threads or None,
        "quantization": QUANTIZATION if spec.int8 else None,
        "cpu_vnni": cpu_has_vnni(),  # int8 kernels differ with it (docs/clip-runtime.md)
        "onnx_file": path.name, "onnx_sha256": file_sha,
    }
    return Tower(spec, encode, identity, parallel=sessions)


def image_tower(runtime: str, clip: FrozenClip, tokens: bool, cache_dir: str | None = None) -> Tower:
    """The tower for a registered runtime name (see CLIP_RUNTIMES); on the CPU as `cpu_sessions()`."""
    spec = runtime_spec(runtime)
    sessions, threads = cpu_sessions() if clip.device == "cpu" else (1, 0)
    if not spec.onnx:
        return torch_tower(clip, sessions, threads)
    return onnx_tower(clip, spec, tokens, cache_dir, sessions, threads)
