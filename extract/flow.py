"""Optical flow for stage one: a registry of OpenCV backends and the compact form the store keeps.

The settings are a `FlowConfig` (fgm_common/config.py, nested in ExtractConfig); this module owns
what needs the registry: `resolve_backend` is the one check of a backend name.

Frames are turned to gray and resized so the short side is `compute_size`, flow is computed there,
then stored twice: a (2, G, G) float16 field in pixels of the G x G grid (the model's motion input)
and a (2 * bins,) histogram descriptor. Flow vectors follow OpenCV: flow[..., 0] is x (right),
flow[..., 1] is y (down), in pixels, from the first frame to the second.
"""

from __future__ import annotations

from typing import Callable, Protocol

import cv2
import numpy as np

from fgm_common.config import FlowConfig


class FlowBackend(Protocol):
    """Dense flow: two (H, W) uint8 gray frames -> (H, W, 2) float32 pixels, OpenCV convention."""

    name: str
    device: str  # "cpu" or "cuda"

    def __call__(self, prev_gray: np.ndarray, next_gray: np.ndarray) -> np.ndarray: ...


# The tutorial settings of OpenCV's Farneback, shared by the CPU and CUDA backends so the two
# agree up to implementation: pyr_scale, levels, winsize, iterations, poly_n, poly_sigma.
_FARNEBACK = (0.5, 3, 15, 3, 5, 1.2)


class _CpuCalc:
    """A CPU cv2.DenseOpticalFlow object (DIS, TV-L1) held between calls."""

    device = "cpu"

    def __init__(self, name: str, algo):
        self.name, self._algo = name, algo

    def __call__(self, prev_gray: np.ndarray, next_gray: np.ndarray) -> np.ndarray:
        return self._algo.calc(prev_gray, next_gray, None)  # (H, W, 2) f32


class _Farneback:
    name, device = "farneback", "cpu"

    def __call__(self, prev_gray: np.ndarray, next_gray: np.ndarray) -> np.ndarray:
        return cv2.calcOpticalFlowFarneback(prev_gray, next_gray, None, *_FARNEBACK, 0)


def _cuda_create(cls_name: str, *args):
    """Instance of a cv2.cuda optical-flow class, whichever binding spelling this build exposes."""
    cls = getattr(cv2.cuda, cls_name, None) or getattr(cv2, f"cuda_{cls_name}", None)
    create = getattr(cls, "create", None) or getattr(cv2.cuda, f"{cls_name}_create", None)
    if create is None:
        raise RuntimeError(f"this OpenCV has no cv2.cuda.{cls_name}: build it with cudaoptflow")
    return create(*args)


class _CudaDense:
    """A cv2.cuda.DenseOpticalFlow: upload both frames, calc on the GPU, download the field."""

    device = "cuda"

    def __init__(self, name: str, algo, as_float: bool = False):
        self.name, self._algo, self._as_float = name, algo, as_float

    def __call__(self, prev_gray: np.ndarray, next_gray: np.ndarray) -> np.ndarray:
        frames = [prev_gray, next_gray]
        if self._as_float:  # Brox wants CV_32FC1 in 0..1
            frames = [f.astype(np.float32) / 255.0 for f in frames]
        gpu = [cv2.cuda_GpuMat(f) for f in frames]
        return self._algo.calc(gpu[0], gpu[1], None).download()  # (H, W, 2) f32


class _CudaNvof:
    """NVIDIA optical-flow hardware (Turing and later). The engine is made per frame size, asked for
    a 1x1 output grid (OpenCV upsamples when the chip only has 4x4), and its S10.5 fixed-point
    vectors (CV_16SC2, pixels of the input frame) are divided by 32; a coarser field that still
    comes back is stretched to the frame, which keeps pixel units since vectors are not rescaled."""

    name, device = "cuda-nvof", "cuda"

    def __init__(self) -> None:
        self._engines: dict[tuple[int, int], object] = {}

    def _engine(self, size: tuple[int, int]):
        if size not in self._engines:  # enums from cudaoptflow.hpp: PERF_LEVEL_SLOW 5, GRID_SIZE_1 1
            try:
                self._engines[size] = _cuda_create("NvidiaOpticalFlow_2_0", size, 5, 1)
            except RuntimeError:  # an OpenCV built before Optical Flow SDK 2.0
                self._engines[size] = _cuda_create("NvidiaOpticalFlow_1_0", size, 5)
        return self._engines[size]

    def __call__(self, prev_gray: np.ndarray, next_gray: np.ndarray) -> np.ndarray:
        h, w = prev_gray.shape
        engine = self._engine((w, h))
        # calc(input, reference) gives, per input pixel, the offset to its match in the reference
        flow, _cost = engine.calc(cv2.cuda_GpuMat(prev_gray), cv2.cuda_GpuMat(next_gray), None)
        fixed = flow.download() if isinstance(flow, cv2.cuda.GpuMat) else np.asarray(flow)
        field = fixed.astype(np.float32) / 32.0  # (h/g, w/g, 2) pixels
        if field.shape[:2] != (h, w):
            field = cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR)
        return field


# "dis" (DIS, Kroeger et al. 2016, PRESET_FAST) is the CPU default: fast enough that flow never
# bounds stage one beside a CLIP image tower, even with a pair per frame. MEDIUM (one pyramid level
# finer, denser patches) tracks small patches closer to the truth; pick it when flow quality is
# worth more than time. TV-L1 is for comparisons. Speeds of each, with the command that measured
# them: docs/design-choices.md ("Flow backends").
FLOW_BACKENDS: dict[str, Callable[[], FlowBackend]] = {
    "dis": lambda: _CpuCalc("dis", cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)),
    "dis-medium": lambda: _CpuCalc(
        "dis-medium", cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ),
    "farneback": _Farneback,
    "tvl1": lambda: _CpuCalc("tvl1", cv2.optflow.DualTVL1OpticalFlow_create()),  # OpenCV defaults
    "cuda-farneback": lambda: _CudaDense(
        "cuda-farneback",
        # CUDA order: numLevels, pyrScale, fastPyramids, winSize, numIters, polyN, polySigma, flags
        _cuda_create("FarnebackOpticalFlow", _FARNEBACK[1], _FARNEBACK[0], False, *_FARNEBACK[2:], 0),
    ),
    # Brox settings of OpenCV's GPU optical_flow sample (77 outer iterations, not the default 150)
    "cuda-brox": lambda: _CudaDense(
        "cuda-brox", _cuda_create("BroxOpticalFlow", 0.197, 50.0, 0.8, 10, 77, 10), as_float=True
    ),
    "cuda-tvl1": lambda: _CudaDense("cuda-tvl1", _cuda_create("OpticalFlowDual_TVL1")),
    "cuda-nvof": _CudaNvof,
}


def cuda_available() -> bool:
    """True when this OpenCV was built with CUDA and sees at least one device; never raises."""
    try:
        return cv2.cuda.getCudaEnabledDeviceCount() > 0
    except (AttributeError, cv2.error):
        return False


def resolve_backend(name: str, allow_auto: bool = True) -> str:
    """Registry name for `name`: "auto" -> cuda-farneback with CUDA, else dis; errors say what to do.

    The one check of a backend name. `allow_auto=False` for a name that must already be resolved
    (what a store records and flow is computed with).
    """
    if name == "auto" and allow_auto:
        return "cuda-farneback" if cuda_available() else "dis"
    if name not in FLOW_BACKENDS:
        choices = sorted(FLOW_BACKENDS)
        if name == "auto":
            raise ValueError(f"flow backend 'auto' is not a registry name (call resolve_backend first); "
                             f"choose one of {choices}")
        raise ValueError(f"unknown flow backend {name!r}; choose one of {choices} or 'auto'")
    if name.startswith("cuda-") and not cuda_available():  # registry naming rule: cuda-* need a GPU
        cpu = sorted(n for n in FLOW_BACKENDS if not n.startswith("cuda-"))
        raise RuntimeError(
            f"flow backend {name!r} needs CUDA, but OpenCV here has no CUDA device (PyPI wheels are "
            f"built without CUDA); use one of the CPU backends {cpu} or 'auto'"
        )
    return name


def make_backend(name: str, allow_auto: bool = True) -> FlowBackend:
    """A fresh backend for `name` (resolved here too); make one per worker, backends hold state."""
    return FLOW_BACKENDS[resolve_backend(name, allow_auto)]()


def prepare_gray(rgb: np.ndarray, compute_size: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB (or (H, W) gray) -> (h, w) uint8 gray whose short side is compute_size."""
    gray = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    scale = compute_size / min(h, w)
    if scale == 1.0:
        return np.ascontiguousarray(gray)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # cv2 wants (w, h)
    # INTER_AREA averages when shrinking; enlarging (KTH is 160x120) at an integer factor it repeats
    # pixels, whose blocky steps would read as texture to flow, so enlarging is linear.
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(gray, size, interpolation=interp)


def compact_flow(flow: np.ndarray, grid: int) -> np.ndarray:
    """(h, w, 2) f32 pixels -> (2, grid, grid) f16 in grid pixels: (u * grid / w, v * grid / h)."""
    h, w = flow.shape[:2]
    scaled = flow.astype(np.float32) * np.array([grid / w, grid / h], np.float32)  # (h, w, 2)
    small = cv2.resize(scaled, (grid, grid), interpolation=cv2.INTER_AREA)  # block average
    return np.ascontiguousarray(small.transpose(2, 0, 1)).astype(np.float16)  # (2, grid, grid)


def magnitude_edges(bins: int) -> np.ndarray:
    """(bins - 1,) inner edges of the magnitude histogram, log-spaced from 0.1 to 20 % of frame width.

    Bin 0, [0, 0.1 %), is "still" (0.17 px on a 171 px wide frame); the last, [20 %, inf), is a
    fifth of the frame width or more per step. 8 bins: edges 0.1, 0.24, 0.6, 1.4, 3.4, 8.3, 20."""
    return np.geomspace(0.1, 20.0, bins - 1) if bins > 1 else np.zeros(0)


def flow_histogram(flow: np.ndarray, bins: int, frame_width: int | None = None) -> np.ndarray:
    """(h, w, 2) pixels -> (2 * bins,) f32: [magnitude-weighted orientation | magnitude fractions].

    Magnitudes are in % of the frame width per step (`frame_width`, default w: a crop of the
    field passes its frame's), so any compute size gives the same numbers.
    First half (HOF): orientation bin b is centred on b * 360 / bins degrees counter-clockwise from
    rightward as seen on screen (8 bins: 0 right, 2 up, 4 left, 6 down), each pixel adding its
    magnitude, divided by the pixel count (the half sums to the mean magnitude). Second half: the
    fraction of pixels in each magnitude bin (edges: `magnitude_edges`; sums to 1). Both, because
    HOF says where things move but cannot tell a small part moving fast from a large part moving
    slowly, and is blind to how much of the frame is still; the magnitude fractions say exactly
    that and nothing about direction.
    """
    u, v = flow[..., 0].reshape(-1), flow[..., 1].reshape(-1)  # (N,) each
    # y points down in images: negate v so that "up" is +90 degrees; cartToPolar gives 0..2 pi
    mag, angle = cv2.cartToPolar(u, -v)  # (N, 1) each, ~0.3 degree accurate and SIMD-fast
    mag, angle = mag.ravel() * (100.0 / (frame_width or flow.shape[1])), angle.ravel()  # magnitude in % of width
    step = 2.0 * np.pi / bins
    obin = ((angle + step / 2.0) / step).astype(np.int64) % bins  # bin 0 centred on rightward
    hof = np.bincount(obin, weights=mag, minlength=bins) / mag.size
    edges = magnitude_edges(bins).astype(np.float32)  # f32 like mag, so mag is not upcast
    mbin = np.searchsorted(edges, mag, side="right")
    frac = np.bincount(mbin, minlength=bins) / mag.size
    return np.concatenate([hof, frac]).astype(np.float32)  # (2 * bins,)


class FlowComputer:
    """The one object stage one uses: two RGB frames -> ((2, grid, grid) f16, (2 * bins,) f32), or the field itself."""

    def __init__(self, config: FlowConfig):
        self.config = config
        self.backend = make_backend(config.backend, allow_auto=False)  # the backend the store records

    def __call__(self, prev_rgb: np.ndarray, next_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.summary(self.field(prev_rgb, next_rgb))

    def summary(self, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A field (h, w, 2) -> what the store keeps of it: ((2, grid, grid) f16, (2 * bins,) f32)."""
        return compact_flow(flow, self.config.grid), flow_histogram(flow, self.config.hist_bins)

    def field(self, prev_rgb: np.ndarray, next_rgb: np.ndarray) -> np.ndarray:
        """Two RGB frames (H, W, 3) -> the flow field (h, w, 2) f32 in pixels of the compute size."""
        p = self.config
        prev, nxt = prepare_gray(prev_rgb, p.compute_size), prepare_gray(next_rgb, p.compute_size)
        if prev.shape != nxt.shape:
            raise ValueError(f"frames differ in size: {prev_rgb.shape} vs {next_rgb.shape}")
        if np.array_equal(prev, nxt):
            # Duplicated frames are common (frame-rate conversion, frozen video); report exactly no
            # motion instead of the backend's sub-pixel noise, and save the flow call.
            flow = np.zeros((*prev.shape, 2), np.float32)
        else:
            flow = self.backend(prev, nxt)  # (h, w, 2) f32
        return flow
