"""JsonObjects: create-if-absent has exactly one winner, also between racing threads; put replaces; reads tolerate absence."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from fgm_common.store.objects import JsonObjects


@pytest.fixture(params=["local", "memory"])
def objects(request, tmp_path) -> JsonObjects:
    url = str(tmp_path / "s.zarr") if request.param == "local" else f"memory://objects-{uuid.uuid4().hex}"
    return JsonObjects(url, "claims")


def test_create_put_get_names_delete(objects):
    assert objects.get("a/1.json") is None and objects.names("a/") == []
    assert objects.create("a/1.json", {"owner": "me"}) is True
    assert objects.create("a/1.json", {"owner": "you"}) is False
    assert objects.get("a/1.json") == {"owner": "me"}
    objects.put("a/1.json", {"owner": "me", "n": 2})
    objects.create("a/2.json", {})
    assert objects.get("a/1.json") == {"owner": "me", "n": 2} and objects.names("a/") == ["1.json", "2.json"]
    objects.delete("a/1.json")
    objects.delete("a/1.json")  # already gone: nothing
    assert objects.names("a/") == ["2.json"]


def test_racing_creators_have_exactly_one_winner(objects):
    wins: list[bool] = []
    start = threading.Barrier(8)

    def race(i: int) -> None:
        start.wait()
        wins.append(objects.create("v/00000001.json", {"owner": i}))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]
    assert objects.names("v/") == ["00000001.json"]
    if objects._local:  # no temporary file left behind (names() would hide one)
        assert os.listdir(objects.path("v")) == ["00000001.json"]


def test_a_write_in_flight_is_not_listed(tmp_path):
    """Another process's temporary file (between its write and its link) is not an object: a lease reader parsed
    its name as a generation and failed (CI, two extractions started together)."""
    objects = JsonObjects(str(tmp_path / "s.zarr"), "claims")
    objects.create("v/00000001.json", {"owner": "me"})
    in_flight = objects._local_tmp(objects.path("v/00000002.json"), b"{}")
    assert os.path.exists(in_flight) and objects.names("v/") == ["00000001.json"]


def test_a_folder_pruned_between_making_it_and_writing_is_made_again(tmp_path, monkeypatch):
    """Another process releasing its lease prunes the empty folder just after this one made it: the write still lands."""
    import fgm_common.store.objects as module

    objects = JsonObjects(str(tmp_path / "s.zarr"), "claims")
    real_makedirs, pruned = os.makedirs, []

    def makedirs_then_pruned(folder, exist_ok=False):
        real_makedirs(folder, exist_ok=exist_ok)
        if not pruned and folder.endswith("/v"):  # (os.makedirs calls itself for the parents)
            pruned.append(folder)
            os.rmdir(folder)

    monkeypatch.setattr(module.os, "makedirs", makedirs_then_pruned)
    assert objects.create("v/00000001.json", {"owner": "me"}) is True
    assert pruned and objects.get("v/00000001.json") == {"owner": "me"}
