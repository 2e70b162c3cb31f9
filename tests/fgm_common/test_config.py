"""ExtractConfig: JSON and zarr-attrs round trips, unknown fields, a digest that tracks every field, validate(),
and the flat stored form (digests pinned from before FlowConfig) that keeps existing stores readable."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest

from fgm_common.config import DetectConfig, ExtractConfig, FlowConfig
from fgm_common.store import FeatureStore

CUSTOM = ExtractConfig(
    sampling="fps", num_frames=8, fps=2.5, clip_model="fgm-tiny-vit", pretrained="none", random_seed=3,
    tokens=True, flow=FlowConfig(pairs="native", grid=16), templates=("a {label}.", "someone doing {label}."),
    backbones=("resnet50",),
)

# Every setting by its stored (flat) name: ExtractConfig's own fields and the flow_* keys of its FlowConfig.
FLOW_KEYS = {f"flow_{f.name}": f.name for f in dataclasses.fields(FlowConfig)}
# ... and the detector* keys of its DetectConfig, stored only when a detector is used
DETECT_KEYS = {("detector" if f.name == "name" else f"detector_{f.name}"): f.name for f in dataclasses.fields(DetectConfig)}
STORED_NAMES = [f.name for f in dataclasses.fields(ExtractConfig) if f.name not in ("flow", "detect")] + list(FLOW_KEYS)


def _get(cfg: ExtractConfig, name: str):
    if name in DETECT_KEYS:
        return getattr(cfg.detect, DETECT_KEYS[name])
    return getattr(cfg.flow, FLOW_KEYS[name]) if name in FLOW_KEYS else getattr(cfg, name)


def _with(cfg: ExtractConfig, name: str, value) -> ExtractConfig:
    """cfg with the setting stored as `name` set to `value`."""
    if name in FLOW_KEYS:
        return dataclasses.replace(cfg, flow=dataclasses.replace(cfg.flow, **{FLOW_KEYS[name]: value}))
    if name in DETECT_KEYS:
        return dataclasses.replace(cfg, detect=dataclasses.replace(cfg.detect, **{DETECT_KEYS[name]: value}))
    return dataclasses.replace(cfg, **{name: value})


def _changed(cfg: ExtractConfig, name: str):
    """A valid value of setting `name` different from cfg's, of the same type."""
    value = _get(cfg, name)
    if name == "flow_pairs":
        return {"native": "sampled", "sampled": "native"}[value]
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, tuple):
        return value + ("extra {label}",)
    return value + "-x"


def test_dict_round_trip_is_json_and_exact():
    d = CUSTOM.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["templates"] == ["a {label}.", "someone doing {label}."]  # tuples travel as lists
    back = ExtractConfig.from_dict(json.loads(json.dumps(d)))
    assert back == CUSTOM
    assert isinstance(back.templates, tuple) and isinstance(back.backbones, tuple)


def test_keyword_construction_with_lists_equals_original():
    # lists, as JSON and zarr attrs give them back
    back = dataclasses.replace(CUSTOM, templates=list(CUSTOM.templates), backbones=list(CUSTOM.backbones))
    assert back == CUSTOM
    assert hash(back) == hash(CUSTOM)


def test_read_back_from_store_attrs():
    url = f"memory://cfg-{uuid.uuid4().hex}"
    FeatureStore.create_or_open(url, CUSTOM, {})
    store = FeatureStore.open(url)
    assert store.config == CUSTOM
    attrs = dict(store.root.attrs["extract_config"])
    assert attrs == CUSTOM.to_dict() and attrs["flow_grid"] == 16  # flat flow_* keys, as stores always had
    assert ExtractConfig.from_dict(attrs) == CUSTOM


# Known answers computed on the code before FlowConfig (flat ExtractConfig.flow_* fields, commit
# 89d17cf): they pin store compatibility. A store is named and checked by its config's digest and
# keeps `to_dict()` in its attrs, so a changed value here means every existing store is refused.
PRE_FLOWCONFIG_DEFAULT = {
    "sampling": "uniform", "num_frames": 16, "fps": 0.0, "clip_model": "ViT-B-32", "pretrained": "openai",
    "clip_sha256": "", "random_seed": 0, "tokens": False, "flow_backend": "dis", "flow_pairs": "native",
    "flow_compute_size": 128, "flow_grid": 56, "flow_hist_bins": 8, "templates": ["a video of a person {label}."],
    "backbones": [], "backbone_weights": "IMAGENET1K_V2", "backbone_sha256": "",
}
PINNED_DIGESTS = [
    (ExtractConfig(), "7a9b58e83099"),
    (ExtractConfig(flow=FlowConfig(backend="farneback", pairs="sampled", compute_size=96, grid=16, hist_bins=4)),
     "73c0acfa4423"),
    (ExtractConfig(sampling="fps", fps=5.0, flow=FlowConfig(backend="dis-medium", grid=32), backbones=("resnet50",),
                   tokens=True), "d9d00c5d3528"),
    (CUSTOM, "08cab09e4fa0"),
]
# A detector's settings enter the stored dict only when one is used: every store above keeps its digest.
HOG = dataclasses.replace(ExtractConfig(), detect=DetectConfig(name="hog"))


@pytest.mark.parametrize("config,digest", PINNED_DIGESTS, ids=["default", "flow", "fps-dis-medium", "custom"])
def test_digest_and_round_trip_are_those_of_stores_made_before_flowconfig(config, digest):
    assert config.digest() == digest
    assert ExtractConfig.from_dict(config.to_dict()) == config
    assert ExtractConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_stored_dict_is_the_flat_one_stores_always_had():
    # same keys, values and order as the attrs of a store written before FlowConfig
    assert json.dumps(ExtractConfig().to_dict()) == json.dumps(PRE_FLOWCONFIG_DEFAULT)
    old = PRE_FLOWCONFIG_DEFAULT | {"flow_backend": "farneback", "flow_pairs": "sampled", "flow_compute_size": 96,
                                    "flow_grid": 16, "flow_hist_bins": 4}
    config = ExtractConfig.from_dict(old)
    assert config == PINNED_DIGESTS[1][0] and config.digest() == PINNED_DIGESTS[1][1]
    assert config.to_dict() == old
    assert ExtractConfig.from_dict({k: v for k, v in old.items() if k != "flow_hist_bins"}).flow.hist_bins == 8


def test_a_detector_adds_its_keys_and_no_detector_adds_none():
    assert not any(k.startswith("detector") for k in ExtractConfig().to_dict())
    stored = HOG.to_dict()
    assert {k: stored[k] for k in DETECT_KEYS} == {"detector": "hog", "detector_top_k": 4, "detector_weights": "",
                                                  "detector_sha256": ""}
    assert HOG.digest() == "0e965628ac67"  # pinned: a change here refuses every store made with a detector
    assert ExtractConfig.from_dict(stored) == HOG and ExtractConfig.from_dict(ExtractConfig().to_dict()) == ExtractConfig()
    assert list(ExtractConfig().diff(HOG)) == list(DETECT_KEYS)  # every key the other store lacks is named
    with pytest.raises(ValueError, match="top_k"):
        DetectConfig(name="hog", top_k=0)


def test_unknown_field_is_rejected_with_advice():
    d = CUSTOM.to_dict() | {"warp_speed": 9}
    with pytest.raises(ValueError, match="warp_speed") as e:
        ExtractConfig.from_dict(d)
    assert "upgrade" in str(e.value)


def test_digest_is_stable_and_order_free():
    a = ExtractConfig.from_dict(dict(reversed(list(CUSTOM.to_dict().items()))))
    assert a.digest() == CUSTOM.digest()
    assert len(CUSTOM.digest()) == 12 and int(CUSTOM.digest(), 16) >= 0
    assert ExtractConfig().digest() == ExtractConfig().digest() != CUSTOM.digest()


UNIFORM = dataclasses.replace(CUSTOM, sampling="uniform", num_frames=8, fps=0.0)
UNUSED = {"fps": "num_frames", "uniform": "fps"}  # the setting each sampling mode has no use for


@pytest.mark.parametrize("base,name", [pytest.param(base, name, id=f"{base.sampling}-{name}")
                                       for base in (CUSTOM, UNIFORM) for name in STORED_NAMES
                                       if name != UNUSED[base.sampling]]  # that one: the test below
                         + [pytest.param(dataclasses.replace(CUSTOM, detect=DetectConfig(name="hog")), name,
                                         id=f"detecting-{name}") for name in DETECT_KEYS])
def test_digest_and_diff_follow_every_field(base, name):
    other = _with(base, name, _changed(base, name))
    assert other.digest() != base.digest()
    assert list(base.diff(other)) == [name]
    assert base.diff(base) == {}


@pytest.mark.parametrize("base", [CUSTOM, UNIFORM], ids=["fps", "uniform"])
def test_unused_sampling_setting_is_ignored(base):
    """`--fps 5 --frames 8` names the same store as `--fps 5`: the frame count is not what fps mode samples."""
    name = UNUSED[base.sampling]
    other = dataclasses.replace(base, **{name: _changed(base, name)})
    assert other == base and other.digest() == base.digest() and base.diff(other) == {}
    assert getattr(base, name) == 0  # one canonical value, also for configs read from older stores


def test_valid_configs_pass():
    ExtractConfig().validate()
    CUSTOM.validate()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"sampling": "random"}, "sampling must be"),
        ({"num_frames": 0}, "num_frames must be at least 1"),
        ({"sampling": "fps", "fps": 0.0}, "--fps must be positive"),
        ({"templates": ()}, "template"),
        ({"templates": ("a video of {label}.", "no placeholder")}, "{label}"),
    ],
)
def test_validate_names_the_problem(changes, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        dataclasses.replace(ExtractConfig(), **changes).validate()


def test_default_flow_pairs_is_native():
    """Each sampled frame to its next native frame: the measured default (docs/design-choices.md)."""
    assert ExtractConfig().flow.pairs == "native"


def test_flow_config_defaults_and_frozen():
    flow = ExtractConfig().flow
    assert flow == FlowConfig()
    assert (flow.backend, flow.pairs, flow.compute_size, flow.grid, flow.hist_bins) == ("dis", "native", 128, 56, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        flow.grid = 8  # type: ignore[misc]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"pairs": "all"}, "flow_pairs must be 'sampled' or 'native'"),
        ({"compute_size": 0}, "flow_compute_size must be at least 1"),
        ({"grid": 0}, "flow_grid must be at least 1"),
        ({"hist_bins": -1}, "flow_hist_bins must be at least 1"),
    ],
)
def test_flow_config_names_the_problem_when_made(changes, message):
    with pytest.raises(ValueError, match=message):
        FlowConfig(**changes)
