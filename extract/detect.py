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

DETECTORS: dict[str, Callable[[DetectConfig], "Detector"]] = {}  # name -> factory(config)
# name -> check(config) -> config, for detectors whose weights are looked up (checked_config)
DETECTOR_CHECKS: dict[str, Callable[[DetectConfig], DetectConfig]] = {}


def register_detector(name: str, check: Callable[[DetectConfig], DetectConfig] | None = None) -> Callable:
    def add(factory: Callable[[DetectConfig], Detector]) -> Callable[[DetectConfig], Detector]:
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


def make_detector(config: DetectConfig | str) -> Detector:
    """The registered detector a DetectConfig (or a bare name, default settings) asks for; ValueError naming the choices."""
    config = DetectConfig(name=config) if isinstance(config, str) else config
    check_name(config.name)
    if not config.enabled:
        raise ValueError("--detector none makes no detector; check DetectConfig.enabled first")
    return DETECTORS[config.name](config)


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


class HogPeople(Detector):
    """OpenCV's default HOG people detector (a linear SVM over 64 x 128 windows), persons only.

    The frame is first given a replicated border of `border` x its height on each side: the
    detector's window needs margin around a person, and a person who fills the frame height (arms
    raised above the head) has none. The padded frame is then resized to `width` pixels, which sets
    the smallest person found and the cost.
    """

    def __init__(self, top_k: int = 4, width: int = 240, border: float = 0.5, min_score: float = 0.0,
                 nms_iou: float = 0.4):
        self.top_k, self.width, self.border, self.min_score, self.nms_iou = top_k, width, border, min_score, nms_iou
        self._svm = np.asarray(cv2.HOGDescriptor_getDefaultPeopleDetector(), np.float32).ravel()
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(self._svm)

    def identity(self) -> dict:
        # the SVM ships inside OpenCV: its coefficients' hash is what another OpenCV build must match
        return {"name": "hog", "source": f"opencv {cv2.__version__} HOGDescriptor_getDefaultPeopleDetector",
                "weights_sha256": hashlib.sha256(self._svm.tobytes()).hexdigest()}

    def __call__(self, rgb: np.ndarray) -> Boxes:
        h, w = rgb.shape[:2]
        pad = int(round(self.border * h))
        padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        scale = self.width / padded.shape[1]
        small = cv2.resize(padded, (self.width, max(1, int(round(padded.shape[0] * scale)))),
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        rects, weights = self._hog.detectMultiScale(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), winStride=(8, 8),
                                                    padding=(16, 16), scale=1.05)
        if len(rects) == 0:
            return Boxes.empty()
        scores = np.ravel(weights).astype(np.float32)
        keep = cv2.dnn.NMSBoxes([list(map(int, r)) for r in rects], scores.tolist(), self.min_score, self.nms_iou)
        keep = np.ravel(keep)[: self.top_k] if len(keep) else np.zeros(0, np.int64)  # NMSBoxes: best first
        x, y, bw, bh = (np.asarray(rects, np.float32)[keep] / scale).T  # padded frame's pixels
        xyxy = np.stack([(x - pad) / w, (y - pad) / h, (x + bw - pad) / w, (y + bh - pad) / h], 1)  # (K, 4)
        return Boxes(np.clip(xyxy, 0.0, 1.0).astype(np.float32), scores[keep], np.full(len(keep), PERSON))


@register_detector("hog")
def _hog(config: DetectConfig) -> HogPeople:
    if config.weights:
        raise ValueError(f"--detector hog uses OpenCV's built-in people SVM; it takes no weights "
                         f"(got {config.weights!r})")
    return HogPeople(top_k=config.top_k)


def _detr_checked(config: DetectConfig) -> DetectConfig:
    from extract.detect_detr import checked  # imports torch, not transformers
    return checked(config)


@register_detector("detr", check=_detr_checked)
def _detr(config: DetectConfig) -> Detector:
    from extract.detect_detr import make_detr  # transformers is an optional extra, imported on use
    return make_detr(config)
