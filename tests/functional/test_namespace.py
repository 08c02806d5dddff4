"""Runs and studies share one namespace of folders, and deleting a run deletes only what is a run's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vaetui.errors import RunError
from vaetui.runs.store import RunStore

from helpers import tiny_config, train

TINY = 'preset = "tiny"\ndataset_size = 64\nbatch_size = 16\nvalid_size = 16\nepochs = 1\nimage_every = 1000\n'


def vaetui(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vaetui", *map(str, args)], capture_output=True, text=True,
                          timeout=600, **kw)


def one_line(out: subprocess.CompletedProcess, says: str) -> None:
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and says in lines[0], out.stderr


def a_study_folder(runs: Path, name: str = "s") -> Path:
    folder = runs / name
    folder.mkdir(parents=True)
    (folder / "study.json").write_text("{}")
    (folder / "journal.log").write_text("a study's journal\n")
    return folder


def test_a_run_is_never_made_in_a_study_s_folder(tmp_path):
    runs = tmp_path / "runs"
    folder = a_study_folder(runs)
    with pytest.raises(RunError, match="'s' is a study"):
        RunStore(runs, include_demo=False).create(tiny_config(), "s")
    out = vaetui("train", "--preset", "tiny", "--name", "s", "--max-steps", "1", "--runs-dir", runs)
    one_line(out, "'s' is a study")
    assert sorted(p.name for p in folder.iterdir()) == ["journal.log", "study.json"]
    (runs / "notes").mkdir()
    (runs / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(RunError, match="is not a vaetui run"):
        RunStore(runs, include_demo=False).create(tiny_config(), "notes")


def test_a_study_is_never_made_in_a_run_s_folder_and_a_bad_one_leaves_nothing(tmp_path):
    runs = tmp_path / "runs"
    train(RunStore(runs, include_demo=False), "r", tiny_config(max_steps=1))
    space = tmp_path / "space.toml"
    space.write_text(TINY + "[sweep]\nbeta = [0.5]\n")
    one_line(vaetui("sweep", space, "--study", "r", "--runs-dir", runs), "'r' is a run")
    assert not (runs / "r" / "study.json").exists() and not (runs / "r" / "journal.log").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY + "colour = 3\n[sweep]\nbeta = [0.5]\n")
    assert vaetui("sweep", bad, "--study", "b", "--runs-dir", runs).returncode == 2
    assert not (runs / "b").exists()  # not even its claim lock


def test_deleting_a_run_keeps_what_is_not_a_run_s(tmp_path):
    """A run trained into a study's folder by an older vaetui: deleting the run kept nothing of the study."""
    runs = tmp_path / "runs"
    store = RunStore(runs, include_demo=False)
    run, _ = train(store, "r", tiny_config(max_steps=9, checkpoint_every=3, image_every=2))
    (run.path / "study.json").write_text("{}")
    (run.path / "journal.log").write_text("a study's journal\n")
    (run.path / "snapshots" / "notes.txt").write_text("mine")
    left = store.delete("r")
    assert sorted(left) == ["journal.log", "snapshots/notes.txt", "study.json"]
    assert sorted(p.name for p in run.path.iterdir()) == ["journal.log", "snapshots", "study.json"]
    assert [p.name for p in (run.path / "snapshots").iterdir()] == ["notes.txt"]
    clean, _ = train(store, "c", tiny_config(max_steps=2))
    assert store.delete("c") == [] and not clean.path.exists()


def test_deleting_a_symlinked_run_is_a_one_line_refusal(tmp_path):
    runs = tmp_path / "runs"
    store = RunStore(tmp_path / "elsewhere", include_demo=False)
    run, _ = train(store, "real", tiny_config(max_steps=1))
    runs.mkdir()
    (runs / "linked").symlink_to(run.path)
    with pytest.raises(RunError, match="is a link to"):
        RunStore(runs, include_demo=False).delete("linked")
    assert (run.path / "config.json").exists() and (runs / "linked").is_symlink()
