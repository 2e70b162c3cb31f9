"""FeatureStore: entries round trip with the documented dtypes, incomplete entries, refusals, text, fsspec URLs."""

from __future__ import annotations

import dataclasses
import uuid

import numpy as np
import pytest
import zarr

from fgm_common.config import ExtractConfig
from fgm_common.store import ARRAY_DTYPES, FRAME_HEIGHT, FRAME_WIDTH, SCHEMA_VERSION, FeatureStore, StoreError, entry_id

CFG = ExtractConfig(clip_model="fgm-tiny-vit", pretrained="none", num_frames=4)
T, D, G, BINS = 4, 8, 6, 3


def _arrays(seed: int = 0, t: int = T) -> dict[str, np.ndarray]:
    """One entry's arrays in the dtypes a caller naturally has (float64, int32), not the stored ones."""
    rng = np.random.default_rng(seed)
    return {
        "clip": rng.normal(size=(t, D)),
        "timestamps_ms": np.arange(t) * 40.0,
        "frame_index": np.arange(t, dtype=np.int32),
        "flow": rng.normal(size=(t - 1, 2, G, G)),
        "flow_hist": rng.random((t - 1, 2 * BINS)),
        "flow_ts_ms": np.stack([np.arange(t - 1) * 40.0, np.arange(1, t) * 40.0], 1),
        "tokens": rng.normal(size=(t, 5, 3)),
        "resnet50": rng.normal(size=(t, 7)),
    }


@pytest.fixture
def store(tmp_path) -> FeatureStore:
    return FeatureStore.create_or_open(str(tmp_path / "s.zarr"), CFG, {"packages": {"numpy": np.__version__}})


def test_entry_round_trip_with_documented_dtypes(store):
    arrays = _arrays()
    meta = {"label": "wave", "group": "p1", "fps": 25.0, "short_video": False}
    eid = store.write_entry("wave/a b.mp4", arrays, meta)
    assert eid == entry_id("wave/a b.mp4")

    reopened = FeatureStore.open(store.url)
    [entry] = reopened.entries()
    assert (entry.key, entry.label, entry.meta["complete"], entry.meta["group"]) == ("wave/a b.mp4", "wave", True, "p1")
    got = reopened.read(entry)
    assert sorted(got) == sorted(arrays) == reopened.array_names(entry)
    for name, arr in arrays.items():
        want_dtype = ARRAY_DTYPES.get(name, "float32")  # extra backbones are float32
        assert got[name].dtype == np.dtype(want_dtype), name
        np.testing.assert_array_equal(got[name], arr.astype(want_dtype), err_msg=name)
    assert ARRAY_DTYPES["flow"] == "float16" and ARRAY_DTYPES["frame_index"] == "int64"
    assert set(reopened.read("wave/a b.mp4", ("clip", "flow"))) == {"clip", "flow"}  # by key, a subset


def test_entries_are_sorted_by_key_and_ids_are_safe(store):
    keys = ["b/x.mp4", "a/x.mp4", "a/clip one#0-2000.0"]
    for i, key in enumerate(keys):
        store.write_entry(key, _arrays(i), {"label": key.split("/")[0]})
    entries = store.entries()
    assert [e.key for e in entries] == sorted(keys)
    assert len({e.id for e in entries}) == 3  # same basename, different folders: distinct ids
    assert all(set(e.id) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") for e in entries)


def test_entry_frame_size_is_the_recorded_width_and_height(store):
    store.write_entry("wide.mp4", _arrays(0), {FRAME_WIDTH: 1280, FRAME_HEIGHT: 720})
    store.write_entry("unprobed.mp4", _arrays(1), {})
    sizes = {e.key: e.frame_size for e in store.entries()}
    assert sizes == {"wide.mp4": (1280, 720), "unprobed.mp4": (0, 0)}


def test_interrupted_entry_is_invisible_then_replaced(store):
    key = "wave/a.mp4"
    store.write_entry("wave/ok.mp4", _arrays(1), {"label": "wave"})
    crashing = dict(_arrays(2), timestamps_ms=np.array(["not a number"]))  # fails after 'clip' is written
    with pytest.raises(ValueError):
        store.write_entry(key, crashing, {"label": "wave"})
    assert [e.key for e in store.entries()] == ["wave/ok.mp4"]
    [half] = [e for e in store.entries(include_incomplete=True) if e.key == key]
    assert half.meta["complete"] is False and store.array_names(half) == ["clip"]
    assert store.entry_meta(key)["complete"] is False

    arrays = _arrays(3, t=6)
    del arrays["tokens"]
    store.write_entry(key, arrays, {"label": "wave"})
    [entry] = [e for e in store.entries() if e.key == key]
    assert store.array_names(entry) == sorted(arrays)  # nothing left over from the interrupted write
    np.testing.assert_array_equal(store.read(entry, ("clip",))["clip"], arrays["clip"].astype(np.float32))
    assert len(store.entries(include_incomplete=True)) == 2


def test_rewrite_replaces_arrays(store):
    store.write_entry("k.mp4", _arrays(0), {"label": "a", "run_id": "r1"})
    store.write_entry("k.mp4", _arrays(1, t=3), {"label": "a", "run_id": "r2"})
    [entry] = store.entries()
    assert entry.meta["run_id"] == "r2" and store.read(entry, ("clip",))["clip"].shape == (3, D)


def test_missing_array_names_the_option(store):
    arrays = _arrays()
    del arrays["tokens"]
    store.write_entry("k.mp4", arrays, {})
    with pytest.raises(StoreError, match="--tokens"):
        store.read("k.mp4", ("clip", "tokens"))


def test_different_config_is_refused_naming_the_field(store):
    store.write_entry("k.mp4", _arrays(), {"label": "a"})
    other = dataclasses.replace(CFG, num_frames=8)
    with pytest.raises(StoreError) as e:
        FeatureStore.create_or_open(store.url, other, {})
    assert "num_frames" in str(e.value) and "store has 4" in str(e.value) and "asks for 8" in str(e.value)
    assert other.digest() in str(e.value)  # the suggested new --out
    again = FeatureStore.open(store.url)
    assert again.config == CFG and [x.key for x in again.entries()] == ["k.mp4"]
    assert FeatureStore.create_or_open(store.url, CFG, {}).config == CFG  # the same config reopens


def test_schema_version_mismatch_is_refused(store):
    store.root.attrs["schema_version"] = SCHEMA_VERSION + 1
    for opener in (lambda: FeatureStore.open(store.url), lambda: FeatureStore.create_or_open(store.url, CFG, {})):
        with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}"):
            opener()


@pytest.mark.parametrize("kind", ["missing", "plain folder", "other zarr group"])
def test_non_store_paths_tell_the_user_to_run_fgm_extract(tmp_path, kind):
    path = tmp_path / "somewhere"
    if kind == "plain folder":
        path.mkdir()
        (path / "video.mp4").write_bytes(b"x")
    elif kind == "other zarr group":
        zarr.open_group(str(path), mode="w").create_group("stuff")
    with pytest.raises(StoreError, match="fgm-extract"):
        FeatureStore.open(str(path))
    if kind == "other zarr group":
        with pytest.raises(StoreError, match="not an fgm store"):
            FeatureStore.create_or_open(str(path), CFG, {})


def test_text_round_trip_and_class_embedding_known_answer(store):
    sentence_emb = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0], [0.0, 5.0, 0.0]])
    scenes = ["a gym.", "a beach."]
    store.set_text(["wave", "jump"], ["s0", "s1", "s2"], [0, 0, 1], sentence_emb, scenes, np.eye(2, 3))
    text = FeatureStore.open(store.url).text()
    # class 0: mean of the unit vectors (0.6, 0.8, 0) and (0, 0, 1) is (0.3, 0.4, 0.5), then normalised
    expected = np.array([[0.3, 0.4, 0.5] / np.sqrt(0.5), [0.0, 1.0, 0.0]], np.float32)
    np.testing.assert_allclose(text["class_emb"], expected, atol=1e-6)
    assert text["class_emb"].dtype == np.float32
    np.testing.assert_array_equal(text["sentence_emb"], sentence_emb.astype(np.float32))
    np.testing.assert_array_equal(text["scene_emb"], np.eye(2, 3, dtype=np.float32))
    assert (text["sentences"], text["sentence_class"], text["scenes"]) == (["s0", "s1", "s2"], [0, 0, 1], scenes)
    assert store.classes == ["wave", "jump"]


def test_text_is_empty_before_written(store):
    assert store.text() == {}


def test_failures_runs_and_provenance_round_trip(store):
    store.record_failure("bad.mp4", {"reason": "empty-file", "size": 0})
    store.add_run({"run_id": "r2", "finished": "2026-01-02T00:00:00"})
    store.add_run({"run_id": "r1", "finished": "2026-01-01T00:00:00"})
    again = FeatureStore.open(store.url)
    assert again.failures() == {"bad.mp4": {"reason": "empty-file", "size": 0}}
    assert again.failure("bad.mp4") == {"reason": "empty-file", "size": 0} and again.failure("ok.mp4") is None
    assert [r["run_id"] for r in again.runs()] == ["r1", "r2"]  # in the order they finished
    assert again.provenance == {"packages": {"numpy": np.__version__}}
    store.clear_failure("bad.mp4")
    store.clear_failure("never-failed.mp4")
    assert FeatureStore.open(store.url).failures() == {}


def test_records_of_two_writers_never_clobber_each_other(store):
    """Two processes on one store: each writes its failures and run; the other's stay (version 1 lost them)."""
    first, second = store, FeatureStore.create_or_open(store.url, CFG, {})
    first.record_failure("a.mp4", {"reason": "unreadable", "run_id": "r1"})
    second.record_failure("b.mp4", {"reason": "empty-file", "run_id": "r2"})
    first.add_run({"run_id": "r1"})
    second.add_run({"run_id": "r2"})
    again = FeatureStore.open(store.url)
    assert sorted(again.failures()) == ["a.mp4", "b.mp4"]
    assert [r["run_id"] for r in again.runs()] == ["r1", "r2"]


def test_weights_identity_first_writer_wins_and_others_are_compared(store):
    mine = {"model": "fgm-tiny-vit", "weights_sha256": "a" * 64}
    other = {"model": "fgm-tiny-vit", "weights_sha256": "b" * 64}
    store.check_weights(other)  # nothing recorded yet: nothing to compare
    store.record_weights(mine)
    FeatureStore.create_or_open(store.url, CFG, {}).record_weights(dict(mine))  # the same weights: accepted
    with pytest.raises(StoreError, match="weights loaded now differ"):
        FeatureStore.create_or_open(store.url, CFG, {}).record_weights(other)
    assert FeatureStore.open(store.url).clip_identity == mine  # the refused writer changed nothing


def test_a_new_text_version_replaces_the_old_one_whole(store):
    store.set_text(["a"], ["sa"], [0], np.ones((1, D)), ["scene"], np.ones((1, D)))
    store.set_text(["a", "b"], ["sa", "sb"], [0, 1], np.eye(2, D), ["scene"], np.ones((1, D)))
    text = FeatureStore.open(store.url).text()
    assert store.classes == ["a", "b"] and text["sentences"] == ["sa", "sb"]
    assert text["sentence_emb"].shape == text["class_emb"].shape == (2, D)


def test_memory_url_in_process():
    url = f"memory://fgm-test-{uuid.uuid4().hex}"
    with pytest.raises(StoreError, match="fgm-extract"):
        FeatureStore.open(url)
    store = FeatureStore.create_or_open(url, CFG, {})
    store.write_entry("a/v.mp4", _arrays(5), {"label": "a"})
    store.set_text(["a"], ["s"], [0], np.ones((1, D)), ["scene"], np.ones((1, D)))
    again = FeatureStore.open(url)
    [entry] = again.entries()
    np.testing.assert_array_equal(again.read(entry, ("flow",))["flow"], _arrays(5)["flow"].astype(np.float16))
    assert again.config == CFG and again.text()["class_emb"].shape == (1, D)


def test_processes_making_one_new_store_at_once_all_open_it(tmp_path):
    """Started together on a new store: one makes it, the others wait and open it (none sees a half-made root)."""
    import threading

    url, opened, errors = str(tmp_path / "new.zarr"), [], []
    start = threading.Barrier(6)

    def run(i: int) -> None:
        start.wait()
        try:
            opened.append(FeatureStore.create_or_open(url, CFG, {"maker": i}).config)
        except Exception as e:  # any refusal here is the race this test is about
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and opened == [CFG] * 6
    assert FeatureStore.open(url).provenance["maker"] in range(6)


def test_processes_writing_the_same_text_at_once_all_succeed(store):
    """Runs finishing together each write the text for the classes they saw: no writer's group may be
    replaced under another (CI: two extractions started together, one failed in the text's overwrite)."""
    import threading

    start, errors = threading.Barrier(4), []

    def run() -> None:
        mine = FeatureStore.open(store.url, mode="a")
        start.wait()
        try:
            for _ in range(10):
                mine.set_text(["a", "b"], ["sa", "sb"], [0, 1], np.eye(2, D), ["scene"], np.ones((1, D)))
        except Exception as e:  # any error here is the race this test is about
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    text = FeatureStore.open(store.url).text()
    assert errors == [] and text["sentences"] == ["sa", "sb"]
    np.testing.assert_array_equal(text["class_emb"], np.eye(2, D))


def test_a_root_left_half_made_is_made_again(tmp_path):
    url = str(tmp_path / "half.zarr")
    zarr.open_group(url, mode="w").create_group("videos")  # a maker killed before the root's attrs
    with pytest.raises(StoreError, match="still being made by an fgm-extract"):  # a reader meanwhile
        FeatureStore.open(url)
    assert FeatureStore.create_or_open(url, CFG, {}).config == CFG
