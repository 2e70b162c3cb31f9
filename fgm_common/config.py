"""ExtractConfig: every setting that changes a number in the feature store, frozen and JSON-round-trippable.

Its flow settings are one nested `FlowConfig`. It lives here, not in extract/flow.py, because the
store reads configs back and fgm_common imports nothing from the stages; the backend registry and
`resolve_backend` stay in extract/flow.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

# Weights sources that mean "random initialisation, seeded": for CLIP (`pretrained`) and backbones.
RANDOM_TAGS = ("none", "random")


def is_random_weights(source: str) -> bool:
    """True when a weights source (a `pretrained` or `backbone_weights` value) asks for random weights."""
    return str(source).lower() in RANDOM_TAGS


@dataclass(frozen=True)
class FlowConfig:
    """How every stored flow number is made (extract/flow.py computes it); checked when made.

    `pairs`: "native" = each sampled frame to its next native frame (T fields; default, it sees fine
    and fast motion, docs/design-choices.md), "sampled" = between consecutive sampled frames (T-1
    fields, Eq. 5 of the paper taken literally). In the store's attrs each field is a flat
    `flow_<name>` key of the ExtractConfig (`ExtractConfig.to_dict`), as before this class existed.
    """

    backend: str = "dis"  # a registry name (extract/flow.py: FLOW_BACKENDS); resolved, never "auto", in a store
    pairs: str = "native"
    compute_size: int = 128  # short side of the frames flow is computed on
    grid: int = 56  # stored field is (2, grid, grid)
    hist_bins: int = 8  # orientation bins; the histogram has 2 * hist_bins values

    def __post_init__(self) -> None:
        if self.pairs not in ("sampled", "native"):
            raise ValueError(f"flow_pairs must be 'sampled' or 'native', not {self.pairs!r}")
        for name in ("compute_size", "grid", "hist_bins"):
            if getattr(self, name) < 1:
                raise ValueError(f"flow_{name} must be at least 1, not {getattr(self, name)}")


_FLOW_KEYS = {f"flow_{f.name}": f.name for f in dataclasses.fields(FlowConfig)}  # stored key -> FlowConfig field


@dataclass(frozen=True)
class DetectConfig:
    """Which detector finds people (and objects) in every sampled frame (extract/detect.py), and its weights.

    `name` "none" writes no box arrays, and a store made so has exactly the attrs and digest of one
    made before detectors existed. In the store's attrs the fields are flat keys: `detector` (the
    name) and `detector_<field>` for the rest, all left out when the name is "none".
    """

    name: str = "none"  # a registry name (extract/detect.py: DETECTORS), or "none"
    top_k: int = 4  # boxes kept per frame, best first: the K of the store's (T, K, ...) box arrays
    weights: str = ""  # detr: a hub tag or a local path ("" = the detector's default); hog: its built-in SVM
    sha256: str = ""  # sha256 of a local weights file, filled in when `weights` is a path

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"detector_top_k must be at least 1, not {self.top_k}")

    @property
    def enabled(self) -> bool:
        return self.name != "none"


# stored key -> DetectConfig field
_DETECT_KEYS = {("detector" if f.name == "name" else f"detector_{f.name}"): f.name for f in dataclasses.fields(DetectConfig)}


# Fields added after stores were first written, with the value every older store was made with.
_LATER_FIELDS = {"clip_runtime": "torch", "preprocess": "pil"}


@dataclass(frozen=True)
class ExtractConfig:
    """How features were made. Stored in the zarr attrs and read back with `ExtractConfig.from_dict`.

    Settings that do not change any stored number (workers, progress bars) are run options, not
    config: two runs that differ only in those write the same store.
    """

    # Frame sampling: `num_frames` TSN-style segment midpoints, or one frame every 1/fps seconds.
    sampling: str = "uniform"  # "uniform" | "fps"
    num_frames: int = 16  # used when sampling == "uniform" (0 in fps mode)
    fps: float = 0.0  # used when sampling == "fps" (0 in uniform mode)

    # CLIP image and text towers (open_clip). `pretrained` is a tag ("openai"), a local file path,
    # "local-dir:/path", or "none" for random weights (then `random_seed` makes them reproducible).
    clip_model: str = "ViT-B-32"
    pretrained: str = "openai"
    clip_sha256: str = ""  # sha256 of a local checkpoint file, filled in when `pretrained` is a path
    random_seed: int = 0
    tokens: bool = False  # also keep the patch tokens entering the last vision block
    # Where the frozen image tower runs (registry: extract/clip_runtime.py CLIP_RUNTIMES): "torch",
    # "onnx" (fp32) or "onnx-int8". Its numbers differ, so stores of different runtimes never mix.
    clip_runtime: str = "torch"
    # How frames become the image tower's input (registry: extract/preprocess.py PREPROCESSORS): "pil"
    # (open_clip's own transform) or "opencv" (its geometry with OpenCV's filters, faster; the embeddings
    # differ slightly, docs/clip-runtime.md), so stores of different preprocessing never mix.
    preprocess: str = "pil"

    # Optical flow (see extract/flow.py); stored as the flat keys flow_backend, flow_pairs, ...
    flow: FlowConfig = field(default_factory=FlowConfig)

    # People and objects per frame (see extract/detect.py); stored as the flat keys detector, detector_top_k, ...
    detect: DetectConfig = field(default_factory=DetectConfig)

    # Text prompts: the templates applied to each class name, plus per-class descriptions.
    templates: tuple[str, ...] = ("a video of a person {label}.",)

    # Extra visual backbones written beside CLIP (issue: ablations), e.g. ("resnet50",); see
    # extract/backbones.py. One weights source for all of them: a torchvision tag, a local state_dict
    # file (then `backbone_sha256` names its bytes), or "none" for random weights seeded by `random_seed`.
    backbones: tuple[str, ...] = field(default_factory=tuple)
    backbone_weights: str = "IMAGENET1K_V2"
    backbone_sha256: str = ""

    def __post_init__(self) -> None:
        # The setting the other sampling mode uses means nothing here: canonical values, so that
        # `--fps 5 --frames 8` names the same store as `--fps 5` (and reads stores written before).
        if self.sampling == "fps":
            object.__setattr__(self, "num_frames", 0)
        elif self.sampling == "uniform":
            object.__setattr__(self, "fps", 0.0)
        # zarr attrs and JSON give lists back: a config made with lists must equal (and hash like) the original
        for name in ("templates", "backbones"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))

    def to_dict(self) -> dict:
        """JSON-safe flat dict, the store's format; tuples become lists, `flow` becomes flow_* keys.

        Flat, in the field order of the time the flow settings were fields of their own, so that
        stored attrs and digests are those of every store written before FlowConfig. `detect`
        becomes detector* keys, none of them when no detector is used (older digests hold).
        """
        flat: dict = {}
        for name, value in dataclasses.asdict(self).items():
            if name in _LATER_FIELDS and value == _LATER_FIELDS[name]:
                continue  # at its default, a later field is left out: older stores' attrs and digests hold
            if name == "flow":
                flat.update({key: value[f] for key, f in _FLOW_KEYS.items()})
            elif name == "detect":
                flat.update({key: value[f] for key, f in _DETECT_KEYS.items()} if self.detect.enabled else {})
            else:
                flat[name] = value
        return json.loads(json.dumps(flat))

    @classmethod
    def from_dict(cls, d: dict) -> "ExtractConfig":
        """Inverse of to_dict; unknown keys are an error so a newer store is never misread."""
        names = ({f.name for f in dataclasses.fields(cls)} - {"flow", "detect"}) | set(_FLOW_KEYS) | set(_DETECT_KEYS)
        unknown = set(d) - names
        if unknown:
            raise ValueError(
                f"store config has fields this fgm does not know: {sorted(unknown)}; upgrade fgm"
            )
        tuple_fields = {"templates", "backbones"}
        flow = FlowConfig(**{_FLOW_KEYS[k]: v for k, v in d.items() if k in _FLOW_KEYS})
        detect = DetectConfig(**{_DETECT_KEYS[k]: v for k, v in d.items() if k in _DETECT_KEYS})
        rest = {k: tuple(v) if k in tuple_fields else v for k, v in d.items()
                if k not in _FLOW_KEYS and k not in _DETECT_KEYS}
        return cls(**{**_LATER_FIELDS, **rest}, flow=flow, detect=detect)  # a later field left out: what older stores used

    def digest(self) -> str:
        """Short stable hash of the config: names a store and detects mismatches."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def diff(self, other: "ExtractConfig") -> dict[str, tuple]:
        """Fields that differ: {name: (self value, other value)}."""
        a, b = ({**_LATER_FIELDS, "detector": "none", **c.to_dict()} for c in (self, other))
        return {k: (a.get(k), b.get(k)) for k in {**a, **b} if a.get(k) != b.get(k)}

    def validate(self) -> None:
        """Raise ValueError with a clear message on settings that cannot work (`flow` checks itself when made)."""
        if self.sampling not in ("uniform", "fps"):
            raise ValueError(f"sampling must be 'uniform' or 'fps', not {self.sampling!r}")
        if self.sampling == "uniform" and self.num_frames < 1:
            raise ValueError("num_frames must be at least 1")
        if self.sampling == "fps" and self.fps <= 0:
            raise ValueError("--fps must be positive when sampling by fps")
        if not self.templates or any("{label}" not in t for t in self.templates):
            raise ValueError("every text template must contain '{label}'")
        if len(set(self.backbones)) != len(self.backbones):
            raise ValueError(f"a backbone is named twice in {list(self.backbones)}")


def grown_config(stored: ExtractConfig, asked: ExtractConfig) -> ExtractConfig | None:
    """The config a run writes into a store made with `stored`, or None when the two cannot share it.

    Only backbones may be added: the result is the store's config with `asked`'s extra backbones
    appended. Their weights come from `asked` when the store had no backbone yet and must equal the
    store's otherwise. A run asking for no backbone takes the store's, so every entry stays alike.
    """
    def weights(c: ExtractConfig) -> tuple[str, str]:
        return c.backbone_weights, c.backbone_sha256

    if asked.backbones and stored.backbones and weights(asked) != weights(stored):
        return None  # one weights source per store: features of other weights are never mixed in
    weights_from = asked if asked.backbones and not stored.backbones else stored
    names = stored.backbones + tuple(b for b in asked.backbones if b not in stored.backbones)
    backbone = {"backbones": names, "backbone_weights": weights_from.backbone_weights,
                "backbone_sha256": weights_from.backbone_sha256}
    grown = dataclasses.replace(stored, **backbone)
    return grown if dataclasses.replace(asked, **backbone) == grown else None
