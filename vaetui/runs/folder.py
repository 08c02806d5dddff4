"""What a run's folder holds, and what marks a folder as a study's: runs and studies share one namespace of
folders under the runs root, and deleting a run removes only what is a run's (vaetui.runs.store.RunStore.delete)."""

from __future__ import annotations

import re
from pathlib import Path

# What a run's folder holds (everything else in it is somebody else's and is never deleted with the run).
RUN_FILE_RE = re.compile(r"^(config\.json|metrics\.jsonl|lock|control\.jsonl|train\.log|ckpt-[A-Za-z0-9-]+\.pt"
                         r"|\..+\.tmp)$")
RUN_FOLDERS = {"snapshots": (".png", ".tmp"), "eval": (".json", ".tmp"), "samplers": (".json", ".tmp")}
# What marks a folder as a study's (vaetui.studies.spec): never a run's too.
STUDY_FILES = ("study.json", "journal.log")


def is_run_file(name: str) -> bool:
    return bool(RUN_FILE_RE.match(name))


def is_study_folder(path: Path) -> bool:
    return any((Path(path) / f).exists() for f in STUDY_FILES)


def remove_run_files(folder: Path) -> list[str]:
    """Remove a run's own files from its folder, and the folder when nothing else is left; returns the names of
    what was kept because it is not a run's (a study's journal, a user's notes). Raises OSError."""
    left = []
    for entry in sorted(Path(folder).iterdir()):
        if entry.name in RUN_FOLDERS and entry.is_dir() and not entry.is_symlink():
            for inner in entry.iterdir():
                if inner.is_file() and not inner.is_symlink() and inner.suffix in RUN_FOLDERS[entry.name]:
                    inner.unlink()
                else:
                    left.append(f"{entry.name}/{inner.name}")
            if not any(entry.iterdir()):
                entry.rmdir()
        elif is_run_file(entry.name) and (entry.is_file() or entry.is_symlink()):
            entry.unlink()
        else:
            left.append(entry.name)
    if not left:
        Path(folder).rmdir()
    return left
