"""The store's rules on S3 (a moto server on loopback): whole-or-absent entries, exclusive create, shared records.

Every "other machine" here is another process or another s3fs client, so nothing is seen through a
cache the writer filled.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import numpy as np
import pytest

from fgm_common.config import ExtractConfig
from fgm_common.store import CLIP, FLOW, FLOW_HIST, TIMESTAMPS, FeatureStore, StoreError
from fgm_common.store.objects import JsonObjects
from tests.conftest import REPO_ROOT
from tests.s3_helpers import moto_endpoint, s3_bucket, s3_env  # noqa: F401 (fixtures)

CONFIG = ExtractConfig(clip_model="fgm-tiny-vit", pretrained="none", num_frames=4)


def _arrays(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {CLIP: rng.normal(size=(4, 8)).astype(np.float32), TIMESTAMPS: np.arange(4) * 40.0,
            FLOW: rng.normal(size=(3, 2, 5, 5)).astype(np.float16), FLOW_HIST: rng.random((3, 6), dtype=np.float32)}


class Killed(BaseException):
    """The process dying at this point (not an error the store could handle)."""


def test_an_entry_cut_before_its_last_write_is_not_listed_and_a_rewrite_makes_it_whole(s3_bucket, monkeypatch):
    url = f"{s3_bucket}/store.zarr"
    store = FeatureStore.create_or_open(url, CONFIG, {})
    store.write_entry("a.mp4", _arrays(0), {"label": "x"})
    fs, real, metadata_writes = store._remote[0], store._remote[0].pipe_file, []

    def dies_at_the_second_metadata_write(path, data, **kwargs):
        metadata_writes.append(path)
        if len(metadata_writes) == 2:
            raise Killed
        return real(path, data, **kwargs)

    monkeypatch.setattr(fs, "pipe_file", dies_at_the_second_metadata_write)
    with pytest.raises(Killed):
        store.write_entry("b.mp4", _arrays(1), {"label": "y"})
    monkeypatch.undo()
    reader = FeatureStore.open(url)
    assert [e.key for e in reader.entries()] == ["a.mp4"]  # every array of b is there, its `complete` is not
    assert reader.entry_meta("b.mp4")["complete"] is False and reader.missing_arrays("b.mp4", tuple(_arrays(1))) == []
    store.write_entry("b.mp4", _arrays(1), {"label": "y"})  # the rerun replaces it
    reader = FeatureStore.open(url)
    assert [e.key for e in reader.entries()] == ["a.mp4", "b.mp4"]
    for key, seed in (("a.mp4", 0), ("b.mp4", 1)):
        got = reader.read(key)
        assert sorted(got) == sorted(_arrays(seed)) and all(np.array_equal(got[k], v) for k, v in _arrays(seed).items())
        assert reader.entry_meta(key)["label"] == ("x" if key == "a.mp4" else "y")


def test_racing_creators_on_s3_have_one_winner(s3_bucket):
    objects = JsonObjects(f"{s3_bucket}/store.zarr", "claims")
    barrier = Barrier(6)

    def create(i: int) -> bool:
        barrier.wait()
        return objects.create("v/00000001.json", {"owner": i})

    with ThreadPoolExecutor(6) as pool:
        wins = list(pool.map(create, range(6)))
    assert wins.count(True) == 1
    assert objects.get("v/00000001.json") == {"owner": wins.index(True)}  # the winner's body, never overwritten
    assert objects.names("v/") == ["00000001.json"]


def test_the_first_weights_identity_wins_on_s3(s3_bucket):
    url = f"{s3_bucket}/store.zarr"
    store = FeatureStore.create_or_open(url, CONFIG, {})
    store.record_weights({"model": "fgm-tiny-vit", "weights_sha256": "aaa"})
    with pytest.raises(StoreError, match="weights loaded now differ"):
        FeatureStore.open(url, mode="a").record_weights({"model": "fgm-tiny-vit", "weights_sha256": "bbb"})
    assert FeatureStore.open(url).clip_identity["weights_sha256"] == "aaa"


WRITER = """
import sys
import numpy as np
from fgm_common.store import FeatureStore
url, name = sys.argv[1], sys.argv[2]
store = FeatureStore.open(url, mode="a")
store.write_entry(f"{name}.mp4", {"clip": np.full((2, 3), len(name), np.float32)}, {"label": name})
store.record_failure(f"{name}-broken.mp4", {"reason": "decode", "message": name, "run_id": name})
store.add_run({"run_id": name, "finished": name, "extracted": 1})
"""


def test_two_writers_records_are_all_kept_and_seen_by_an_open_store(s3_bucket):
    url = f"{s3_bucket}/store.zarr"
    FeatureStore.create_or_open(url, CONFIG, {})
    reader = FeatureStore.open(url)
    assert (reader.entries(), reader.failures(), reader.runs()) == ([], {}, [])  # listed before the writers
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, url, name], cwd=REPO_ROOT) for name in ("m1", "m2")]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    assert [e.key for e in reader.entries()] == ["m1.mp4", "m2.mp4"]
    assert sorted(reader.failures()) == ["m1-broken.mp4", "m2-broken.mp4"]
    assert [r["run_id"] for r in reader.runs()] == ["m1", "m2"]


def test_s3_without_s3fs_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "s3fs", None)  # import s3fs now fails as if it were not installed
    for open_store in (lambda: FeatureStore.open("s3://bucket/store.zarr"),
                       lambda: FeatureStore.create_or_open("s3://bucket/store.zarr", CONFIG, {})):
        with pytest.raises(StoreError) as err:
            open_store()
        assert str(err.value) == "s3://bucket/store.zarr is on object storage, which needs s3fs: pip install 'fgm[s3]'"


def test_a_local_copy_mirrors_the_bucket_and_fetches_only_what_changed(s3_bucket, tmp_path):
    """fgm-train reads a bucket store through a local copy: the same entries; a second copy fetches only the new entry."""
    from pathlib import Path

    from fgm_common.store.mirror import local_copy

    url = f"{s3_bucket}/store.zarr"
    store = FeatureStore.create_or_open(url, CONFIG, {})
    rng = np.random.default_rng(0)
    arrays = {"clip": rng.normal(size=(4, 8)), "flow": rng.normal(size=(3, 2, 6, 6))}
    store.write_entry("a/one.mp4", arrays, {"label": "a"})
    store.record_weights({"model": "m", "weights_sha256": "e" * 64})
    from extract.claims import Leases  # a lease in the bucket is not copied: it says who works now
    Leases(url, "someone").take("a/two.mp4")

    path = local_copy(url, str(tmp_path / "cache"))
    copy = FeatureStore.open(path)
    assert [e.key for e in copy.entries()] == ["a/one.mp4"] and copy.clip_identity["weights_sha256"] == "e" * 64
    np.testing.assert_array_equal(copy.read("a/one.mp4", ("clip",))["clip"], arrays["clip"].astype(np.float32))
    assert not (Path(path) / "claims").exists() or not any((Path(path) / "claims").rglob("*.json"))

    before = {p: p.stat().st_mtime_ns for p in Path(path).rglob("*") if p.is_file() and p.name != ".fgm-copy.json"}
    store.write_entry("b/two.mp4", arrays, {"label": "b"})
    assert local_copy(url, str(tmp_path / "cache")) == path
    assert [e.key for e in FeatureStore.open(path).entries()] == ["a/one.mp4", "b/two.mp4"]
    unchanged = {p: p.stat().st_mtime_ns for p in before}
    assert unchanged == before  # what was already copied was not fetched again
    assert local_copy(str(tmp_path / "plain.zarr")) == str(tmp_path / "plain.zarr")  # a local store is read in place
