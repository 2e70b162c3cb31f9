"""Class sentences, description files and the scene bank."""

from __future__ import annotations

import json

import pytest

from fgm_common.texts import SCENE_BANK, class_sentences, load_descriptions, readable


def test_readable_labels():
    assert readable("arms_forward_overhead") == "arms forward overhead"
    assert readable("clean-and-jerk") == "clean and jerk"
    assert readable("_wave_") == "wave"


def test_class_sentences_known_answer():
    sentences, owner = class_sentences(
        ["wave_hand", "jump"], ("a video of {label}.", "{label}!"), {"jump": ["someone leaves the ground."]}
    )
    assert sentences == ["a video of wave hand.", "wave hand!", "a video of jump.", "jump!", "someone leaves the ground."]
    assert owner == [0, 0, 1, 1, 1]


def test_descriptions_from_json(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"wave": ["a hand moves.", "waving."], "jump": []}))
    assert load_descriptions(path) == {"wave": ["a hand moves.", "waving."], "jump": []}


def test_descriptions_from_lines_skip_comments_and_blanks(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("# comment\n\nwave: a hand moves: fast.\n wave :waving.\njump: up.\n")
    assert load_descriptions(path) == {"wave": ["a hand moves: fast.", "waving."], "jump": ["up."]}


def test_no_descriptions_file_is_empty():
    assert load_descriptions(None) == {}


def test_bad_description_files_name_the_problem(tmp_path):
    lines = tmp_path / "d.txt"
    lines.write_text("wave: ok\nthis line has no colon\n")
    with pytest.raises(ValueError, match=r"d.txt:2: expected 'class: sentence'"):
        load_descriptions(lines)
    bad_json = tmp_path / "d.json"
    bad_json.write_text(json.dumps({"wave": "not a list"}))
    with pytest.raises(ValueError, match="expected a JSON object"):
        load_descriptions(bad_json)


def test_scene_bank_is_distinct_sentences():
    assert len(SCENE_BANK) >= 8 and len(set(SCENE_BANK)) == len(SCENE_BANK)
    assert all(s.strip() and "{label}" not in s for s in SCENE_BANK)
