"""Frozen torchvision backbones written beside CLIP: RGB frames -> one pooled feature per frame (N, Db).

`BACKBONES` names what `--backbone` may ask for. Each is a torchvision classifier with its
classification head replaced by the identity, so its output is the global-average-pooled feature.
Weights (`--backbone-weights`, one source for all backbones of a store): a torchvision tag such as
IMAGENET1K_V2 (downloaded into $TORCH_HOME/hub/checkpoints once), a local state_dict file, or
"none" for random weights seeded like CLIP's and recorded with their sha256.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms as tvt

from extract.clip_model import file_sha256, state_sha256
from extract.errors import BackboneWeightsError
from extract.seeded import seeded
from fgm_common.config import is_random_weights

# The preprocessing ImageNet classifiers were trained with, for weights that do not carry their own
# (a local file, random weights): resize the short side to 256, centre crop 224, ImageNet statistics.
IMAGENET_RESIZE, IMAGENET_CROP = 256, 224
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneSpec:
    """A torchvision classifier used as a frame feature extractor."""

    arch: str  # torchvision builder name (torchvision.models.get_model)
    head: str  # attribute of the final classifier, replaced by the identity
    dim: int  # size of the pooled feature left once the head is gone


BACKBONES: dict[str, BackboneSpec] = {
    "resnet50": BackboneSpec(arch="resnet50", head="fc", dim=2048),
}


def _spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name]


def _tag(spec: BackboneSpec, weights: str) -> Any:
    """The torchvision weights enum member for a tag (case-insensitive, DEFAULT included)."""
    enum = torchvision.models.get_model_weights(spec.arch)
    try:
        return enum[weights.upper()]
    except KeyError:
        raise ValueError(
            f"--backbone-weights {weights!r} is neither a file nor a torchvision tag of {spec.arch}; tags: "
            f"{list(enum.__members__)}; or pass a local state_dict .pth, or 'none' for random weights"
        ) from None


def checkpoint_path(weights_enum: Any) -> Path:
    """Where torch.hub keeps (and looks for) the file of a torchvision weights tag."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights_enum.url).path)


def resolve_weights(names: tuple[str, ...], weights: str) -> tuple[str, str]:
    """Check names and weights before anything is written: (canonical weights, sha256 of a local file or '')."""
    specs = [_spec(n) for n in names]
    if is_random_weights(weights):
        return "none", ""
    if Path(weights).is_file():
        return weights, file_sha256(weights)
    canonical = {_tag(s, weights).name for s in specs}  # DEFAULT -> IMAGENET1K_V2 for resnet50
    # DEFAULT may name different tags for different backbones: then keep the word itself
    return (canonical.pop() if len(canonical) == 1 else weights.upper()), ""


def _offline_error(spec: BackboneSpec, member: Any, error: Exception) -> BackboneWeightsError:
    path = checkpoint_path(member)
    return BackboneWeightsError(
        f"could not get {spec.arch} weights {member.name} (download or read): {type(error).__name__}: {error}\n"
        f"Ways out: (1) on a machine with network, download {member.url} and put it at {path} "
        "($TORCH_HOME/hub/checkpoints; set TORCH_HOME to use another folder); (2) pass "
        f"--backbone-weights /path/to/{path.name} (a state_dict file, preprocessed with resize 256 / crop 224; "
        "(1) keeps the tag's own preprocessing); (3) --backbone-weights none for "
        "random weights (features then carry no pretrained knowledge)."
    )


def fetch_weights(names: tuple[str, ...], weights: str) -> None:
    """Download the checkpoint of a tag into the torch.hub cache unless it is there; raise BackboneWeightsError."""
    if is_random_weights(weights) or Path(weights).is_file():
        return
    for spec in map(_spec, names):
        member = _tag(spec, weights)
        path = checkpoint_path(member)
        if path.is_file():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        match = torch.hub.HASH_REGEX.search(path.name)  # torchvision file names carry a sha256 prefix
        try:
            torch.hub.download_url_to_file(member.url, str(path), match.group(1) if match else None, progress=False)
        except (OSError, RuntimeError) as e:  # offline: URLError (an OSError) from urlopen; a bad hash
            raise _offline_error(spec, member, e) from e


@dataclass
class FrozenBackbone:
    """An eval-mode backbone without its head, with the preprocessing its weights expect."""

    name: str
    model: torch.nn.Module
    transform: Any  # PIL image -> (3, S, S) float tensor
    device: str
    identity: dict  # what the store records: name, weights source, hashes, torchvision version

    @property
    def dim(self) -> int:
        return int(self.identity["feature_dim"])

    def preprocess_frame(self, rgb: np.ndarray) -> torch.Tensor:
        """RGB uint8 frame (H, W, 3) -> model input (3, S, S)."""
        return self.transform(Image.fromarray(rgb))

    @torch.inference_mode()
    def encode_batch(self, batch: torch.Tensor) -> np.ndarray:
        """Model input (N, 3, S, S) -> pooled features (N, Db) f32."""
        return self.model(batch.to(self.device)).float().cpu().numpy()  # (N, Db)

    def encode_frames(self, frames: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 frames (H, W, 3) -> pooled features (N, Db) f32."""
        return self.encode_batch(torch.stack([self.preprocess_frame(f) for f in frames]))


def imagenet_transform() -> tvt.Compose:
    """Resize 256, centre crop 224, ImageNet normalisation: PIL image -> (3, 224, 224)."""
    return tvt.Compose([tvt.Resize(IMAGENET_RESIZE), tvt.CenterCrop(IMAGENET_CROP), tvt.ToTensor(),
                        tvt.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def _load_state(spec: BackboneSpec, weights: str) -> tuple[dict | None, Any, dict]:
    """(state_dict or None for random, preprocessing, identity fields) for one weights source."""
    if Path(weights).is_file():
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError, pickle.UnpicklingError) as e:
            raise BackboneWeightsError(f"could not read {weights} as a state_dict: {type(e).__name__}: {e}") from e
        return state, imagenet_transform(), {"file_sha256": file_sha256(weights), "random_weights": False}
    member = _tag(spec, weights)
    try:
        state = torch.hub.load_state_dict_from_url(member.url, progress=False, check_hash=True,
                                                   map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError) as e:  # offline and not cached; a broken download
        raise _offline_error(spec, member, e) from e
    ident = {"tag": member.name, "url": member.url,
             "file_sha256": file_sha256(checkpoint_path(member)), "random_weights": False}
    return state, member.transforms(), ident


def load_backbone(name: str, weights: str, random_seed: int = 0, device: str = "cpu") -> FrozenBackbone:
    """Backbone `name`, head removed, frozen in eval mode on `device`; BackboneWeightsError names the ways out."""
    spec = _spec(name)
    identity: dict[str, Any] = {"name": name, "arch": spec.arch, "weights": weights,
                                "torchvision": torchvision.__version__, "feature_dim": spec.dim}
    if is_random_weights(weights):
        with seeded(random_seed):  # built on the CPU: the same seed gives the same weights anywhere
            model = torchvision.models.get_model(spec.arch, weights=None)
        transform = imagenet_transform()
        identity.update(random_seed=random_seed, random_weights=True)
    else:
        state, transform, fields = _load_state(spec, weights)
        model = torchvision.models.get_model(spec.arch, weights=None)
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError) as e:  # missing or unexpected keys, wrong shapes, not a dict
            raise BackboneWeightsError(f"{weights} does not hold {spec.arch} weights: {e}") from e
        identity.update(fields)
    setattr(model, spec.head, torch.nn.Identity())  # what is left ends in global average pooling
    # hashed after the head is gone: the weights that make the stored numbers
    identity["weights_sha256"] = state_sha256(model)
    identity["preprocess"] = repr(transform)
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return FrozenBackbone(name, model, transform, device, identity)
