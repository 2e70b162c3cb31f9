"""Extra backbones beside CLIP: resnet50 arrays, known answer, adding one to a store, refusals, offline weights.

ResNet-50 at 224 px costs ~0.5 s per frame on two CPU cores, so the videos are few (one per class)
and short (4 frames); weights are random (`--backbone-weights none`) or a local file: no network.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import urllib.error
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision
import zarr

from extract.backbones import BACKBONES, checkpoint_path, fetch_weights, load_backbone, resolve_weights
from fgm_common.config import ExtractConfig
from fgm_common.config import grown_config
from fgm_common.store import FeatureStore
from fgm_common.store.layout import weights_name
from tests.extract.cli_helpers import decoded_frames, flat, run_ids, sha256

FRAMES = 4
DIM = BACKBONES["resnet50"].dim
NONE = ("--backbone", "resnet50", "--backbone-weights", "none")
TAG_FILE = "resnet50-11ad3fa6.pth"  # torchvision's file name of IMAGENET1K_V2


def offline(monkeypatch, tmp_path: Path) -> None:
    """No network, as a real offline machine fails: urlopen raises URLError(gaierror) at once; empty hub cache."""
    def no_network(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(torch.hub, "urlopen", no_network)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


@pytest.fixture(scope="module")
def videos(tiny_videos, tmp_path_factory) -> Path:
    """One video per class of `tiny_videos` (file times kept) plus the descriptions; read-only."""
    dst = tmp_path_factory.mktemp("bb_videos")
    for folder in sorted(p for p in tiny_videos.iterdir() if p.is_dir()):
        (dst / folder.name).mkdir()
        first = sorted(folder.glob("*.mp4"))[0]
        shutil.copy2(first, dst / folder.name / first.name)
    shutil.copy2(tiny_videos / "descriptions.json", dst / "descriptions.json")
    return dst


@pytest.fixture(scope="module")
def grown(videos, tmp_path_factory, run_extract_cli):
    """A CLIP-only store, then the same store after `--backbone resnet50 --backbone-weights none`; read-only."""
    url = str(tmp_path_factory.mktemp("grown") / "store.zarr")
    assert run_extract_cli(videos, url, frames=FRAMES).exit_code == 0
    store = FeatureStore.open(url)
    before = {e.key: store.read(e) for e in store.entries()}
    ids = run_ids(url)
    result = run_extract_cli(videos, url, *NONE, frames=FRAMES)
    return SimpleNamespace(url=url, before=before, run_ids=ids, result=result)


@pytest.fixture(scope="module")
def seeded_resnet():
    """The random ResNet-50 the store's seed builds, head removed, as the extractor builds it."""
    return load_backbone("resnet50", "none", random_seed=0, device="cpu")


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    """A torchvision resnet50 state_dict file holding the seed-0 random weights (head included)."""
    torch.manual_seed(0)
    model = torchvision.models.get_model("resnet50", weights=None)
    path = tmp_path_factory.mktemp("weights") / "my_resnet50.pth"
    torch.save(model.state_dict(), path)
    return path


def copy_store(url: str, dst: Path) -> str:
    shutil.copytree(url, dst)
    return str(dst)


# ---- adding a backbone to a store ------------------------------------------------------------------

def test_adding_a_backbone_reextracts_and_keeps_clip_identical(grown, seeded_resnet):
    assert grown.result.exit_code == 0, grown.result.output
    out = flat(grown.result.output)
    assert "3 videos already in the store lack resnet50" in out and "weights are RANDOM" in out
    store = FeatureStore.open(grown.url)
    cfg = store.config
    assert (cfg.backbones, cfg.backbone_weights, cfg.backbone_sha256) == (("resnet50",), "none", "")
    assert store.root.attrs["config_digest"] == cfg.digest()
    last = store.runs()[-1]
    assert (last["extracted"], last["skipped"], last["lacking_backbone"]) == (3, 0, 3)
    identity = store.backbone_identity["resnet50"]
    assert identity["random_weights"] is True and identity["random_seed"] == 0
    assert identity["weights_sha256"] == seeded_resnet.identity["weights_sha256"]
    assert identity["torchvision"] == torchvision.__version__ and identity["feature_dim"] == DIM
    entries = store.entries()
    assert [e.key for e in entries] == sorted(grown.before)
    for entry in entries:
        arrays = store.read(entry)
        assert arrays["resnet50"].shape == (FRAMES, DIM) and arrays["resnet50"].dtype == np.float32
        assert np.isfinite(arrays["resnet50"]).all() and arrays["resnet50"].std() > 0
        assert run_ids(grown.url)[entry.key] != grown.run_ids[entry.key]  # really written again
        old = grown.before[entry.key]
        assert set(arrays) == set(old) | {"resnet50"}
        for name, value in old.items():  # CLIP, flow, timestamps: the same numbers, bit for bit
            np.testing.assert_array_equal(arrays[name], value, err_msg=name)


def test_stored_features_equal_a_direct_forward(grown, seeded_resnet):
    """Known answer: the sampled frames through the same seeded ResNet-50 give the stored rows."""
    store = FeatureStore.open(grown.url)
    entry = store.entries()[0]
    direct = seeded_resnet.encode_frames(decoded_frames(entry.meta["path"], FRAMES))  # (T, 2048)
    np.testing.assert_allclose(store.read(entry, ("resnet50",))["resnet50"], direct, rtol=1e-4, atol=1e-4)


def test_rerun_decodes_nothing_and_new_videos_get_the_stores_backbones(grown, videos, tmp_path,
                                                                     run_extract_cli, monkeypatch):
    url = copy_store(grown.url, tmp_path / "store.zarr")
    before = run_ids(url)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a rerun over an up-to-date store opened a video")

    with monkeypatch.context() as m:
        m.setattr("extract.produce.open_source", no_decoding)
        for extra in (NONE, ()):  # with the backbone, and without it (the store's are used)
            result = run_extract_cli(videos, url, *extra, frames=FRAMES)
            assert result.exit_code == 0, result.output
            assert "0 decoded" in flat(result.output)
    assert "also holds resnet50 features" in flat(result.output)
    assert run_ids(url) == before

    # a new video, run without --backbone: it gets resnet50 like every other entry
    more = tmp_path / "videos"
    shutil.copytree(videos, more)
    new = more / "swing_slow" / "added.mp4"
    shutil.copy(next((more / "swing_slow").glob("*.mp4")), new)
    result = run_extract_cli(more, url, frames=FRAMES)
    assert result.exit_code == 0, result.output
    store = FeatureStore.open(url)
    assert store.config == FeatureStore.open(grown.url).config and store.runs()[-1]["extracted"] == 1
    assert store.read("swing_slow/added.mp4", ("resnet50",))["resnet50"].shape == (FRAMES, DIM)


def test_other_weights_are_refused(grown, videos, tmp_path, run_extract_cli, monkeypatch, weights_file):
    offline(monkeypatch, tmp_path)  # a refusal must come before any download
    url = copy_store(grown.url, tmp_path / "store.zarr")
    before = (run_ids(url), FeatureStore.open(url).config)
    for weights in ("IMAGENET1K_V1", str(weights_file)):
        result = run_extract_cli(videos, url, "--backbone", "resnet50", "--backbone-weights", weights, frames=FRAMES)
        assert result.exit_code == 2, result.output
        assert "backbone_weights: store has 'none'" in flat(result.output)
    assert (run_ids(url), FeatureStore.open(url).config) == before

    # same tag, other bytes (e.g. another torchvision initialising differently): refused by the hash
    store = FeatureStore.open(url, mode="a")
    store.weights.put(weights_name("resnet50"), {**store.backbone_identity["resnet50"], "weights_sha256": "0" * 64})
    more = tmp_path / "videos"
    shutil.copytree(videos, more)
    shutil.copy(next((more / "swing_slow").glob("*.mp4")), more / "swing_slow" / "added.mp4")
    result = run_extract_cli(more, url, frames=FRAMES)
    assert result.exit_code == 2, result.output
    assert "resnet50 weights loaded now differ" in flat(result.output) and "weights_sha256" in result.output
    assert "swing_slow/added.mp4" not in run_ids(url)


def test_identity_is_recorded_by_whoever_builds_the_towers(grown, tmp_path):
    """A dask worker, or a second process, records the weights when it loads them, before any entry is written."""
    from extract.pipeline import Extractor

    url = copy_store(grown.url, tmp_path / "store.zarr")
    store = FeatureStore.open(url, mode="a")
    expected = store.backbone_identity["resnet50"]
    store.weights.delete(weights_name("resnet50"))
    assert "resnet50" not in FeatureStore.open(url).backbone_identity
    Extractor(store.config, url, device="cpu")
    assert FeatureStore.open(url).backbone_identity["resnet50"] == expected


# ---- weights sources ---------------------------------------------------------------------------------

def test_offline_tag_names_the_ways_out_and_leaves_the_store(videos, tmp_path, run_extract_cli, monkeypatch):
    offline(monkeypatch, tmp_path)
    url = str(tmp_path / "store.zarr")
    assert run_extract_cli(videos, url, frames=2).exit_code == 0
    before = (run_ids(url), FeatureStore.open(url).config)
    result = run_extract_cli(videos, url, "--backbone", "resnet50", frames=2)  # default tag IMAGENET1K_V2
    assert result.exit_code == 2, result.output
    out = flat(result.output)
    assert "could not get resnet50 weights IMAGENET1K_V2" in out and "URLError" in out
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    assert str(hub / TAG_FILE) in out and "--backbone-weights /path/to/" in out and "--backbone-weights none" in out
    assert (run_ids(url), FeatureStore.open(url).config) == before  # the failed run changed nothing

    fresh = tmp_path / "fresh.zarr"
    result = run_extract_cli(videos, fresh, "--backbone", "resnet50", frames=2)
    assert result.exit_code == 2 and "Ways out" in flat(result.output)
    assert "schema_version" not in zarr.open_group(str(fresh), mode="r").attrs  # never became a store


def test_tag_file_put_in_the_hub_cache_loads_offline(weights_file, tmp_path, monkeypatch):
    offline(monkeypatch, tmp_path)
    hub_file = tmp_path / "torch_home" / "hub" / "checkpoints" / TAG_FILE
    hub_file.parent.mkdir(parents=True)
    os.link(weights_file, hub_file)
    assert resolve_weights(("resnet50",), "default") == ("IMAGENET1K_V2", "")
    member = torchvision.models.get_model_weights("resnet50").IMAGENET1K_V2
    assert checkpoint_path(member) == hub_file
    fetch_weights(("resnet50",), "IMAGENET1K_V2")  # present: nothing to download
    net = load_backbone("resnet50", "IMAGENET1K_V2")
    assert net.identity["tag"] == "IMAGENET1K_V2" and net.identity["file_sha256"] == sha256(weights_file)
    assert "resize_size=[232]" in net.identity["preprocess"]  # the tag's own preprocessing
    assert net.preprocess_frame(np.zeros((48, 64, 3), np.uint8)).shape == (3, 224, 224)


def test_local_weights_file_gives_the_same_features_and_records_its_sha256(grown, videos, weights_file, tmp_path,
                                                                          run_extract_cli):
    """The file holds the seed-0 weights: its features must equal those of the random store, to the bit."""
    one = tmp_path / "videos"
    (one / "swing_slow").mkdir(parents=True)
    [src] = (videos / "swing_slow").glob("*.mp4")
    shutil.copy2(src, one / "swing_slow" / src.name)
    url = str(tmp_path / "store.zarr")
    result = run_extract_cli(one, url, "--backbone", "resnet50", "--backbone-weights", str(weights_file), frames=FRAMES)
    assert result.exit_code == 0, result.output
    store = FeatureStore.open(url)
    assert store.config.backbone_weights == str(weights_file) and store.config.backbone_sha256 == sha256(weights_file)
    identity = store.backbone_identity["resnet50"]
    assert identity["file_sha256"] == sha256(weights_file) and identity["random_weights"] is False
    random_store = FeatureStore.open(grown.url)
    assert identity["weights_sha256"] == random_store.backbone_identity["resnet50"]["weights_sha256"]
    key = f"swing_slow/{src.name}"
    np.testing.assert_array_equal(store.read(key, ("resnet50",))["resnet50"],
                                  random_store.read(key, ("resnet50",))["resnet50"])


# ---- the config rule and the CLI's checks -------------------------------------------------------------

def test_grown_config_allows_only_extra_backbones():
    base = ExtractConfig(clip_model="fgm-tiny-vit", pretrained="none")
    with_r50 = dataclasses.replace(base, backbones=("resnet50",), backbone_weights="none")
    assert grown_config(base, base) == base
    assert grown_config(base, with_r50) == with_r50  # added, with the run's weights
    assert grown_config(with_r50, base) == with_r50  # a run without --backbone takes the store's
    both = dataclasses.replace(with_r50, backbones=("resnet50", "other"))
    assert grown_config(with_r50, dataclasses.replace(with_r50, backbones=("other",))) == both
    assert grown_config(with_r50, dataclasses.replace(with_r50, backbone_weights="IMAGENET1K_V2")) is None
    assert grown_config(with_r50, dataclasses.replace(with_r50, backbone_sha256="ab")) is None
    assert grown_config(base, dataclasses.replace(with_r50, num_frames=8)) is None  # and nothing else
    assert grown_config(with_r50, dataclasses.replace(base, tokens=True)) is None


@pytest.mark.parametrize("extra, message", [
    (("--backbone", "resnet5"), "unknown backbone 'resnet5'"),
    (("--backbone", "resnet50", "--backbone-weights", "IMAGENET9K"), "neither a file nor a torchvision tag"),
    (("--backbone-weights", "none"), "--backbone-weights needs --backbone"),
])
def test_cli_checks_names_and_weights_before_touching_the_store(videos, tmp_path, run_extract_cli, extra, message):
    url = tmp_path / "store.zarr"
    result = run_extract_cli(videos, url, *extra, frames=2)
    assert result.exit_code == 2 and message in flat(result.output), result.output
    assert not url.exists()


def test_dask_workers_extract_the_backbone_like_one_process(grown, videos, tmp_path, run_extract_cli):
    """`--backbone` through a dask cluster: same arrays as the in-process store, identity recorded by the driver."""
    from dask.distributed import LocalCluster

    url = str(tmp_path / "dask.zarr")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        result = run_extract_cli(videos, url, *NONE, "--scheduler", cluster.scheduler_address, frames=FRAMES)
    assert result.exit_code == 0, result.output
    local, dask = FeatureStore.open(grown.url), FeatureStore.open(url)
    assert dask.config == local.config
    assert dask.backbone_identity["resnet50"]["weights_sha256"] == local.backbone_identity["resnet50"]["weights_sha256"]
    assert dask.runs()[-1]["scheduler"] == cluster.scheduler_address
    for entry in local.entries():
        ours = dask.read(next(e for e in dask.entries() if e.key == entry.key), ("resnet50",))["resnet50"]
        np.testing.assert_allclose(ours, local.read(entry, ("resnet50",))["resnet50"], rtol=1e-4, atol=1e-4)
