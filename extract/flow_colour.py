"""The colour code of a flow field (`fgm-extract show`): hue is direction, brightness is magnitude.

OpenCV's HSV convention for flow, in image coordinates (x right, y down, as extract/flow.py stores
it): the angle of (u, v) measured from +x towards +y, so on screen it turns clockwise. Hue is that
angle: 0 deg (+x, right) red, 90 deg (+y, down) yellow-green, 180 deg (-x, left) cyan, 270 deg
(-y, up) violet. Saturation is full. Value is |flow| / scale clipped to 1, so no motion is black and
the strongest motion of the scale is full brightness; `flow_scale` picks one scale per entry, so the
panels of one entry compare. OpenCV keeps hue in 0..180 for 8-bit images (degrees halved).
"""

from __future__ import annotations

import cv2
import numpy as np

WHEEL_BACKGROUND = 255  # outside the wheel's disc: white, the figure's background


def flow_to_rgb(flow: np.ndarray, scale: float) -> np.ndarray:
    """(2, H, W) flow (u right, v down) -> (H, W, 3) uint8 RGB: hue = direction, value = |flow| / scale."""
    if scale <= 0:
        raise ValueError(f"the magnitude scale must be positive, not {scale}")
    u, v = np.asarray(flow, dtype=np.float32)  # (H, W) each
    mag, angle = cv2.cartToPolar(u, v, angleInDegrees=True)  # angle from +x towards +y, 0..360
    hsv = np.empty((*u.shape, 3), np.uint8)
    hsv[..., 0] = np.round(angle / 2.0).astype(np.int32) % 180  # 360 deg rounds to 180, which is 0
    hsv[..., 1] = 255
    hsv[..., 2] = np.round(np.clip(mag / scale, 0.0, 1.0) * 255.0).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def flow_scale(fields: np.ndarray) -> float:
    """(Tf, 2, G, G) fields -> the largest vector length among them (1.0 when all are zero): full value."""
    fields = np.asarray(fields, dtype=np.float32)
    largest = float(np.sqrt((fields ** 2).sum(axis=1)).max()) if fields.size else 0.0
    return largest if largest > 0 else 1.0


def colour_wheel(size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB legend: each point of the disc coloured as a flow from the centre to it."""
    centre = (size - 1) / 2.0
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) - centre  # image coordinates: y grows downwards
    wheel = flow_to_rgb(np.stack([x, y]), scale=centre)  # the rim is full value
    wheel[np.hypot(x, y) > centre] = WHEEL_BACKGROUND
    return wheel


def direction_colours(bins: int) -> np.ndarray:
    """(bins, 3) float RGB in 0..1 of the orientation bins of `extract.flow.flow_histogram`, at full value.

    That histogram counts angles counter-clockwise on screen (bin b centred on b * 360 / bins degrees,
    2 of 8 is up); as a flow vector in image coordinates that direction is (cos a, -sin a).
    """
    a = np.arange(bins) * (2.0 * np.pi / bins)
    unit = np.stack([np.cos(a), -np.sin(a)])[:, None, :]  # (2, 1, bins)
    return flow_to_rgb(unit, scale=1.0)[0].astype(np.float64) / 255.0
