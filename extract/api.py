"""The extraction library entry point: settings -> ExtractConfig, and videos -> feature store.

`fgm-extract`, `fgm-demo` and anything else that extracts call these two functions; the command
line only parses options and prints. `make_config` resolves what the store must record exactly
(the flow backend as run, a checkpoint file's sha256, backbone weights); `extract` finds the
videos, labels them with a dataset adapter, reads their descriptions and runs the extraction.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from extract.inputs import Discovery, apply_dataset, discover
from extract.runner import RunOptions, Summary, run_extract
from fgm_common.config import DetectConfig, ExtractConfig, FlowConfig
from fgm_common.texts import load_descriptions


def make_config(frames: int = ExtractConfig.num_frames, fps: float = ExtractConfig.fps, flow: str | FlowConfig = "auto",
                backbone_weights: str | None = None, **settings) -> ExtractConfig:
    """A validated ExtractConfig; `settings` are its other fields (clip_model, pretrained, backbones, ...).

    `fps` > 0 samples by rate instead of `frames` per video; `flow` is a FlowConfig or just its
    backend name, whose "auto" resolves to the backend this machine runs (the store records that
    one); a local CLIP checkpoint is named by its bytes, so new weights at the same path never mix
    into a store. ValueError on settings that cannot work.
    """
    # nothing here imports torch: the run's early decoding starts before torch loads (extract/early.py)
    from extract.clip_runtime import runtime_spec
    from extract.detect import checked_config
    from extract.fingerprint import content_sha256
    from extract.flow import resolve_backend
    from extract.preprocess import check_name

    backbones = tuple(dict.fromkeys(settings.pop("backbones", ()) or ()))
    if backbone_weights and not backbones:
        raise ValueError("--backbone-weights needs --backbone NAME (a store's backbones keep their own weights)")
    weights, weights_sha = ExtractConfig.backbone_weights, ""
    if backbones:
        from extract.backbones import resolve_weights  # torchvision's weights registry

        weights, weights_sha = resolve_weights(backbones, backbone_weights or weights)
    pretrained = settings.get("pretrained", ExtractConfig.pretrained)
    flow = FlowConfig(backend=flow) if isinstance(flow, str) else flow
    # ValueError naming the registered detectors; unavailable weights raise here, before anything runs; a
    # local weights file is named by its bytes, like CLIP's
    detect = checked_config(settings.pop("detect", DetectConfig()))
    config = ExtractConfig(
        sampling="fps" if fps > 0 else "uniform", num_frames=frames, fps=fps,
        flow=replace(flow, backend=resolve_backend(flow.backend)),
        clip_sha256=content_sha256(pretrained) if Path(pretrained).is_file() else "",
        backbones=backbones, backbone_weights=weights, backbone_sha256=weights_sha, detect=detect, **settings,
    )
    config.validate()
    runtime_spec(config.clip_runtime)  # ValueError naming the registered runtimes
    check_name(config.preprocess)  # ValueError naming the registered preprocessings
    return config


def extract(videos: Path | Discovery, out: str, config: ExtractConfig, options: RunOptions = RunOptions(),
            dataset: str | None = None, annotations: str | None = None, descriptions: Path | None = None,
            on_found: Callable[[Discovery], None] | None = None, on_start: Callable[[int], None] | None = None,
            on_result: Callable | None = None, on_note: Callable[[str], None] | None = None) -> Summary:
    """Extract every video under `videos` (folder, frame-folder tree or manifest) that the store `out` lacks.

    `videos` may also be a Discovery already made (a caller's own list of VideoItems, as fgm-predict's).

    `dataset` labels the clips with a registered adapter (and adds its class descriptions);
    `descriptions` (JSON or 'class: sentence' lines) defaults to VIDEOS/descriptions.json when
    present. Callbacks: on_found(discovery) once the videos are listed, then run_extract's.
    Raises StoreError, ClipWeightsError, BackboneWeightsError, FileNotFoundError or ValueError.
    """
    from fgm_common.datasets import get_dataset

    note = on_note or (lambda _msg: None)
    discovery = videos if isinstance(videos, Discovery) else discover(videos)
    if descriptions is None and isinstance(videos, Path) and (videos / "descriptions.json").is_file():
        descriptions = videos / "descriptions.json"
    sentences = load_descriptions(descriptions)
    if dataset:
        adapter = get_dataset(dataset, annotations)
        items, excluded = apply_dataset(discovery.items, adapter)
        discovery = replace(discovery, items=items)
        sentences = {**adapter.descriptions, **sentences}
        if excluded:
            note(f"{len(excluded)} clips left out by the {dataset} adapter by design (e.g. {excluded[0]})")
    if on_found:
        on_found(discovery)
    return run_extract(discovery, config, out, options, sentences, on_start, on_result, on_note)
