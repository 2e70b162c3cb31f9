"""What a feature store holds and how it was made (`fgm-extract info`): one plain `StoreInfo`, then rich tables.

`summarize` reads attributes only (no array) and lists the files for the size; `store_json` is the
raw record `fgm-extract info --json` prints, unchanged since the command first printed it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import fsspec
from rich import box
from rich.console import Console
from rich.table import Table

from fgm_common.config import ExtractConfig, is_random_weights
from fgm_common.store import BOX_TRACKS, NUM_FRAMES, PERSON_FRAMES, FeatureStore

EXAMPLE_KEYS = 3  # keys named for `fgm-extract show`


@dataclass(frozen=True)
class RunInfo:
    """One run record of the store, as the summary shows it; `fidelity` is None when none was recorded."""

    run_id: str
    finished: str
    extracted: int
    failed: int
    skipped: int
    seconds: float
    device: str
    workers: int
    runtime: str
    fidelity: float | None  # worst per-frame cosine to torch fp32 of the run's towers


@dataclass(frozen=True)
class BoxCoverage:
    """How often a store's detector found a person, summed over the complete entries that recorded it."""

    entries: int  # entries with the counts (a store made before they were recorded has none)
    frames: int  # their sampled frames
    person_frames: int  # of those, frames holding a person box
    tracks: int  # distinct tracks among their stored boxes


@dataclass(frozen=True)
class StoreInfo:
    """Counts, classes, the config and weights, size and runs of one store: everything `info` shows."""

    url: str
    config: ExtractConfig
    digest: str
    complete: int
    incomplete: int
    failure_reasons: dict[str, int]  # reason -> videos that failed with it
    failed_keys: dict[str, str]  # key -> its failure reason
    classes: dict[str, int]  # class -> complete entries (0 for a class known only from its text)
    unlabelled: int
    example_keys: list[str]
    clip_identity: dict
    created: str
    fgm_version: str
    size_bytes: int | None  # None when the filesystem cannot say
    runs: list[RunInfo] = field(default_factory=list)
    boxes: BoxCoverage | None = None  # None for a store made without a detector

    @property
    def failed(self) -> int:
        return sum(self.failure_reasons.values())

    @property
    def random_clip(self) -> bool:
        return is_random_weights(self.config.pretrained)

    @property
    def random_backbones(self) -> bool:
        return bool(self.config.backbones) and is_random_weights(self.config.backbone_weights)

    @property
    def fidelity(self) -> float | None:
        """The worst fidelity any run recorded (None for torch runs, which are not checked)."""
        values = [r.fidelity for r in self.runs if r.fidelity is not None]
        return min(values) if values else None


def store_json(store: FeatureStore) -> dict:
    """The raw record `fgm-extract info --json` prints: config, provenance, classes, videos, failures, runs."""
    return {"config": store.config.to_dict(), "provenance": store.provenance, "classes": store.classes,
            "videos": len(store.entries()), "failures": store.failures(), "runs": store.runs()}


def size_on_disk(url: str) -> int | None:
    """Bytes under the store's root, local or fsspec URL; None when the filesystem cannot list it."""
    try:
        fs, path = fsspec.core.url_to_fs(url)
        return int(fs.du(path, total=True))
    except (OSError, NotImplementedError, ValueError):
        return None


def _worst_fidelity(run: dict) -> float | None:
    """The lowest min cosine in a run record: its local tower's check and each dask worker's."""
    towers = [run.get("clip_runtime") or {}] + list(run.get("clip_runtime_workers") or [])
    checks = [t["fidelity"] for t in towers if isinstance(t, dict) and t.get("fidelity")]
    values = [min(c["min_cosine"], c.get("tokens_min_cosine", 1.0)) for c in checks]
    return min(values) if values else None


def _run_info(run: dict) -> RunInfo:
    tower = run.get("clip_runtime") or {}
    return RunInfo(run.get("run_id", "?"), run.get("finished", ""), run.get("extracted", 0), run.get("failed", 0),
                   run.get("skipped", 0), float(run.get("seconds", 0.0)), run.get("device", ""),
                   run.get("workers", 1), tower.get("runtime", "") if isinstance(tower, dict) else "",
                   _worst_fidelity(run))


def summarize(store: FeatureStore) -> StoreInfo:
    """Everything `fgm-extract info` shows about an open store, read from its attributes."""
    everything = store.entries(include_incomplete=True)
    complete = [e for e in everything if e.meta.get("complete")]
    labels = Counter(e.label for e in complete)
    classes = {c: labels.get(c, 0) for c in sorted(set(store.classes) | {k for k in labels if k})}
    failed = {key: str(f.get("reason", "unknown")) for key, f in sorted(store.failures().items())}
    reasons = Counter(failed.values())
    provenance = store.provenance
    counted = [e.meta for e in complete if PERSON_FRAMES in e.meta]
    boxes = (BoxCoverage(len(counted), sum(int(m.get(NUM_FRAMES, 0)) for m in counted),
                         sum(int(m[PERSON_FRAMES]) for m in counted), sum(int(m[BOX_TRACKS]) for m in counted))
             if store.config.detect.enabled else None)
    return StoreInfo(
        url=store.url, config=store.config, digest=store.config.digest(),
        complete=len(complete), incomplete=len(everything) - len(complete),
        failure_reasons=dict(reasons.most_common()), failed_keys=failed, classes=classes, unlabelled=labels.get("", 0),
        example_keys=[e.key for e in complete[:EXAMPLE_KEYS]], clip_identity=store.clip_identity,
        created=str(provenance.get("created", "")), fgm_version=str(provenance.get("packages", {}).get("fgm", "")),
        size_bytes=size_on_disk(store.url), runs=[_run_info(r) for r in store.runs()],
        boxes=boxes,
    )


def human_bytes(n: int | None) -> str:
    if n is None:
        return "unknown"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def _sampling(config: ExtractConfig) -> str:
    if config.sampling == "fps":
        return f"{config.fps:g} frames per second of video"
    return f"{config.num_frames} frames per video (midpoints of equal segments)"


def _pairs(config: ExtractConfig) -> str:
    if config.flow.pairs == "native":
        return "native: each sampled frame to the next frame of the video (T fields)"
    return "sampled: between consecutive sampled frames (T-1 fields)"


def _weights(info: StoreInfo) -> str:
    config, ident = info.config, info.clip_identity
    sha = ident.get("weights_sha256") or ident.get("file_sha256") or config.clip_sha256
    text = f"{config.pretrained}" + (f" (RANDOM, seed {config.random_seed})" if info.random_clip else "")
    return text + (f", sha256 {sha[:12]}" if sha else "")


def _runtime(info: StoreInfo) -> str:
    text = f"{info.config.clip_runtime}, preprocess {info.config.preprocess}"
    if info.fidelity is not None:
        text += f", fidelity: worst cosine to torch fp32 {info.fidelity:.5f}"
    return text


def _detector(info: StoreInfo) -> str:
    detect, found = info.config.detect, info.boxes
    weights = f", weights {detect.weights}" if detect.weights else ""
    text = f"{detect.name}{weights}: top {detect.top_k} boxes per frame, tracks and the flow inside each box"
    if not found.entries:  # `found` is None only without a detector, and then this is not asked
        return text + ("; how often it found a person was not recorded (a store made before fgm counted it)"
                       if info.complete else "")
    share = 100 * found.person_frames / max(found.frames, 1)
    part = (f" (counted over {found.entries} of {info.complete} entries: older ones did not record it)"
            if found.entries < info.complete else "")
    return (text + f"; a person box in {found.person_frames} of {found.frames} sampled frames ({share:.1f} %), "
            f"{found.tracks / found.entries:.1f} tracks per video{part}")


def _made_table(info: StoreInfo) -> Table:
    config = info.config
    flow = config.flow
    table = Table(title="how it was made", show_header=False, title_justify="left")
    dim = info.clip_identity.get("embed_dim")
    rows = [
        ("CLIP model", config.clip_model + (f" ({dim}-d embeddings)" if dim else "")),
        ("CLIP weights", _weights(info)),
        ("CLIP runtime", _runtime(info)),
        ("patch tokens", "stored" if config.tokens else "not stored"),
        ("sampling", _sampling(config)),
        ("flow", f"{flow.backend}, computed at {flow.compute_size} px short side, stored on a {flow.grid}x"
                 f"{flow.grid} grid, {flow.hist_bins}+{flow.hist_bins} histogram bins"),
        ("flow pairs", _pairs(config)),
        ("backbones", ", ".join(config.backbones) + f" (weights {config.backbone_weights})"
                      if config.backbones else "none"),
        ("detector", _detector(info) if config.detect.enabled else "none"),
        ("created", f"{info.created[:19].replace('T', ' ')} (UTC) with fgm {info.fgm_version}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _entries_table(info: StoreInfo) -> Table:
    table = Table(title="entries", show_header=False, title_justify="left")
    table.add_row("complete", str(info.complete))
    table.add_row("incomplete (being written, or redone next run)", str(info.incomplete))
    table.add_row("failed", str(info.failed))
    for reason, n in info.failure_reasons.items():
        table.add_row(f"  {reason}", str(n))
    return table


def _classes_table(info: StoreInfo) -> Table:
    table = Table("class", "videos", title=f"classes ({len(info.classes)})", title_justify="left")
    for name, n in info.classes.items():
        table.add_row(name, str(n))
    if info.unlabelled:
        table.add_row("(no label)", str(info.unlabelled))
    return table


def _runs_table(info: StoreInfo) -> Table:
    table = Table("run", "new", "failed", "kept", "seconds", "device", "runtime", box=box.SIMPLE,
                  title=f"runs ({len(info.runs)}; kept = already in the store)", title_justify="left")
    for r in info.runs:
        runtime = (r.runtime or "-") + ("" if r.fidelity is None else f", fidelity {r.fidelity:.5f}")
        table.add_row(r.run_id, str(r.extracted), str(r.failed), str(r.skipped), f"{r.seconds:.1f}",
                      f"{r.device} x{r.workers}", runtime)
    table.columns[0].no_wrap = True
    return table


def render_info(info: StoreInfo, console: Console) -> None:
    """Print the summary: header, random-weights warnings, entries, classes, how it was made, runs, keys."""
    console.print(f"[bold]feature store[/bold] {info.url}: {human_bytes(info.size_bytes)} on disk, "
                  f"config {info.digest}")
    if info.random_clip:
        console.print(f"[bold yellow]WARNING: CLIP weights are RANDOM (pretrained {info.config.pretrained!r}): "
                      "features carry no pretrained knowledge; fine for tests, not for results.[/bold yellow]")
    if info.random_backbones:
        console.print(f"[bold yellow]WARNING: {', '.join(info.config.backbones)} weights are RANDOM "
                      f"(backbone weights {info.config.backbone_weights!r}).[/bold yellow]")
    for table in (_entries_table(info), _classes_table(info), _made_table(info), _runs_table(info)):
        console.print(table)
    if info.failed:
        named = [f"{key} ({reason})" for key, reason in list(info.failed_keys.items())[:EXAMPLE_KEYS]]
        more = f" and {info.failed - len(named)} more" if info.failed > len(named) else ""
        console.print(f"failed: {', '.join(named)}{more}; `fgm-extract info {info.url} --json` gives their "
                      "messages, `fgm-extract ... --retry-failed` tries them again")
    if info.example_keys:
        console.print(f"look at one entry: fgm-extract show {info.url} {info.example_keys[0]}  "
                      f"(other keys: {', '.join(info.example_keys[1:]) or 'none'})")
