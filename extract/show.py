"""One store entry drawn to a PNG (`fgm-extract show`): sampled frames, colour-coded flow fields, flow histograms.

The store keeps no pixels, so the frames are decoded again from the entry's recorded path and native
indices (extract/video.py), only when the file is the one that was extracted (size and mtime, or its
sha256 when only the mtime moved). Otherwise the flow and histograms are drawn alone and the picture
says why. Columns: frame k of the entry, under it flow field k (`native` pairs: frame k to the next
native frame; `sampled`: frame k to frame k + 1), under that histogram k. Colours: extract/flow_colour.py.
A store made with a detector also has its boxes drawn on the frames, coloured and labelled by track id.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from extract.fingerprint import content_sha256, stat_fingerprint
from extract.flow_colour import colour_wheel, direction_colours, flow_scale, flow_to_rgb
from extract.video import VideoError, open_source
from fgm_common.config import ExtractConfig, is_random_weights
from fgm_common.store import (BOX_TRACK, BOX_VALID, BOXES, FLOW, FLOW_HIST, FLOW_TS, FRAME_INDEX,
                              TIMESTAMPS, Entry, FeatureStore, StoreError)

SUGGESTED_KEYS = 5  # keys an unknown-key error names
MOST_COLUMNS = ExtractConfig.num_frames  # columns drawn at most: every frame of a store sampled by default
PANEL_INCHES = 1.7  # width of one column
DPI = 100
THUMB_WIDTH = 320  # frames are kept at most this wide: a column is PANEL_INCHES * DPI pixels
TRACK_COLOURS = ("#ff3030", "#30d0ff", "#ffd000", "#40ff60", "#ff60ff", "#ffffff")  # by track id, cycled


@dataclass
class EntryView:
    """What `render` draws of one entry: frames (T, h, w, 3) uint8 or None, flow (Tf, 2, G, G) f32 grid px."""

    key: str
    label: str
    config: ExtractConfig
    timestamps: np.ndarray  # (T,) ms from the start of the file
    flow: np.ndarray  # (Tf, 2, G, G)
    hist: np.ndarray  # (Tf, 2 * bins)
    flow_ts: np.ndarray  # (Tf, 2) ms
    size: tuple[int, int]  # (width, height) of the source video
    frames: np.ndarray | None = None  # thumbnails, drawn over the video's own (width, height)
    note: str = ""  # why the frames are missing, or ""
    boxes: dict | None = None  # a detector's store: boxes (T, K, 4) normalised, box_valid, box_track (T, K)


@dataclass
class Drawn:
    """The PNG written, and where each flow panel lies in it: (x0, y0, x1, y1) pixels, y down."""

    path: Path
    columns: list[int]  # entry frame index of each column
    note: str  # why the frames are missing, or ""
    flow_boxes: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)  # flow index -> box
    frame_boxes: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)  # frame index -> box


def default_png(key: str) -> Path:
    """`<key sanitised>.png` in the current directory: every run of characters unsafe in a file name -> '_'."""
    return Path(re.sub(r"[^\w.-]+", "_", key).strip("_.") + ".png")


def find_entry(store: FeatureStore, key: str) -> Entry:
    """The complete entry for `key`; StoreError naming failed/incomplete keys and some valid ones otherwise."""
    complete = store.entries()
    for entry in complete:
        if key in (entry.key, entry.id):
            return entry
    failure = store.failures().get(key)
    if failure:
        raise StoreError(f"{key} failed to extract ({failure.get('reason')}): {failure.get('message')}")
    meta = store.entry_meta(key)
    if meta is not None:
        raise StoreError(f"{key} is incomplete (its run was interrupted); rerun fgm-extract on its videos to "
                         "finish it")
    keys = [e.key for e in complete]
    near = difflib.get_close_matches(key, keys, n=SUGGESTED_KEYS)
    shown = near or keys[:SUGGESTED_KEYS]
    if not shown:
        raise StoreError(f"{store.url} holds no complete entry yet: run fgm-extract first")
    raise StoreError(f"no entry {key!r} in {store.url}; keys are video paths relative to the input root, e.g. "
                     f"{', '.join(shown)} ({len(keys)} in all; `fgm-extract info {store.url}` names some)")


def source_problem(meta: dict) -> str:
    """Why the entry's video cannot give its frames again ("" when it can): gone, or not the file extracted."""
    path = Path(meta.get("path", ""))
    if not path.exists():
        return f"the video is gone ({path} not found)"
    size, mtime = stat_fingerprint(path)
    if size != meta.get("size"):
        return f"the video changed since extraction ({path}: {size} bytes, {meta.get('size')} extracted)"
    if mtime != meta.get("mtime_ns") and content_sha256(path) != meta.get("sha256"):
        return f"the video changed since extraction ({path}: same size, other content)"
    return ""


def load_view(store_url: str, key: str) -> EntryView:
    """Read one entry's arrays and, when its video is unchanged, decode its sampled frames again."""
    store = FeatureStore.open(store_url)
    entry = find_entry(store, key)
    a = store.read(entry, (TIMESTAMPS, FRAME_INDEX, FLOW, FLOW_HIST, FLOW_TS))
    view = EntryView(entry.key, entry.label, store.config, a[TIMESTAMPS], a[FLOW].astype(np.float32),
                     a[FLOW_HIST], a[FLOW_TS], entry.frame_size)
    if store.config.detect.enabled:
        view.boxes = store.read(entry, (BOXES, BOX_VALID, BOX_TRACK))
    meta = entry.meta
    view.note = source_problem(meta)
    if not view.note:
        try:
            source = open_source(meta["path"], start_ms=meta.get("start_ms"), end_ms=meta.get("end_ms"))
            view.frames = np.stack([_thumb(f.rgb) for f in source.iter_frames(a[FRAME_INDEX])])  # (T, h, w, 3)
        except (VideoError, OSError, ValueError) as e:
            view.note = f"the video cannot be decoded again ({e})"
    if view.note:
        view.note += ": flow and histograms only"
    return view


def _thumb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> at most THUMB_WIDTH wide, same aspect: 16 frames of a 4K video need not all be held."""
    h, w = rgb.shape[:2]
    if w <= THUMB_WIDTH:
        return rgb
    return cv2.resize(rgb, (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))), interpolation=cv2.INTER_AREA)


def show_entry(store_url: str, key: str, out: Path | None = None, most_columns: int = MOST_COLUMNS) -> Drawn:
    """`fgm-extract show`: the entry for `key` drawn to `out` (default `default_png(key)`); StoreError, OSError."""
    return render(load_view(store_url, key), out or default_png(key), most_columns)


def pick_columns(n: int, most: int) -> list[int]:
    """At most `most` of range(n), evenly spread, first and last included."""
    return sorted({int(i) for i in np.linspace(0, n - 1, min(n, most)).round()})


def render(view: EntryView, out: Path, most_columns: int = MOST_COLUMNS) -> Drawn:
    """Draw `view` to the PNG `out` (parents made); returns where the flow panels are, for checking."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg alone: no pyplot state, never a window
    from matplotlib.figure import Figure

    columns = pick_columns(len(view.timestamps), most_columns)
    w, h = view.size if min(view.size) > 0 else (1, 1)
    extent = (0, w, h, 0)  # frames and flow fields drawn over the same box: the grid is stretched back
    scale = flow_scale(view.flow)
    cell = PANEL_INCHES * h / w
    fig = Figure(figsize=(PANEL_INCHES * (len(columns) + 1.3), 2 * cell + 2.4), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    grid = fig.add_gridspec(3, len(columns) + 1, height_ratios=(cell, cell, 1.0),
                            width_ratios=[1.0] * len(columns) + [1.3], left=0.03, right=0.99,
                            top=0.8 if view.note else 0.83,  # room for the title's third line
                            bottom=0.08, wspace=0.12, hspace=0.35)
    fig.suptitle(_title(view, scale), fontsize=9, x=0.01, ha="left")
    flow_axes, hist_axes, frame_axes = {}, [], {}
    for col, k in enumerate(columns):
        ax = frame_axes[k] = fig.add_subplot(grid[0, col])
        if view.frames is not None:
            ax.imshow(view.frames[k], extent=extent)
        else:
            ax.text(0.5, 0.5, "no frame", ha="center", va="center", fontsize=8, color="0.4",
                    transform=ax.transAxes)
            ax.set(xlim=(0, w), ylim=(h, 0), aspect="equal")
        ax.set_title(f"frame {k}: {view.timestamps[k]:.0f} ms", fontsize=7)
        _bare(ax)
        if view.boxes is not None:
            _draw_boxes(ax, view.boxes, k, w, h)
        if k < len(view.flow):
            ax = fig.add_subplot(grid[1, col])
            ax.imshow(flow_to_rgb(view.flow[k], scale), extent=extent, interpolation="nearest")
            ax.set_title(f"flow {view.flow_ts[k, 0]:.0f}-{view.flow_ts[k, 1]:.0f} ms", fontsize=7)
            _bare(ax)
            flow_axes[k] = ax
            hist_axes.append(_histogram(fig.add_subplot(grid[2, col]), view.hist[k]))
    _share_limits(hist_axes)
    _legend(fig.add_subplot(grid[0:2, -1]), scale)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.draw()  # lays the axes out so their boxes can be read
    height = fig.bbox.height

    def where(axes: dict) -> dict:  # each panel's pixels in the PNG, y down
        return {k: (b.x0, height - b.y1, b.x1, height - b.y0) for k, b in
                ((k, ax.get_window_extent()) for k, ax in axes.items())}
    rgba = np.asarray(canvas.buffer_rgba())  # (h, w, 4): exactly the canvas the boxes were read from
    # written as RGB: the alpha channel is opaque everywhere and only costs bytes
    try:
        written = cv2.imwrite(str(out), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    except cv2.error as e:  # OpenCV raises on a file name ending it cannot encode
        raise OSError(f"cannot write {out} ({e.err}): name a .png file") from e
    if not written:
        raise OSError(f"cannot write {out}: check that its folder is writable")
    return Drawn(out, columns, view.note, where(flow_axes), where(frame_axes))


def _title(view: EntryView, scale: float) -> str:
    c = view.config
    weights = f"{c.pretrained} (RANDOM weights)" if is_random_weights(c.pretrained) else c.pretrained
    lines = [f"{view.key}   label: {view.label or '-'}",
             f"CLIP {c.clip_model} / {weights};  flow {c.flow.backend}, pairs {c.flow.pairs}, "
             f"{c.flow.grid}x{c.flow.grid} grid;  brightness: |flow| / {scale:.2f} grid px (largest in this entry)"]
    if view.note:
        lines.append(f"NO FRAMES: {view.note}")
    return "\n".join(lines)


def _draw_boxes(ax, boxes: dict, k: int, w: int, h: int) -> None:
    """Frame k's valid boxes as rectangles over the frame's (w, h), coloured and labelled by track id."""
    from matplotlib.patches import Rectangle

    for (x0, y0, x1, y1), track in zip(boxes[BOXES][k][boxes[BOX_VALID][k]], boxes[BOX_TRACK][k][boxes[BOX_VALID][k]]):
        colour = TRACK_COLOURS[int(track) % len(TRACK_COLOURS)]
        ax.add_patch(Rectangle((x0 * w, y0 * h), (x1 - x0) * w, (y1 - y0) * h, fill=False, edgecolor=colour,
                               linewidth=1.2))
        ax.text(x0 * w, y0 * h, f" {track}", color=colour, fontsize=6, va="top", ha="left")


def _bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _histogram(ax, hist: np.ndarray):
    """Bars of one (2 * bins,) histogram: direction (HOF) in the wheel's colours, then magnitude fractions."""
    bins = len(hist) // 2
    ax.bar(np.arange(bins), hist[:bins], color=direction_colours(bins), edgecolor="0.3", linewidth=0.3)
    twin = ax.twinx()  # the fractions sum to 1; HOF is in % of frame width: two scales
    twin.bar(np.arange(bins) + bins + 1, hist[bins:], color="0.55")
    twin.set_ylim(0, 1)
    for a in (ax, twin):
        a.tick_params(labelsize=5, length=2, pad=1)
    ax.set_xticks([bins / 2 - 0.5, 1.5 * bins + 0.5], ["direction", "speed"], fontsize=6)
    return ax, twin


def _share_limits(axes: list[tuple]) -> None:
    """One HOF scale for every column, so bar heights compare; tick labels on the outer columns only."""
    top = max([a.get_ylim()[1] for a, _ in axes] + [1e-6])
    for i, (a, twin) in enumerate(axes):
        a.set_ylim(0, top)
        if i:
            a.tick_params(labelleft=False)
        if i < len(axes) - 1:
            twin.tick_params(labelright=False)
    if axes:
        axes[0][0].set_ylabel("mean |flow|, % width", fontsize=5)
        axes[-1][1].set_ylabel("fraction of pixels", fontsize=5)


def _legend(ax, scale: float) -> None:
    """The colour wheel (a flow from its centre to each point) and what hue and brightness mean."""
    n = 101
    ax.imshow(colour_wheel(n), extent=(-1, 1, 1, -1))
    ax.annotate("", xy=(0.95, 0), xytext=(0, 0), arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax.annotate("", xy=(0, 0.95), xytext=(0, 0), arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax.text(1.02, 0, "+x", fontsize=7, va="center")
    ax.text(0, 1.08, "+y (down)", fontsize=7, ha="center", va="top")
    ax.set_title("hue: direction\n(0 deg = +x, 90 deg = +y)", fontsize=7)
    ax.set_xlabel(f"value: |flow| / {scale:.2f}\ngrid px (rim = full)", fontsize=7)
    ax.set(xlim=(-1.1, 1.35), ylim=(1.25, -1.1))
    _bare(ax)
    for spine in ax.spines.values():
        spine.set_visible(False)
