"""`detr`: DETR through transformers (the optional `detr` extra): an RGB frame (H, W, 3) uint8 -> persons and objects.

Weights (`DetectConfig.weights`): "" means `DEFAULT_TAG` on the Hugging Face hub; any other hub tag; a
local save_pretrained folder, or the weights file inside one; "none"/"random": a tiny DETR with seeded
random weights, built from code (tests only: no file, no network). A hub tag is resolved as a CLIP tag
is (extract/weights.py): read from the cache with the hub client offline, downloaded only when the hub
answers a short connect probe, otherwise DetectorWeightsError naming the ways out before any hub call.

Classes come from the weights' own `id2label`, not from a table here: the label "person" is class 0
(`PERSON`); labels named "N/A" (the unused ids among COCO's 91) are dropped, and so is DETR's extra
"no object" logit; the other labels follow as 1, 2, ... in id order. For facebook/detr-resnet-50 that
is COCO's 80 classes, person first. `identity()["labels"]` lists them in that order.
"""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import huggingface_hub
import numpy as np
import torch
from huggingface_hub import constants as hub_constants
from huggingface_hub.utils import HFValidationError, validate_repo_id

from extract.clip_model import file_sha256, state_sha256
from extract.detect import PERSON, Boxes, Detector
from extract.errors import DetectorWeightsError
from extract.seeded import seeded
from extract.weights import _host_port, hub_offline, reachable
from fgm_common.config import DetectConfig, is_random_weights
from fgm_common.options import resolve_device

DEFAULT_TAG = "facebook/detr-resnet-50"
# transformers' own default threshold in DETR's post-processing; DETR needs no NMS (one box per query)
MIN_SCORE = 0.5
RANDOM_SEED = 0  # DetectConfig has no seed: random weights are the tests' fixed tiny model
INSTALL = "pip install 'fgm[detr]'"
UNUSED_LABEL = "N/A"  # COCO's ids without a class, as DETR's hub configs name them
CONFIG_FILE, WEIGHTS_FILES = "config.json", ("model.safetensors", "pytorch_model.bin")  # transformers reads in this order

# The tiny random DETR: the whole detector path (backbone, encoder, decoder, both heads) at the least cost.
# transformers' own ResNet backbone, so neither timm nor any ImageNet weights are asked for.
_TINY_BACKBONE = dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
                      out_features=["stage2"])
_TINY = dict(d_model=16, encoder_layers=1, decoder_layers=1, encoder_ffn_dim=32, decoder_ffn_dim=32,
             encoder_attention_heads=2, decoder_attention_heads=2, num_queries=10, init_std=0.5)
_TINY_LABELS = ("N/A", "person", "bicycle", "car")  # COCO's first ids, an unused one included: the class rule runs
_TINY_SIZE = {"shortest_edge": 64, "longest_edge": 96}


def ways_out(cache: str) -> str:
    return (f"ways out: --detector-weights /path/to/dir (a save_pretrained folder copied from a machine with "
            f"network), the hub cache {cache} holding {DEFAULT_TAG} (HF_HOME or HF_HUB_CACHE name another), "
            "--detector-weights none (random weights, tests only), --detector hog (offline, built in)")


def transformers_module() -> ModuleType:
    """The transformers package, or DetectorWeightsError naming the extra to install."""
    try:
        import transformers
    except ImportError as e:
        raise DetectorWeightsError(f"--detector detr needs the optional transformers package, which is not "
                                   f"installed: {INSTALL} (or --detector hog, offline, built in)") from e
    return transformers


def class_map(id2label: dict) -> tuple[list[str], np.ndarray]:
    """The weights' {id: label} -> (labels in class order, table (num_labels + 1,) i64: each logit's class, -1 dropped)."""
    names = {int(i): str(name) for i, name in id2label.items()}
    people = [i for i in sorted(names) if names[i].lower() == "person"]
    if len(people) != 1:
        raise DetectorWeightsError(f"DETR weights must have one 'person' label (class {PERSON}); "
                                   f"these have {len(people)} among {len(names)}")
    order = people + [i for i in sorted(names) if i != people[0] and names[i] != UNUSED_LABEL]
    table = np.full(len(names) + 1, -1, np.int64)  # the last logit is DETR's "no object"
    table[order] = np.arange(len(order))
    return [names[i] for i in order], table


class DetrDetector(Detector):
    """DETR on one RGB frame (H, W, 3) uint8: up to `top_k` boxes scoring at least `min_score`, best first.

    A box's score is its query's softmax probability of its best kept class (the no-object and unused
    columns are left out of the max, not of the softmax). Runs on `device` ("auto": CUDA when torch sees
    a GPU), on the CPU with torch's thread setting as the caller left it; boxes come back on the CPU.
    """

    def __init__(self, model: Any, processor: Any, source: str, hashes: dict, version: str, top_k: int = 4,
                 min_score: float = MIN_SCORE, device: str = "cpu"):
        self.device = resolve_device(device)
        self.model, self.processor = model.to(self.device).eval(), processor
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.top_k, self.min_score = top_k, min_score
        self.labels, table = class_map(model.config.id2label)
        self._columns = torch.from_numpy(np.flatnonzero(table >= 0))  # (C,) logit columns kept
        self._classes = table[table >= 0]  # (C,) each kept column's class
        self._identity = {"name": "detr", "source": source, **hashes, "transformers": version,
                          "min_score": min_score}

    def identity(self) -> dict:
        return {**self._identity, "labels": list(self.labels)}

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray) -> Boxes:
        inputs = self.processor(images=rgb, return_tensors="pt", input_data_format="channels_last")
        out = self.model(pixel_values=inputs["pixel_values"].to(self.device),
                         pixel_mask=inputs["pixel_mask"].to(self.device))
        probs = out.logits[0].float().cpu().softmax(-1)[:, self._columns]  # (Q, C)
        scores, best = probs.max(-1)  # (Q,)
        order = torch.argsort(scores, descending=True, stable=True)
        order = order[scores[order] >= self.min_score][: self.top_k]  # (K,)
        # (cx, cy, w, h) relative to the frame: one image alone is resized, never padded
        cx, cy, w, h = out.pred_boxes[0].float().cpu()[order].unbind(-1)  # (K,) each
        xyxy = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1).clamp(0.0, 1.0)  # (K, 4)
        return Boxes(xyxy.numpy().astype(np.float32), scores[order].numpy().astype(np.float32),
                     self._classes[best[order].numpy()].astype(np.int64))


def checked(config: DetectConfig, cache_dir: str | None = None) -> DetectConfig:
    """`config` with a local weights file's sha256 filled in, once its weights are known to be there.

    fgm-extract calls this before anything starts (extract.detect.checked_config), so unavailable
    weights stop the run at once with DetectorWeightsError naming the ways out.
    """
    return replace(config, sha256=_source(config, cache_dir or hub_constants.HF_HUB_CACHE)[3])


def _source(config: DetectConfig, cache: str) -> tuple[str, str, str, str]:
    """(kind, where, source, file sha256) of the weights, decided without importing transformers or calling the hub.

    kind: "random", "local", "cache" or "download"; the sha256 is "" unless the weights are a local file.
    """
    weights = config.weights or DEFAULT_TAG
    if is_random_weights(weights):
        return "random", "", "random", ""
    if os.path.exists(os.path.expanduser(weights)):
        folder, file = local_weights(weights)
        sha256 = file_sha256(file)
        if config.sha256 and config.sha256 != sha256:
            raise DetectorWeightsError(f"{file} has sha256 {sha256}, not the {config.sha256} the store was "
                                       "made with: pass the same weights, or extract into a new store")
        return "local", str(folder), str(file), sha256
    return hub_source(weights, cache), weights, weights, ""


def make_detr(config: DetectConfig, cache_dir: str | None = None, min_score: float = MIN_SCORE,
              device: str = "cpu") -> DetrDetector:
    """The `detr` detector `config` asks for; DetectorWeightsError naming the ways out when its weights cannot be had.

    `cache_dir`: the hub cache (default: the hub client's, HF_HUB_CACHE). `config.sha256`, when set,
    must match a local weights file's. The identity's hash is taken on the CPU, before the model
    moves to `device`, so a GPU run and a CPU run record the same weights.
    """
    cache = cache_dir or hub_constants.HF_HUB_CACHE
    # where the weights come from is settled before transformers is imported (seconds) or the hub is called
    kind, where, source, file_hash = _source(config, cache)
    transformers = transformers_module()
    with _quiet(transformers):
        if kind == "random":
            model, processor = random_detr(RANDOM_SEED), transformers.DetrImageProcessor(size=_TINY_SIZE)
        else:
            with hub_offline() if kind != "download" else nullcontext():
                model, processor = _load(transformers, where, ways_out(cache), cache_dir=cache,
                                         local_files_only=kind != "download")
    # the keys fgm_common.identity compares: a local file by its bytes, other weights by their tensors
    hashes = {"file_sha256": file_hash} if file_hash else {"weights_sha256": state_sha256(model)}
    return DetrDetector(model, processor, source, hashes, transformers.__version__, config.top_k, min_score, device)


def random_detr(seed: int) -> Any:
    """The tiny DETR (`_TINY`) with random weights drawn from `seed`, in eval mode; the caller's RNG is left as it was."""
    transformers = transformers_module()
    backbone = transformers.ResNetConfig(**_TINY_BACKBONE)
    config = transformers.DetrConfig(backbone_config=backbone, use_timm_backbone=False,
                                     id2label=dict(enumerate(_TINY_LABELS)), **_TINY)
    with seeded(seed):
        return transformers.DetrForObjectDetection(config).eval()


def local_weights(path: str) -> tuple[Path, Path]:
    """A save_pretrained folder, or the weights file in one -> (folder, the weights file transformers reads there)."""
    given = Path(path).expanduser()
    folder = given if given.is_dir() else given.parent
    found = [folder / name for name in WEIGHTS_FILES if (folder / name).is_file()]
    if not (folder / CONFIG_FILE).is_file() or not found:
        raise DetectorWeightsError(f"--detector-weights {path}: {folder} is not a save_pretrained folder (it needs "
                                   f"{CONFIG_FILE} and one of {list(WEIGHTS_FILES)}); "
                                   f"{ways_out(hub_constants.HF_HUB_CACHE)}")
    if given.is_file() and given != found[0]:
        raise DetectorWeightsError(f"--detector-weights {path}: transformers reads {found[0].name} in that folder, "
                                   f"not {given.name}; pass the folder or that file")
    return folder, found[0]


def hub_source(tag: str, cache: str) -> str:
    """"cache" or "download" for a hub tag, decided without a hub call; DetectorWeightsError naming the ways out."""
    try:
        validate_repo_id(tag)
    except HFValidationError:
        raise DetectorWeightsError(f"--detector-weights {tag!r} is neither an existing path nor a hub tag; "
                                   f"{ways_out(cache)}") from None
    if _in_cache(tag, cache):
        return "cache"
    host, port = _host_port(hub_constants.ENDPOINT)
    if hub_constants.HF_HUB_OFFLINE:
        offline = "HF_HUB_OFFLINE is set"
    elif not reachable(host, port):
        offline = f"{host} cannot be reached"
    else:
        return "download"
    raise DetectorWeightsError(f"no DETR weights for {tag}: {offline} and they are not in the cache {cache}; "
                               f"{ways_out(cache)}")


def _in_cache(tag: str, cache: str) -> bool:
    """Whether the hub cache holds the tag's config and a weights file transformers would read."""
    def has(filename: str) -> bool:
        # a str, not None nor the cached "does not exist" marker
        return isinstance(huggingface_hub.try_to_load_from_cache(tag, filename, cache_dir=cache), str)

    return has(CONFIG_FILE) and any(map(has, WEIGHTS_FILES))


def _load(transformers: ModuleType, where: str, ways: str, **hub: Any) -> tuple[Any, Any]:
    """DetrForObjectDetection and its image processor from a folder or hub tag; DETR's defaults if it has no processor."""
    try:
        model = transformers.DetrForObjectDetection.from_pretrained(where, **hub)
    except (OSError, ValueError, RuntimeError) as e:  # missing or unreadable files, hub failures
        raise DetectorWeightsError(f"could not load DETR weights {where}: {type(e).__name__}: {e}\n{ways}") from e
    try:
        processor = transformers.DetrImageProcessor.from_pretrained(where, **hub)
    except OSError:  # no preprocessor_config.json: DETR's defaults are facebook/detr-resnet-50's
        processor = transformers.DetrImageProcessor()
    return model, processor


@contextmanager
def _quiet(transformers: ModuleType) -> Iterator[None]:
    """transformers' progress bars off while weights load (rich shows fgm's own progress), then as they were."""
    logging = transformers.utils.logging
    before = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if before:
            logging.enable_progress_bar()
