"""FineGym (Shao et al. 2020) Gym99 and Gym288: elements are time spans of YouTube videos given by annotation files.

Published files (sdolivia.github.io/FineGym): `finegym_annotation_info_v1.0.json` ({video id: {event id:
{"timestamps": [[start, end]] in seconds of the video, "segments": {element id: {"timestamps": [[s, e],
...] in seconds of the event}}}}), the split lists `gym99_train_element_v1.0.txt`, `gym99_val_element.txt`
(likewise gym288_*; lines "<element name> <class number>", element name =
`<video id>_E_<event>_A_<element>`), and `gym99_categories.txt` / `gym288_categories.txt` (lines
"Clabel: 12; set: 21; Glabel: 81; (FX) split jump ..."). The paper's "Gym251" is not a published
FineGym set; `gym288` is the nearest one.

Two ways in:
- `write_manifest(...)` turns the annotation json + split lists into a CSV manifest (path,label,group,
  split,start_ms,end_ms) over the downloaded YouTube videos; fgm-extract reads it and records label,
  group (= the YouTube id, so no source video is in both halves) and split per entry.
- Clips already trimmed and named by element (mmaction2's `subactions/<element name>.mp4`): the adapter
  needs the annotation folder (`annotations=`) to look up each element's class and split.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fgm_common.datasets.base import Annotation, register
from fgm_common.datasets.naming import excluded, fail, stem

APPARATUS = {"VT": "vault", "FX": "floor exercise", "BB": "balance beam", "UB": "uneven bars"}
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov")

_ELEMENT = re.compile(r"^(?P<video>.+)_(?P<event>E_\d+_\d+)_(?P<element>A_\d+_\d+)$")
_CATEGORY = re.compile(r"^\s*Clabel:\s*(?P<n>\d+)\s*;.*?;\s*Glabel:\s*\d+\s*;\s*(?P<name>.+?)\s*$")
_APPARATUS = re.compile(r"^\((?P<code>[A-Z]{2})\)\s*(?P<element>.+)$")


def read_categories(path: str | Path) -> dict[int, str]:
    """A gym*_categories.txt -> {class number: element name with its apparatus prefix, e.g. '(FX) stag jump'}."""
    out = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        m = _CATEGORY.match(line)
        if not m:
            raise ValueError(f"{path}:{n}: expected 'Clabel: <n>; set: <s>; Glabel: <g>; <name>', got {line!r}")
        out[int(m["n"])] = m["name"]
    return out


def read_split_list(path: str | Path) -> dict[str, int]:
    """A split list ('<element name>[.mp4] [frames] <class>' per line) -> {element name: class number}."""
    out = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        words = line.split()
        if not words:
            continue
        if len(words) < 2 or not words[-1].isdigit():
            raise ValueError(f"{path}:{n}: expected '<element name> <class number>', got {line!r}")
        out[re.sub(r"\.[A-Za-z0-9]{1,5}$", "", words[0])] = int(words[-1])
    return out


def class_names(numbers, categories: Mapping[int, str]) -> dict[int, str]:
    """Class number -> label: the element name from the categories file, else 'element_012'; always unique."""
    out, seen = {}, set()
    for n in sorted(numbers):
        name = categories.get(n, f"element_{n:03d}")
        out[n] = name if name not in seen else f"{name} [{n}]"
        seen.add(out[n])
    return out


def element_sentences(label: str) -> list[str]:
    """Three sentences for one element, from its name; a generic one when the name is only a number."""
    if m := re.match(r"^element_(\d+)", label):
        return [f"a gymnast performing gymnastics element number {int(m[1])} in a competition.",
                "a female gymnast performing a fine-grained gymnastics element in a competition."]
    m = _APPARATUS.match(label.split(" [")[0])
    apparatus, element = (APPARATUS.get(m["code"], "apparatus"), m["element"]) if m else ("apparatus", label)
    return [f"a gymnast performing {element} on the {apparatus}.",
            f"a female gymnast in a competition doing {element}.",
            f"a fine-grained {apparatus} element: {element}."]


@dataclass(frozen=True)
class AnnotationFiles:
    """The published files of one FineGym set found in a folder."""

    lists: dict[str, Path]  # split -> list file
    categories: Path | None

    @classmethod
    def find(cls, folder: str | Path, gym: str) -> "AnnotationFiles":
        folder = Path(folder)
        folder = folder.parent if folder.is_file() else folder
        lists = {}
        for split in ("train", "val"):
            found = sorted(folder.glob(f"{gym}_{split}_element*.txt")) or sorted(
                p for p in folder.glob(f"{gym}_{split}*.txt") if "frame" not in p.name)
            if found:
                lists[split] = found[-1]  # the highest version (v1.1 after v1.0)
        if not lists:
            raise FileNotFoundError(f"{folder}: no {gym}_train_element*.txt or {gym}_val_element*.txt; download "
                                    f"the {gym} split lists from the FineGym page into this folder")
        categories = sorted(folder.glob(f"{gym}_categories*.txt"))
        return cls(lists, categories[-1] if categories else None)


class FineGymDataset:
    """Elements as manifest sub-clips (label, group, split recorded) or as clips named by element."""

    name = gym = ""  # set by each registered subclass
    protocol = "official"  # the published train / val lists

    def __init__(self, annotations: str | Path | None = None):
        """`annotations`: the folder holding the published split lists and categories (CLI: --annotations)."""
        self.elements: dict[str, tuple[str, int]] = {}  # element name -> (split, class number)
        categories: dict[int, str] = {}
        if annotations is not None:
            files = AnnotationFiles.find(annotations, self.gym)
            for split, path in files.lists.items():
                self.elements.update({e: (split, n) for e, n in read_split_list(path).items()})
            categories = read_categories(files.categories) if files.categories else {}
        numbers = set(categories) | {n for _, n in self.elements.values()}
        self.labels = class_names(numbers, categories)
        self.descriptions: dict[str, list[str]] = {c: element_sentences(c) for c in self.labels.values()}

    def annotate(self, key: str, meta: dict) -> Annotation:
        m = _ELEMENT.match(stem(key))
        if m:
            if not self.elements:
                raise fail(key, f"the {self.gym} split lists to label an element clip: pass the annotation "
                                "folder (--annotations DIR)")
            if stem(key) not in self.elements:  # FineGym times more elements than each set lists
                raise excluded(key, f"not in the {self.gym} train/val lists")
            split, n = self.elements[stem(key)]
            return Annotation(self.labels[n], group=m["video"], split=split)
        if "#" in key and meta.get("label"):  # extracted from write_manifest's CSV
            label = meta["label"]
            # Lazily describe classes the annotation folder did not name; load_features reads them afterwards.
            self.descriptions.setdefault(label, element_sentences(label))
            return Annotation(label, group=meta.get("group", ""), split=meta.get("split", ""))
        raise fail(key, f"a FineGym element: a sub-clip from a {self.gym} manifest (write_manifest) or a clip "
                        "named <video id>_E_<start>_<end>_A_<start>_<end>")


@register("gym99")
class Gym99Dataset(FineGymDataset):
    name = gym = "gym99"


@register("gym288")
class Gym288Dataset(FineGymDataset):
    name = gym = "gym288"


@dataclass(frozen=True)
class ManifestSummary:
    out: Path
    rows: int
    missing_videos: tuple[str, ...]  # YouTube ids listed but not found under videos_dir
    unannotated: int  # listed elements the annotation json does not time


def element_spans(annotation: Mapping) -> dict[str, tuple[str, float, float]]:
    """Annotation json -> {element name: (video id, start s, end s)} in seconds of the whole video."""
    out = {}
    for video, events in annotation.items():
        for event_id, event in events.items():
            segments = event.get("segments") or {}
            event_start = float(event["timestamps"][0][0])
            for element_id, element in segments.items():
                stamps = element["timestamps"]  # one [s, e] per stage, in seconds of the event
                out[f"{video}_{event_id}_{element_id}"] = (video, event_start + float(stamps[0][0]),
                                                            event_start + float(stamps[-1][1]))
    return out


def write_manifest(annotation_json: str | Path, split_lists: Mapping[str, str | Path] | Sequence[str | Path],
                   videos_dir: str | Path, out_csv: str | Path,
                   categories: str | Path | None = None) -> ManifestSummary:
    """Write path,label,group,split,start_ms,end_ms for every listed element whose YouTube video is present.

    `split_lists`: {"train": path, "val": path}, or paths whose names say train/val/test. Labels are the
    element names from `categories` when given (the adapter then describes them), else 'element_012'.
    Paths are relative to the CSV's folder when the videos lie under it, else absolute.
    """
    out_csv = Path(out_csv)
    lists = dict(split_lists) if isinstance(split_lists, Mapping) else {_split_of(p): p for p in split_lists}
    spans = element_spans(json.loads(Path(annotation_json).read_text(encoding="utf-8")))
    videos = {p.stem: p for p in sorted(Path(videos_dir).rglob("*")) if p.suffix.lower() in VIDEO_SUFFIXES}
    listed = {split: read_split_list(path) for split, path in lists.items()}
    labels = class_names({n for els in listed.values() for n in els.values()},
                         read_categories(categories) if categories else {})
    rows, missing, unannotated = [], set(), 0
    for split, elements in listed.items():
        for element, n in sorted(elements.items()):
            if element not in spans:
                unannotated += 1
                continue
            video, start, end = spans[element]
            if video not in videos:
                missing.add(video)
                continue
            rows.append({"path": _manifest_path(videos[video], out_csv.parent), "label": labels[n], "group": video,
                         "split": split, "start_ms": round(start * 1000), "end_ms": round(end * 1000)})
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "group", "split", "start_ms", "end_ms"])
        writer.writeheader()
        writer.writerows(rows)
    return ManifestSummary(out_csv, len(rows), tuple(sorted(missing)), unannotated)


def _split_of(path: str | Path) -> str:
    name = Path(path).name.lower()
    for split in ("train", "val", "test"):
        if split in name:
            return split
    raise ValueError(f"{path}: cannot tell its split from the name; pass split_lists as {{'train': ..., 'val': ...}}")


def _manifest_path(video: Path, root: Path) -> str:
    try:
        return video.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:  # the videos lie outside the manifest's folder
        return str(video.resolve())
