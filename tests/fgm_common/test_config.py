"""ExtractConfig: JSON and zarr-attrs round trips, unknown fields, a digest that tracks every field, validate()."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest

from fgm_common.config import ExtractConfig
from fgm_common.store import FeatureStore

CUSTOM = ExtractConfig(
    sampling="fps", num_frames=8, fps=2.5, clip_model="fgm-tiny-vit", pretrained="none", random_seed=3,
    tokens=True, flow_pairs="native", flow_grid=16, templates=("a {label}.", "someone doing {label}."),
    backbones=("resnet50",),
)


def _changed(cfg: ExtractConfig, name: str):
    """A value of field `name` different from cfg's, of the same type."""
    value = getattr(cfg, name)
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


def test_keyword_construction_from_attrs_equals_original():
    back = ExtractConfig(**CUSTOM.to_dict())  # lists from JSON, as zarr attrs give them
    assert back == CUSTOM
    assert hash(back) == hash(CUSTOM)


def test_read_back_from_store_attrs():
    url = f"memory://cfg-{uuid.uuid4().hex}"
    FeatureStore.create_or_open(url, CUSTOM, {})
    store = FeatureStore.open(url)
    assert store.config == CUSTOM
    assert ExtractConfig(**dict(store.root.attrs["extract_config"])) == CUSTOM


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


@pytest.mark.parametrize("base,name", [pytest.param(base, f.name, id=f"{base.sampling}-{f.name}")
                                       for base in (CUSTOM, UNIFORM) for f in dataclasses.fields(ExtractConfig)
                                       if f.name != UNUSED[base.sampling]])  # that one: the test below
def test_digest_and_diff_follow_every_field(base, name):
    other = dataclasses.replace(base, **{name: _changed(base, name)})
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
        ({"flow_pairs": "all"}, "flow_pairs must be"),
        ({"templates": ()}, "template"),
        ({"templates": ("a video of {label}.", "no placeholder")}, "{label}"),
    ],
)
def test_validate_names_the_problem(changes, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        dataclasses.replace(ExtractConfig(), **changes).validate()


def test_default_flow_pairs_is_native():
    """Each sampled frame to its next native frame: the measured default (docs/design-choices.md)."""
    assert ExtractConfig().flow_pairs == "native"
