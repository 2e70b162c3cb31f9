"""`fgm-extract show`: the flow colour code's known answers, and a square moving right drawn red on black."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from extract.cli import dispatch
from extract.flow_colour import colour_wheel, direction_colours, flow_scale, flow_to_rgb
from extract.inspect_cli import show_app
from extract.show import default_png, load_view, pick_columns, render
from fgm_common.store import FRAME_INDEX, FeatureStore

from tests.extract.cli_helpers import flat, write_mp4

KEY = "right/square.mp4"
W, H, SIDE, X0, Y0, DX, N = 128, 96, 36, 10, 12, 3, 24  # the square's top left at frame i: (X0 + DX * i, Y0)


def hue_value(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 3) uint8 RGB -> OpenCV hue in degrees (0..360) and value (0..255)."""
    hsv = cv2.cvtColor(np.asarray(rgb, np.uint8).reshape(-1, 1, 3), cv2.COLOR_RGB2HSV_FULL)[:, 0]
    return hsv[:, 0].astype(np.float64) * 360.0 / 256.0, hsv[:, 2].astype(np.float64)


def one(u: float, v: float, scale: float = 1.0) -> np.ndarray:
    return flow_to_rgb(np.array([u, v], np.float32).reshape(2, 1, 1), scale)[0, 0]


# ---- the colour code ---------------------------------------------------------------------------------

def test_colour_of_known_flows():
    assert one(1, 0).tolist() == [255, 0, 0]  # +x: hue 0, red
    assert one(0, 1).tolist() in ([127, 255, 0], [128, 255, 0])  # +y (down): hue 90 deg, yellow-green
    assert one(-1, 0).tolist() == [0, 255, 255]  # -x: hue 180 deg, cyan
    assert one(0, -1).tolist() in ([127, 0, 255], [128, 0, 255])  # -y (up): hue 270 deg, violet
    assert one(0, 0).tolist() == [0, 0, 0]  # no motion: black
    assert one(0.5, 0).tolist() == [128, 0, 0] and one(3, 0, scale=2).tolist() == [255, 0, 0]  # value, clipped
    with pytest.raises(ValueError):
        one(1, 0, scale=0)


def test_scale_wheel_and_histogram_colours():
    fields = np.zeros((2, 2, 4, 4), np.float32)
    fields[1, :, 2, 3] = (3, 4)
    assert flow_scale(fields) == pytest.approx(5.0) and flow_scale(np.zeros_like(fields)) == 1.0
    wheel = colour_wheel(41)
    assert wheel[20, 40].tolist() == [255, 0, 0] and wheel[40, 20].tolist() == one(0, 1).tolist()
    assert wheel[20, 20].tolist() == [0, 0, 0] and wheel[0, 0].tolist() == [255, 255, 255]  # centre, outside
    colours = np.round(direction_colours(8) * 255).astype(int)
    for b, (u, v) in {0: (1, 0), 2: (0, -1), 4: (-1, 0), 6: (0, 1)}.items():  # flow_histogram: bin 2 is up
        assert colours[b].tolist() == one(u, v).tolist(), b


def test_default_png_and_columns():
    assert str(default_png("walk/a clip#1000-2000.mp4")) == "walk_a_clip_1000-2000.mp4.png"
    assert pick_columns(16, 16) == list(range(16)) and pick_columns(16, 4) == [0, 5, 10, 15]
    assert pick_columns(1, 8) == [0]


# ---- a square moving right ---------------------------------------------------------------------------

def square_video(path) -> None:
    """N frames (H, W): a textured square moving DX px right per frame over a still textured background."""
    rng = np.random.default_rng(0)

    def texture(h: int, w: int) -> np.ndarray:  # blurred noise: texture flow can follow through mp4v
        return cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 1.5)

    background = 0.5 * texture(H, W) + 40
    square = 0.8 * texture(SIDE, SIDE) + 60
    frames = []
    for i in range(N):
        frame = background.copy()
        frame[Y0:Y0 + SIDE, X0 + DX * i:X0 + DX * i + SIDE] = square
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    path.parent.mkdir(parents=True)
    write_mp4(path, np.stack(frames))


@pytest.fixture(scope="module")
def moving(tmp_path_factory, run_extract_cli):
    videos = tmp_path_factory.mktemp("show_videos")
    square_video(videos / KEY)
    url = str(tmp_path_factory.mktemp("show_store") / "store.zarr")
    result = run_extract_cli(videos, url, "--flow-pairs", "native", "--flow-grid", "24", frames=4)
    assert result.exit_code == 0, result.output
    return SimpleNamespace(url=url, video=videos / KEY)


def panel_pixels(png: np.ndarray, box: tuple, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """(n, 3) RGB of the PNG inside the video rectangle [x0, x1) x [y0, y1), mapped into a flow panel's box."""
    bx0, by0, bx1, by1 = box
    cols = np.arange(int(np.ceil(bx0 + (bx1 - bx0) * x0 / W)), int(bx0 + (bx1 - bx0) * x1 / W))
    rows = np.arange(int(np.ceil(by0 + (by1 - by0) * y0 / H)), int(by0 + (by1 - by0) * y1 / H))
    return png[np.ix_(rows, cols)].reshape(-1, 3)


def test_show_draws_the_square_red_on_black(moving, tmp_path):
    view = load_view(moving.url, KEY)
    assert view.note == "" and view.frames.shape == (4, H, W, 3) and view.size == (W, H)
    drawn = render(view, tmp_path / "square.png")
    png = cv2.cvtColor(cv2.imread(str(drawn.path)), cv2.COLOR_BGR2RGB)  # (h, w, 3)
    assert drawn.columns == [0, 1, 2, 3] and sorted(drawn.flow_boxes) == [0, 1, 2, 3]
    indices = FeatureStore.open(moving.url).read(KEY, (FRAME_INDEX,))[FRAME_INDEX]
    for k, index in enumerate(indices):
        left = X0 + DX * index  # native pairs: field k is on frame `index`, where the square was
        inside = panel_pixels(png, drawn.flow_boxes[k], left + SIDE / 3, Y0 + SIDE / 3,
                              left + 2 * SIDE / 3, Y0 + 2 * SIDE / 3)
        hue, value = hue_value(inside)
        assert len(hue) > 20 and np.median(value) > 150, (k, np.median(value))
        off = np.minimum(hue, 360 - hue)  # degrees away from +x
        assert np.median(off) < 15 and np.mean(off < 30) > 0.9, (k, np.median(off))
        # the still background, away from the square and its trail: dark
        below = panel_pixels(png, drawn.flow_boxes[k], 4, Y0 + SIDE + 12, W - 4, H - 2)
        assert np.median(hue_value(below)[1]) < 40, k


def test_show_without_the_video_draws_flow_only(moving, tmp_path):
    gone = moving.video.with_suffix(".moved")
    original = moving.video.read_bytes()
    moving.video.rename(gone)
    try:
        view = load_view(moving.url, KEY)
        assert view.frames is None and "the video is gone" in view.note and "flow and histograms only" in view.note
        result = CliRunner().invoke(show_app, [moving.url, KEY, "--out", str(tmp_path / "gone.png")])
        assert result.exit_code == 0, result.output
        assert "the video is gone" in flat(result.output) and (tmp_path / "gone.png").stat().st_size > 1000
    finally:
        gone.rename(moving.video)
    moving.video.write_bytes(original + b"\0")
    assert "the video changed" in load_view(moving.url, KEY).note
    moving.video.write_bytes(original)  # same bytes, a new mtime: the sha256 says it is the file extracted
    assert load_view(moving.url, KEY).frames is not None


def test_show_cli_default_out_and_routing(moving, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["fgm-extract", "show", moving.url, KEY, "--columns", "2"])
    with pytest.raises(SystemExit) as exit_:
        dispatch()
    assert exit_.value.code == 0
    assert f"wrote {default_png(KEY)}" in flat(capsys.readouterr().err)
    assert os.path.getsize(tmp_path / "right_square.mp4.png") > 1000


def test_show_of_an_unknown_key_names_valid_ones(moving, tmp_path):
    result = CliRunner().invoke(show_app, [moving.url, "right/squar.mp4", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and not (tmp_path / "x.png").exists()
    out = flat(result.output)
    assert "no entry 'right/squar.mp4'" in out and KEY in out and "1 in all" in out


def test_boxes_are_drawn_on_the_frames_in_their_track_colour(tmp_path):
    """A grey frame with one box of track 0: its outline is the track's colour, its inside stays grey."""
    from extract.show import TRACK_COLOURS, EntryView
    from fgm_common.config import ExtractConfig
    from fgm_common.store import BOX_TRACK, BOX_VALID, BOXES

    boxes = {BOXES: np.zeros((1, 2, 4), np.float32), BOX_VALID: np.array([[True, False]]),
             BOX_TRACK: np.array([[0, -1]], np.int32)}
    boxes[BOXES][0, 0] = (0.25, 0.25, 0.75, 0.75)
    view = EntryView("grey", "", ExtractConfig(), np.zeros(1), np.zeros((1, 2, 8, 8), np.float32),
                     np.zeros((1, 16), np.float32), np.zeros((1, 2)), (W, H),
                     frames=np.full((1, H, W, 3), 128, np.uint8), boxes=boxes)
    drawn = render(view, tmp_path / "boxes.png")
    png = cv2.cvtColor(cv2.imread(str(drawn.path)), cv2.COLOR_BGR2RGB)
    want = np.array([int(TRACK_COLOURS[0][i:i + 2], 16) for i in (1, 3, 5)])
    edge = panel_pixels(png, drawn.frame_boxes[0], 0.25 * W - 1, 0.4 * H, 0.25 * W + 1, 0.6 * H)  # left side
    assert np.abs(edge.astype(int) - want).sum(axis=1).min() < 60
    inside = panel_pixels(png, drawn.frame_boxes[0], 0.4 * W, 0.4 * H, 0.6 * W, 0.6 * H)
    assert np.abs(inside.astype(int) - 128).max() < 10
