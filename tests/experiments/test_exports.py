"""Exports: a plain Hugging Face directory written whole, its files checked on every load, its target checked
before anything loads."""

import json

import pytest
from helpers import flip, lftf, truncate


def test_export_refuses_a_file_and_a_folder_with_files_before_loading(tmp_path, no_model):
    target = tmp_path / "file"
    target.write_text("mine")
    res = lftf("export", "--model", "smollm2-135m", "--out", target)
    assert res.exit_code == 2 and "is a file" in res.output and target.read_text() == "mine"
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    res = lftf("export", "--model", "smollm2-135m", "--out", folder)
    assert res.exit_code == 2 and "--force" in res.output and (folder / "notes.txt").read_text() == "mine"


def test_export_force_replaces_the_folder_whole(tiny3_dir, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "config.json").write_text("{}")
    res = lftf("export", "--model", tiny3_dir, "--out", folder, "--force")
    assert res.exit_code == 0, res.output
    assert (
        not (folder / "notes.txt").exists()
        and json.loads((folder / "config.json").read_text())["num_hidden_layers"] == 3
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind


@pytest.mark.parametrize("damage", [flip, truncate], ids=["flipped-byte", "truncated"])
def test_a_damaged_exported_model_is_refused(tiny3_dir, tmp_path, damage):
    res = lftf("export", "--model", tiny3_dir, "--out", tmp_path / "hf")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "hf" / "lftf_manifest.json").is_file()
    damage(tmp_path / "hf" / "model.safetensors")
    res = lftf("evaluate", "--model", tmp_path / "hf", "--out", tmp_path / "ev")
    assert res.exit_code == 2 and "model.safetensors" in res.output and "Export it again" in res.output, (
        res.output
    )
    assert not (tmp_path / "ev").exists()


def test_export_never_replaces_the_working_directory_or_above(tmp_path, no_model, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    for out in (".", tmp_path, tmp_path.parent):
        res = lftf("export", "--model", "smollm2-135m", "--out", out, "--force")
        assert res.exit_code == 2 and "current directory" in res.output, res.output
    assert (tmp_path / "notes.txt").read_text() == "mine"
