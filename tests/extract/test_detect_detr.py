"""`detr`: a tiny random DETR gives well-formed boxes; weights from a folder, the hub cache or nowhere, never the network."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")  # the optional `detr` extra

from extract.clip_model import state_sha256  # noqa: E402
from extract.detect import PERSON, make_detector  # noqa: E402
from extract.detect_detr import (DEFAULT_TAG, INSTALL, _TINY_SIZE, class_map, make_detr,  # noqa: E402
                                 random_detr)
from extract.errors import DetectorWeightsError  # noqa: E402
from fgm_common.config import DetectConfig  # noqa: E402
from tests.conftest import REPO_ROOT  # noqa: E402
from tests.extract.weights_helpers import COMMIT, forbid_network, hub_offline_env  # noqa: E402

WAYS = ("--detector-weights /path/to/dir", "--detector-weights none", "--detector hog")
HUB_REPO = "fgm-test/tiny-detr"
FRAME = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)


def save_tiny(folder, seed: int) -> None:
    """A seeded tiny DETR and its small image processor written as save_pretrained writes them."""
    import transformers

    random_detr(seed).save_pretrained(folder)
    transformers.DetrImageProcessor(size=_TINY_SIZE).save_pretrained(folder)


def test_classes_follow_the_labels_person_first_unused_and_no_object_dropped():
    labels, table = class_map({0: "N/A", 1: "car", 2: "person", 3: "N/A", 4: "dog"})
    assert labels == ["person", "car", "dog"]
    assert table.tolist() == [-1, 1, PERSON, -1, 2, -1]  # the last logit: "no object"
    with pytest.raises(DetectorWeightsError, match="'person'"):
        class_map({0: "LABEL_0", 1: "LABEL_1"})


def test_random_tiny_detr_gives_well_formed_boxes_best_first(monkeypatch):
    forbid_network(monkeypatch)
    detector = make_detr(DetectConfig(name="detr", weights="none", top_k=3), min_score=0.0)
    for frame in (np.full((120, 160, 3), 128, np.uint8), FRAME):
        found = detector(frame)
        assert len(found) == 3  # 10 queries, no floor: top_k of them
        assert found.xyxy.shape == (3, 4) and found.scores.shape == found.classes.shape == (3,)
        assert found.xyxy.dtype == found.scores.dtype == np.float32 and found.classes.dtype == np.int64
        assert ((found.xyxy >= 0) & (found.xyxy <= 1)).all() and (found.xyxy[:, 2:] >= found.xyxy[:, :2]).all()
        assert np.all(np.diff(found.scores) <= 0) and (found.scores > 0).all()
        assert set(found.classes) <= set(range(len(detector.labels)))
    detector.min_score = float(detector(FRAME).scores[1])  # a floor between the 2nd and 3rd best
    assert len(detector(FRAME)) == 2


def test_same_seed_same_weights_and_boxes_and_the_callers_rng_untouched(monkeypatch):
    forbid_network(monkeypatch)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    a, b = (make_detr(DetectConfig(name="detr", weights=w), min_score=0.0) for w in ("none", "random"))
    assert torch.equal(torch.rand(3), expected)
    assert a.identity() == b.identity() and a.identity()["source"] == "random"
    assert a.identity()["weights_sha256"] == state_sha256(random_detr(0)) != state_sha256(random_detr(1))
    found_a, found_b = a(FRAME), b(FRAME)
    assert np.array_equal(found_a.xyxy, found_b.xyxy) and np.array_equal(found_a.scores, found_b.scores)


def test_device_auto_is_the_cpu_without_a_gpu_and_the_identity_does_not_depend_on_it(monkeypatch):
    forbid_network(monkeypatch)
    config = DetectConfig(name="detr", weights="none")
    auto, cpu = make_detector(config, "auto"), make_detr(config)
    assert auto.device == ("cuda" if torch.cuda.is_available() else "cpu") and cpu.device == "cpu"
    assert auto.identity() == cpu.identity()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_detr_on_a_gpu_finds_the_cpu_s_boxes(monkeypatch):
    """The model on CUDA, the boxes back on the host: the same boxes, classes and order as on the CPU."""
    forbid_network(monkeypatch)
    config = DetectConfig(name="detr", weights="none", top_k=3)
    cpu, gpu = make_detr(config, min_score=0.0), make_detr(config, min_score=0.0, device="cuda")
    assert next(gpu.model.parameters()).is_cuda and gpu.identity() == cpu.identity()
    a, b = cpu(FRAME), gpu(FRAME)
    np.testing.assert_allclose(b.xyxy, a.xyxy, atol=1e-3)
    np.testing.assert_allclose(b.scores, a.scores, atol=1e-3)
    assert np.array_equal(b.classes, a.classes)


@pytest.mark.parametrize("offline", [True, False], ids=["HF_HUB_OFFLINE", "hub-unreachable"])
def test_unavailable_hub_tag_fails_fast_naming_the_ways_out(monkeypatch, tmp_path, offline):
    hub_offline_env(monkeypatch, offline)
    attempts = forbid_network(monkeypatch)
    probes = []
    monkeypatch.setattr("extract.detect_detr.reachable", lambda *a, **_k: probes.append(a) or False)
    t0 = time.perf_counter()
    with pytest.raises(DetectorWeightsError) as info:
        make_detr(DetectConfig(name="detr"), cache_dir=str(tmp_path))  # weights "" = the default tag
    assert time.perf_counter() - t0 < 1
    message = str(info.value)
    assert DEFAULT_TAG in message and str(tmp_path) in message and all(way in message for way in WAYS)
    assert ("HF_HUB_OFFLINE is set" in message) == offline and len(probes) == (0 if offline else 1)
    assert attempts == []


def test_a_cached_hub_tag_loads_with_no_network(monkeypatch, tmp_path):
    snapshot = tmp_path / f"models--{HUB_REPO.replace('/', '--')}" / "snapshots" / COMMIT
    save_tiny(snapshot, seed=2)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text(COMMIT)
    hub_offline_env(monkeypatch, False)  # cached: read offline without even a probe
    attempts = forbid_network(monkeypatch)
    detector = make_detr(DetectConfig(name="detr", weights=HUB_REPO), cache_dir=str(tmp_path))
    assert detector.identity()["source"] == HUB_REPO
    assert detector.identity()["weights_sha256"] == state_sha256(random_detr(2))
    assert attempts == []


def test_a_local_folder_or_its_weights_file_loads_and_records_the_files_sha256(monkeypatch, tmp_path):
    folder = tmp_path / "detr"
    save_tiny(folder, seed=3)
    file_hash = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    forbid_network(monkeypatch)
    for weights in (folder, folder / "model.safetensors"):
        detector = make_detr(DetectConfig(name="detr", weights=str(weights)), min_score=0.0)
        assert detector.identity()["file_sha256"] == file_hash
        assert detector.identity()["source"] == str(folder / "model.safetensors")
        assert state_sha256(detector.model) == state_sha256(random_detr(3))
        assert detector.processor.size.shortest_edge == _TINY_SIZE["shortest_edge"]  # the folder's own processor
    with pytest.raises(DetectorWeightsError, match="the store was made with"):
        make_detr(DetectConfig(name="detr", weights=str(folder), sha256="0" * 64))
    with pytest.raises(DetectorWeightsError, match="not a save_pretrained folder"):
        make_detr(DetectConfig(name="detr", weights=str(tmp_path)))
    with pytest.raises(DetectorWeightsError, match="neither an existing path nor a hub tag"):
        make_detr(DetectConfig(name="detr", weights=str(tmp_path / "missing" / "dir")))


def test_without_transformers_the_message_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now raises ImportError
    with pytest.raises(DetectorWeightsError, match=INSTALL.replace("[", r"\[").replace("]", r"\]")):
        make_detector(DetectConfig(name="detr", weights="none"))


def test_registering_detr_does_not_import_transformers():
    code = "import sys, extract.detect as d; assert 'detr' in d.DETECTORS; assert 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True, timeout=60)


def test_extract_with_random_detr_records_it_and_unavailable_weights_stop_before_anything(
        tiny_videos, tmp_path, monkeypatch, run_extract_cli):
    from fgm_common.store import BOX_ARRAYS, FeatureStore

    out = tmp_path / "detr.zarr"
    result = run_extract_cli(tiny_videos, out, "--detector", "detr", "--detector-weights", "none", frames=3)
    assert result.exit_code == 0, result.output
    store = FeatureStore.open(str(out))
    assert store.config.detect == DetectConfig(name="detr", weights="none")
    assert store.detector_identity["weights_sha256"] == state_sha256(random_detr(0))
    entry = store.entries()[0]
    assert store.read(entry, BOX_ARRAYS)["boxes"].shape == (3, 4, 4)
    hub_offline_env(monkeypatch, True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    refused = run_extract_cli(tiny_videos, tmp_path / "no.zarr", "--detector", "detr")
    assert refused.exit_code == 2 and "--detector hog" in refused.output and not (tmp_path / "no.zarr").exists()
