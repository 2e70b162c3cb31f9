"""What to extract: walk a folder or read a manifest into VideoItems (key, path, label, group, ...)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from extract.video import is_video_candidate

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp"}
MANIFEST_EXTS = {".txt", ".lst", ".csv", ".tsv"}


@dataclass(frozen=True)
class VideoItem:
    """One unit of extraction. `key` is unique in a store: the path relative to the input root,
    with '#start-end' appended for a sub-clip."""

    key: str
    path: str
    label: str = ""
    group: str = ""
    view: str = ""
    split: str = ""
    start_ms: float | None = None
    end_ms: float | None = None


@dataclass(frozen=True)
class Discovery:
    items: list[VideoItem]
    ignored: list[str]  # files that are neither videos nor frame folders
    root: Path


def _is_frame_folder(d: Path) -> bool:
    """A folder with at least two images and no video file directly in it reads as one video of frames.

    Its subfolders (e.g. UCF Sports' gt/ annotations) are not walked for videos. A folder that also
    holds a video file is not a frame folder: the video is used.
    """
    children = [c for c in d.iterdir() if c.is_file()]
    images = [c for c in children if c.suffix.lower() in IMAGE_EXTS]
    return len(images) >= 2 and not any(is_video_candidate(c) for c in children)


def discover_folder(root: Path) -> Discovery:
    """Recursive walk: video files and frame folders; label = parent folder name (empty at top level).

    Each directory is looked at once; a frame folder's own files and subfolders are not walked.
    """
    items, ignored = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames.sort()
        if here != root and _is_frame_folder(here):
            items.append(VideoItem(here.relative_to(root).as_posix(), str(here), label=_parent_label(root, here)))
            dirnames.clear()
            continue
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(root).as_posix()
            if is_video_candidate(path):
                items.append(VideoItem(rel, str(path), label=_parent_label(root, path)))
            elif not name.startswith(".") and path.suffix.lower() not in {".json", ".md"}:
                ignored.append(rel)
    return Discovery(sorted(items, key=lambda i: i.key), sorted(ignored), root)


def _parent_label(root: Path, path: Path) -> str:
    return path.parent.name if path.parent != root else ""


def read_manifest(manifest: Path) -> Discovery:
    """Lines 'path label' (mmaction style) or CSV/TSV with a header: path,label[,group][,view][,split][,start_ms,end_ms].
    Relative paths are taken from the manifest's folder."""
    root = manifest.parent
    text = manifest.read_text(encoding="utf-8")
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    rows: list[dict[str, str]]
    if "path" in first.replace("\t", ",").split(","):
        delim = "\t" if "\t" in first else ","
        rows = list(csv.DictReader(text.splitlines(), delimiter=delim))
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) < 2:
                raise ValueError(f"{manifest}:{n}: expected 'path label', got {line!r}")
            rows.append({"path": parts[0], "label": parts[1]})
    items = []
    for row in rows:
        rel = row["path"].strip()
        path = Path(rel) if Path(rel).is_absolute() else root / rel
        start = float(row["start_ms"]) if row.get("start_ms") else None
        end = float(row["end_ms"]) if row.get("end_ms") else None
        key = rel if start is None and end is None else f"{rel}#{_ms(start or 0)}-{_ms(end) if end is not None else 'end'}"
        items.append(
            VideoItem(key, str(path), row.get("label", "").strip(), row.get("group", "").strip(),
                      row.get("view", "").strip(), row.get("split", "").strip(), start, end)
        )
    keys = [i.key for i in items]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})[:5]
        raise ValueError(f"{manifest}: the same clip is listed twice: {dup}")
    return Discovery(items, [], root)


def _ms(x: float) -> str:
    """Milliseconds at full precision without trailing zeros: 2410080.0 -> '2410080', 12.5 -> '12.5'."""
    return f"{x:.3f}".rstrip("0").rstrip(".")


def discover(source: Path) -> Discovery:
    """A folder is walked; a .txt/.lst/.csv/.tsv file is read as a manifest."""
    source = Path(source)
    if source.is_dir():
        return discover_folder(source)
    if source.is_file() and source.suffix.lower() in MANIFEST_EXTS:
        return read_manifest(source)
    if source.is_file() and is_video_candidate(source):
        return Discovery([VideoItem(source.name, str(source), "")], [], source.parent)
    raise FileNotFoundError(f"{source} is neither a folder of videos nor a manifest (.txt/.lst/.csv/.tsv)")


def apply_dataset(items: list[VideoItem], adapter) -> tuple[list[VideoItem], list[str]]:
    """Label items with a dataset adapter (fgm_common.datasets) -> (labelled items, keys left out by design).

    Every path must match the layout: raises LayoutError listing the first offending files and what
    the layout expects.
    """
    from dataclasses import replace

    from fgm_common.datasets import Excluded, LayoutError

    out, bad, excluded = [], [], []
    for item in items:
        meta = {"label": item.label, "group": item.group, "view": item.view, "split": item.split}
        try:
            ann = adapter.annotate(item.key, meta)
        except Excluded:  # fits the layout, left out by design (e.g. CASIA two-person clips)
            excluded.append(item.key)
            continue
        except LayoutError as e:
            bad.append(str(e))
            continue
        out.append(replace(item, label=ann.label, group=ann.group or item.group, view=ann.view or item.view,
                           split=ann.split or item.split))
    if bad:
        shown = "\n  ".join(bad[:5]) + (f"\n  ... and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise LayoutError(f"{len(bad)} of {len(items)} videos do not match the {adapter.name!r} layout:\n  {shown}\n"
                          "Point fgm-extract at the dataset as published, or use a manifest (CSV) instead.")
    return out, excluded
