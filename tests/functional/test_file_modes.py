"""Every file vaetui writes (through temp files too) follows the user's umask."""

from __future__ import annotations

import os
import subprocess
import sys


VAETUI = [sys.executable, "-m", "vaetui"]


def test_every_file_follows_the_umask(tmp_path):
    """Files written through temp files follow the user's umask like the others (were -rw-------)."""
    from fakes import make_messy_folder

    folder = make_messy_folder(tmp_path / "faces", n=24)
    env = {**os.environ, "VAETUI_CACHE_DIR": str(tmp_path / "cache")}
    runs = tmp_path / "runs"

    def sh(*args):
        out = subprocess.run([*VAETUI, *args], capture_output=True, text=True, env=env,
                             preexec_fn=lambda: os.umask(0o027))
        assert out.returncode == 0, out.stderr

    sh("train", "--preset", "tiny", "--max-steps", "4", "--runs-dir", str(runs), "--name", "u", "--threads", "1",
       "--log-format", "json")
    sh("eval", "u", "--runs-dir", str(runs), "--n", "8", "--k", "2")
    sh("data", "preview", "--data", "folder", "--data-root", str(folder), "--size", "32", "--n", "4",
       "--out", str(tmp_path / "out" / "grid.png"))
    written = [p for p in [*runs.rglob("*"), *(tmp_path / "cache").rglob("*"), tmp_path / "out" / "grid.png"]
               if p.is_file()]
    assert len(written) > 8
    modes = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in written}
    assert {k: v for k, v in modes.items() if v != oct(0o640)} == {}
