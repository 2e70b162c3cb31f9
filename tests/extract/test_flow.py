"""Known-answer tests for extract/flow.py: a textured square moved by a known offset."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from extract import flow as F
from fgm_common.config import FlowConfig

CPU_BACKENDS = sorted(n for n in F.FLOW_BACKENDS if not n.startswith("cuda-"))
CUDA_BACKENDS = sorted(n for n in F.FLOW_BACKENDS if n.startswith("cuda-"))
# TV-L1 runs ~1.3 pairs/s at 224x224 here; a 64 px scene keeps it to a fraction of a second.
SCENE_SIZE = {"tvl1": (64, 24)}


def moving_square(dx: int, dy: int, size: int = 128, side: int = 40, seed: int = 0):
    """Two (size, size) uint8 frames: a noise-textured square moved by (dx, dy) on a noise background.

    Returns the frames and the square's interior (a margin off its edges, where occlusion makes the
    true flow ambiguous) at its first-frame position.
    """
    rng = np.random.default_rng(seed)

    def texture(n: int) -> np.ndarray:  # blurred noise: rich texture, yet smooth enough for pyramids
        return cv2.GaussianBlur(rng.integers(0, 256, (n, n), dtype=np.uint8), (0, 0), 1.0)

    background, patch = texture(size), texture(side)
    y0 = x0 = (size - side) // 2
    first, second = background.copy(), background.copy()
    first[y0 : y0 + side, x0 : x0 + side] = patch
    second[y0 + dy : y0 + dy + side, x0 + dx : x0 + dx + side] = patch
    m = side // 6
    return first, second, (slice(y0 + m, y0 + side - m), slice(x0 + m, x0 + side - m))


def assert_moves(backend, dx: int, dy: int, size: int = 128, side: int = 40) -> None:
    first, second, inside = moving_square(dx, dy, size, side)
    flow = backend(first, second)
    assert flow.shape == (size, size, 2) and flow.dtype == np.float32
    u, v = flow[inside][..., 0].mean(), flow[inside][..., 1].mean()
    # 3 px true motion; DIS FAST undershoots (~2 px), so ask for the sign and at least 1 px
    for got, want in ((u, dx), (v, dy)):
        if want == 0:
            assert abs(got) < 0.5, (backend.name, dx, dy, u, v)
        else:
            assert np.sign(got) == np.sign(want) and abs(got) > 1.0, (backend.name, dx, dy, u, v)


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_every_cpu_backend_sees_the_square_move_right(name):
    backend = F.make_backend(name)
    assert backend.name == name and backend.device == "cpu"
    assert_moves(backend, 3, 0, *SCENE_SIZE.get(name, (128, 40)))


@pytest.mark.parametrize("dx, dy", [(-3, 0), (0, 3), (0, -3)])
def test_default_backend_gets_each_direction(dx, dy):
    assert_moves(F.make_backend("dis"), dx, dy)


def test_identical_frames_give_no_flow():
    first, _, _ = moving_square(3, 0)
    assert np.abs(F.make_backend("dis")(first, first)).max() < 0.05


@pytest.mark.skipif(not F.cuda_available(), reason="OpenCV here has no CUDA device")
@pytest.mark.parametrize("name", CUDA_BACKENDS)
def test_every_cuda_backend_sees_the_square_move(name):
    backend = F.make_backend(name)
    assert backend.name == name and backend.device == "cuda"
    # 256 px: NVIDIA's flow engine has a minimum frame size (its SDK says 160 px wide on some chips)
    for dx, dy in ((3, 0), (0, -3)):
        assert_moves(backend, dx, dy, size=256, side=80)


class _FakeGpuMat:
    """Stands in for cv2.cuda_GpuMat so the CUDA glue runs without a GPU."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def download(self) -> np.ndarray:
        return self.array


def test_cuda_glue_without_a_gpu(monkeypatch):
    # Only the Python around the CUDA calls: Brox's float input, NVOF's S10.5 fixed point (1/32 px)
    # on a 4x4 output grid stretched back to the frame. The real calls run in the skipif test above.
    seen = []

    class FakeDense:
        def calc(self, a, b, flow):
            seen.append(a.array)
            return _FakeGpuMat(np.ones((*a.array.shape, 2), np.float32))

    class FakeNvof:
        def calc(self, a, b, flow):
            h, w = a.array.shape
            fixed = np.zeros((h // 4, w // 4, 2), np.int16)
            fixed[..., 0], fixed[..., 1] = 96, -16  # 3 px right, 0.5 px up
            return _FakeGpuMat(fixed), None

    monkeypatch.setattr(cv2, "cuda_GpuMat", _FakeGpuMat)
    monkeypatch.setattr(cv2.cuda, "GpuMat", _FakeGpuMat)
    frame = np.full((64, 96), 255, np.uint8)
    brox = F._CudaDense("cuda-brox", FakeDense(), as_float=True)
    assert brox(frame, frame).shape == (64, 96, 2)
    assert seen[0].dtype == np.float32 and seen[0].max() == 1.0
    monkeypatch.setattr(F, "_cuda_create", lambda name, *args: FakeNvof())
    flow = F._CudaNvof()(frame, frame)
    assert flow.shape == (64, 96, 2) and flow.dtype == np.float32
    np.testing.assert_allclose(flow[..., 0], 3.0)
    np.testing.assert_allclose(flow[..., 1], -0.5)


def test_compact_flow_rescales_to_grid_pixels():
    flow = np.empty((96, 128, 2), np.float32)
    flow[..., 0], flow[..., 1] = 4.0, -3.0  # 4 px of 128 wide, -3 px of 96 high
    small = F.compact_flow(flow, 64)
    assert small.shape == (2, 64, 64) and small.dtype == np.float16
    np.testing.assert_allclose(small[0], 2.0)  # 4 * 64 / 128
    np.testing.assert_allclose(small[1], -2.0)  # -3 * 64 / 96


def test_compact_flow_keeps_direction_where_it_is():
    flow = np.zeros((64, 128, 2), np.float32)
    flow[:, :64, 0] = 5.0  # left half moves right
    flow[:32, 64:, 1] = -5.0  # top right quarter moves up
    small = F.compact_flow(flow, 16).astype(np.float32)
    np.testing.assert_allclose(small[0, :, :8], 5.0 * 16 / 128)
    np.testing.assert_allclose(small[0, :, 8:], 0.0)
    np.testing.assert_allclose(small[1, :8, 8:], -5.0 * 16 / 64)
    np.testing.assert_allclose(small[1, 8:, :], 0.0)


def constant_field(u: float, v: float, h: int = 96, w: int = 128) -> np.ndarray:
    flow = np.empty((h, w, 2), np.float32)
    flow[..., 0], flow[..., 1] = u, v
    return flow


def test_histogram_orientation_bins():
    bins = 8
    right = F.flow_histogram(constant_field(1.28, 0.0), bins)  # 1.28 px of 128 = 1 % of the width
    assert right.shape == (16,) and right.dtype == np.float32
    np.testing.assert_allclose(right[:bins], np.eye(bins)[0], atol=1e-6)  # all in bin 0, value 1 %
    up = F.flow_histogram(constant_field(0.0, -2.0), bins)  # y points down: negative v is up
    assert int(np.argmax(up[:bins])) == 2
    left = F.flow_histogram(constant_field(-2.0, 0.0), bins)
    down = F.flow_histogram(constant_field(0.0, 2.0), bins)
    assert int(np.argmax(left[:bins])) == 4 and int(np.argmax(down[:bins])) == 6
    for hist in (right, up, left, down):
        assert hist[bins:].sum() == pytest.approx(1.0)


def test_histogram_magnitude_bins_and_resolution_independence():
    bins = 8
    edges = F.magnitude_edges(bins)
    assert edges.shape == (bins - 1,) and np.all(np.diff(edges) > 0)
    still = F.flow_histogram(constant_field(0.0, 0.0), bins)
    np.testing.assert_array_equal(still, np.r_[np.zeros(bins), 1.0, np.zeros(bins - 1)])
    # 5 % of the width per step, at two resolutions: same numbers
    small = F.flow_histogram(constant_field(3.2, 0.0, 48, 64), bins)
    large = F.flow_histogram(constant_field(6.4, 0.0, 96, 128), bins)
    np.testing.assert_allclose(small, large, rtol=1e-6)
    assert small[0] == pytest.approx(5.0) and small[bins + np.searchsorted(edges, 5.0)] == 1.0


def test_prepare_gray_short_side_and_aspect():
    landscape = np.zeros((480, 640, 3), np.uint8)
    assert F.prepare_gray(landscape, 128).shape == (128, 171)
    portrait = np.full((640, 480, 3), 200, np.uint8)
    gray = F.prepare_gray(portrait, 224)
    assert gray.shape == (299, 224) and gray.dtype == np.uint8 and np.all(gray == 200)


def test_prepare_gray_enlarges_smoothly():
    # Small clips (KTH is 160x120) are enlarged; at an integer factor INTER_AREA repeats pixels,
    # whose blocky steps read as texture to flow. A ramp of 3 grey levels per column, doubled,
    # stays strictly increasing only if the resize interpolates.
    ramp = np.repeat((np.arange(80) * 3).astype(np.uint8)[None, :, None], 64, axis=0)
    gray = F.prepare_gray(np.repeat(ramp, 3, axis=2), 128)
    assert gray.shape == (128, 160)
    assert np.all(np.diff(gray[64, 2:-2].astype(int)) > 0)
    assert F.prepare_gray(np.zeros((120, 160, 3), np.uint8), 128).shape == (128, 171)


@pytest.mark.parametrize("name", ["dis", "farneback"])
def test_flow_computer_identical_frames_are_exactly_still(name):
    # Farneback alone returns ~0.08 px of noise on identical frames; the computer must not.
    first, _, _ = moving_square(3, 0)
    rgb = np.repeat(first[..., None], 3, axis=2)
    field, hist = F.FlowComputer(FlowConfig(name, grid=16))(rgb, rgb.copy())
    assert field.shape == (2, 16, 16) and not field.any()
    np.testing.assert_array_equal(hist, np.r_[np.zeros(8), 1.0, np.zeros(7)])


def test_flow_computer_known_answers():
    computer = F.FlowComputer(FlowConfig("dis", compute_size=128, grid=32, hist_bins=8))
    first, second, _ = moving_square(0, -3, size=256, side=80)  # prepared at half size: 1.5 px up
    rgb = [np.repeat(f[..., None], 3, axis=2) for f in (first, second)]
    field, hist = computer(*rgb)
    assert field.shape == (2, 32, 32) and field.dtype == np.float16
    assert hist.shape == (16,) and hist.dtype == np.float32
    inside = field[:, 13:19, 13:19].astype(np.float32)  # the square's centre on the grid
    assert inside[1].mean() < -0.1 and abs(inside[0].mean()) < 0.1
    assert int(np.argmax(hist[:8])) == 2  # up


def test_resolve_backend():
    assert F.resolve_backend("auto") == ("cuda-farneback" if F.cuda_available() else "dis")
    assert F.resolve_backend("farneback") == "farneback"
    with pytest.raises(ValueError, match="dis-medium"):
        F.resolve_backend("raft")


def test_resolve_auto_follows_cuda(monkeypatch):
    monkeypatch.setattr(F, "cuda_available", lambda: True)
    assert F.resolve_backend("auto") == "cuda-farneback"
    monkeypatch.setattr(F, "cuda_available", lambda: False)
    assert F.resolve_backend("auto") == "dis"


@pytest.mark.skipif(F.cuda_available(), reason="checks the no-CUDA message")
@pytest.mark.parametrize("name", CUDA_BACKENDS)
def test_cuda_backend_without_cuda_is_a_clear_error(name):
    with pytest.raises(RuntimeError, match=r"no CUDA.*'dis'"):
        F.make_backend(name)
    with pytest.raises(RuntimeError):
        F.FlowComputer(FlowConfig(name))


def test_flow_computer_needs_a_resolved_registry_name():
    # the store records the backend flow was computed with: never "auto" (sizes: tests/fgm_common/test_config.py)
    with pytest.raises(ValueError, match="resolve_backend"):
        F.FlowComputer(FlowConfig("auto"))
    with pytest.raises(ValueError, match="resolve_backend"):
        F.resolve_backend("auto", allow_auto=False)
    with pytest.raises(ValueError, match="unknown flow backend 'raft'.*dis-medium"):
        F.FlowComputer(FlowConfig("raft"))
    assert F.FlowComputer(FlowConfig("dis")).config == FlowConfig()
