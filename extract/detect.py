"""People (and objects) in a frame: the `DETECTORS` registry, each mapping an RGB frame to scored boxes.

The paper's first stage (Fig. 1a) finds humans and objects in every frame. `hog` is OpenCV's own
HOG people detector: trained weights that ship with OpenCV, so it works offline everywhere,
persons only. Boxes are normalised to the frame, (x0, y0, x1, y1) in [0, 1], so they mean the same
whatever resolution a video has. A registered factory takes the store's `DetectConfig` and gives
a Detector; fgm-extract's `--detector` picks it (extract/produce.py runs it on every sampled frame,
extract/tracks.py links its boxes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import hashlib

import cv2
import numpy as np

from fgm_common.config import DetectConfig
from fgm_common.store import PERSON_CLASS

PERSON = PERSON_CLASS  # the store's class index of a person; object classes of a detector that has them follow

DETECTORS: dict[str, Callable[[DetectConfig, str], "Detector"]] = {}  # name -> factory(config, device)
# name -> check(config) -> config, for detectors whose weights are looked up (checked_config)
DETECTOR_CHECKS: dict[str, Callable[[DetectConfig], DetectConfig]] = {}


def register_detector(name: str, check: Callable[[DetectConfig], DetectConfig] | None = None) -> Callable:
    def add(factory: Callable[[DetectConfig, str], Detector]) -> Callable[[DetectConfig, str], Detector]:
        DETECTORS[name] = factory
        if check is not None:
            DETECTOR_CHECKS[name] = check
        return factory

    return add


def check_name(name: str) -> None:
    """ValueError naming the choices unless `name` is a registered detector or "none"."""
    if name != "none" and name not in DETECTORS:
        raise ValueError(f"--detector {name!r} is not one of {['none'] + sorted(DETECTORS)}")


def checked_config(config: DetectConfig) -> DetectConfig:
    """`config` once its detector's weights are known to be there (a local file's sha256 filled in); raises
    what the detector raises for unavailable weights, before anything runs. A detector without a check passes."""
    check_name(config.name)
    check = DETECTOR_CHECKS.get(config.name)
    return check(config) if check is not None else config


def make_detector(config: DetectConfig | str, device: str = "cpu") -> Detector:
    """The registered detector a DetectConfig (or a bare name, default settings) asks for; ValueError naming the choices.

    `device` ("cpu", "cuda" or "auto") is where a torch detector runs, as CLIP's --device; OpenCV's HOG
    runs on the CPU whatever it says.
    """
    config = DetectConfig(name=config) if isinstance(config, str) else config
    check_name(config.name)
    if not config.enabled:
        raise ValueError("--detector none makes no detector; check DetectConfig.enabled first")
    return DETECTORS[config.name](config, device)


@dataclass(frozen=True)
class Boxes:
    """The boxes found in one frame, best first: xyxy (K, 4) f32 normalised, scores (K,) f32, classes (K,) i64."""

    xyxy: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    @staticmethod
    def empty() -> Boxes:
        return Boxes(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


class Detector:
    """Finds up to `top_k` boxes in an RGB frame (H, W, 3) uint8; `identity()` names the weights that did."""

    top_k: int

    def __call__(self, rgb: np.ndarray) -> Boxes:
        raise NotImplementedError

    def identity(self) -> dict:
        """JSON-safe record of the weights (the store keeps it and refuses others): name, source, and the
        hashes of fgm_common.identity.IDENTITY_HASHES that pin them (weights_sha256, file_sha256)."""
        raise NotImplementedError


@dataclass(frozen=True)
class HogPass:
    """One multi-scale run of the HOG window over the frame scaled to `height` px, with replicated margins.

    The window (64 x 128) holds a person about 96 px tall, so a pass finds people from 96 / `height` of
    the frame's height up to that times SCALE ** (levels - 1). Margins are in frame heights: `border`
    on the top, left and right, `bottom` below. `hit_threshold` is the SVM margin a window needs
    (OpenCV's default 0; below 0 keeps weaker windows). Boxes whose top lies above `min_top` (in frame
    heights, 0 = the frame's top edge) are dropped.
    """

    height: int
    border: float
    bottom: float
    hit_threshold: float
    levels: int = 64  # OpenCV's default: the pyramid runs until the frame is smaller than the window
    min_top: float = -np.inf


# Why these two passes and these numbers: docs/design-choices.md, "People in the frame".
HOG_PASSES = (
    # near: a person about as tall as the frame or taller, cut off by its bottom edge with the head in
    # view; the replicated rows below stand in for the legs. A box reaching far above the frame's top
    # is the whole padded image taken for a person, not someone whose head is in view.
    HogPass(height=96, border=0.5, bottom=0.75, hit_threshold=-0.8, min_top=-0.1),
    # far: a whole person from about half the frame's height (96 / 200) up to its full height
    HogPass(height=200, border=0.2, bottom=0.2, hit_threshold=-0.3, levels=16),
)
SCALE = 1.05  # pyramid step of detectMultiScale
STRIDE = 8  # window stride in px (the HOG block stride)


class HogPeople(Detector):
    """OpenCV's default HOG people detector (a linear SVM over 64 x 128 windows) in `passes`, persons only.

    Each pass (a `HogPass`) scans the grey frame at its own size; the boxes of all passes are merged
    by non-maximum suppression at `nms_iou` and the `top_k` best kept, scored by the SVM margin.
    """

    def __init__(self, top_k: int = 4, passes: tuple[HogPass, ...] = HOG_PASSES, nms_iou: float = 0.4):
        self.top_k, self.passes, self.nms_iou = top_k, passes, nms_iou
        self._svm = np.asarray(cv2.HOGDescriptor_getDefaultPeopleDetector(), np.float32).ravel()
        self._hogs = [self._descriptor(p.levels) for p in passes]

    def _descriptor(self, levels: int) -> cv2.HOGDescriptor:
        # OpenCV's default people descriptor, but for the number of pyramid levels (only settable here)
        hog = cv2.HOGDescriptor((64, 128), (16, 16), (8, 8), (8, 8), 9, 1, -1, cv2.HOGDescriptor_L2Hys, 0.2, True,
                                levels, False)
        hog.setSVMDetector(self._svm)
        return hog

    def identity(self) -> dict:
        # The SVM ships inside OpenCV: its coefficients are what another OpenCV build must match. The
        # passes change the boxes as much as the weights do, so they are hashed with them: a store made
        # with other settings refuses this detector instead of mixing its boxes in.
        settings = repr((self.passes, SCALE, STRIDE, self.nms_iou))
        return {"name": "hog", "source": f"opencv {cv2.__version__} HOGDescriptor_getDefaultPeopleDetector",
                "weights_sha256": hashlib.sha256(self._svm.tobytes() + settings.encode()).hexdigest(),
                "settings": settings}

    def __call__(self, rgb: np.ndarray) -> Boxes:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # (H, W) uint8
        found = [self._scan(gray, p, hog) for p, hog in zip(self.passes, self._hogs)]
        xyxy = np.concatenate([f[0] for f in found])  # (N, 4) normalised, may reach outside [0, 1]
        scores = np.concatenate([f[1] for f in found])  # (N,) SVM margins, may be negative
        if len(scores) == 0:
            return Boxes.empty()
        # NMSBoxes wants scores above its threshold (>= 0); the logistic keeps their order
        keep = cv2.dnn.NMSBoxes(np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], 1).tolist(),
                                (1 / (1 + np.exp(-scores))).tolist(), 0.0, self.nms_iou)
        keep = np.ravel(keep).astype(np.int64)[: self.top_k]  # best first
        return Boxes(np.clip(xyxy[keep], 0.0, 1.0).astype(np.float32), scores[keep].astype(np.float32),
                     np.full(len(keep), PERSON, np.int64))

    @staticmethod
    def _scan(gray: np.ndarray, p: HogPass, hog: cv2.HOGDescriptor) -> tuple[np.ndarray, np.ndarray]:
        """One pass over a grey frame (H, W) -> boxes (N, 4) f32 normalised to the frame, margins (N,) f32."""
        h, w = gray.shape
        size = (max(1, round(w * p.height / h)), p.height)
        small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA if p.height < h else cv2.INTER_LINEAR)
        side, below = round(p.border * p.height), round(p.bottom * p.height)
        padded = cv2.copyMakeBorder(small, side, below, side, side, cv2.BORDER_REPLICATE)
        rects, weights = hog.detectMultiScale(padded, hitThreshold=p.hit_threshold, winStride=(STRIDE, STRIDE),
                                              padding=(16, 16), scale=SCALE)
        x, y, bw, bh = np.asarray(rects, np.float32).reshape(-1, 4).T  # padded pixels
        xyxy = np.stack([x - side, y - side, x + bw - side, y + bh - side], 1) / np.float32([*size, *size])
        ok = xyxy[:, 1] >= p.min_top
        return xyxy[ok], np.ravel(weights).astype(np.float32)[ok]


@register_detector("hog")
def _hog(config: DetectConfig, device: str) -> HogPeople:
    # on the CPU even with a GPU: it is cheap beside CLIP (docs/design-choices.md), and OpenCV's CUDA HOG
    # (CUDA builds only) was never run here to check that its boxes match these
    if config.weights:
        raise ValueError(f"--detector hog uses OpenCV's built-in people SVM; it takes no weights "
                         f"(got {config.weights!r})")
    return HogPeople(top_k=config.top_k)


def _detr_checked(config: DetectConfig) -> DetectConfig:
    from extract.detect_detr import checked  # imports torch, not transformers
    return checked(config)


@register_detector("detr", check=_detr_checked)
def _detr(config: DetectConfig, device: str) -> Detector:
    from extract.detect_detr import make_detr  # transformers is an optional extra, imported on use
    return make_detr(config, device=device)
