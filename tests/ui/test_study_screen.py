"""The study screen: a live table of trials from the journal, opened with y; rows open monitors and comparisons."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from vaetui.ui.app import make_app
from vaetui.ui.screens.explore import CompareScreen
from vaetui.ui.screens.monitor import MonitorScreen
from vaetui.ui.screens.study import StudyScreen, study_of

TOML = ('preset = "tiny"\ndataset_size = 64\nbatch_size = 16\nvalid_size = 16\nlog_every = 1\nimage_every = 1000\n'
        'epochs = 2\n[sweep]\nbeta = [0.5, 1.0, 2.0]\n')


@pytest.fixture(scope="module")
def study_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    (tmp / "s.toml").write_text(TOML)
    out = subprocess.run([sys.executable, "-m", "vaetui", "sweep", str(tmp / "s.toml"), "--study", "bs",
                          "--pruner", "none", "--runs-dir", str(tmp / "runs")], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    return tmp / "runs"


def test_the_study_screen_shows_every_trial_and_opens_them(study_runs):
    assert study_of("bs-t002", study_runs) == "bs" and study_of("bs", study_runs) is None

    async def scenario():
        app = make_app(runs_dir=study_runs, include_demo=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("y")
            screen = app.screen
            assert isinstance(screen, StudyScreen) and screen.study == "bs"
            deadline = time.monotonic() + 30
            while screen.table is None and time.monotonic() < deadline:
                await pilot.pause(0.05)
            grid = screen.query_one("#trials")
            assert grid.row_count == 3
            states = {r["state"] for r in screen.table["rows"]}
            best = screen.query_one("#study-best").render()
            await pilot.press("space", "down", "space")
            assert screen.marked == {"bs-t000", "bs-t001"}
            await pilot.press("v")
            await pilot.pause(0.1)
            compare = app.screen
            await pilot.press("escape")
            await pilot.pause(0.1)
            await pilot.press("enter")
            await pilot.pause(0.2)
            return states, str(best), compare, app.screen

    states, best, compare, monitor = asyncio.run(scenario())
    assert states == {"complete"}
    assert "best: trial" in best
    assert isinstance(compare, CompareScreen) and compare.run_names == ["bs-t000", "bs-t001"]
    assert isinstance(monitor, MonitorScreen) and monitor.view.run == "bs-t001"


def test_y_without_a_study_says_how_to_make_one(tmp_path):
    async def scenario():
        app = make_app(runs_dir=tmp_path, include_demo=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("y")
            await pilot.pause(0.1)
            return app.screen, [n.message for n in app._notifications]

    screen, notes = asyncio.run(scenario())
    assert not isinstance(screen, StudyScreen)
    assert any("vaetui sweep" in n for n in notes)


def test_a_scatter_draws_points_not_lines():
    from vaetui.ui.widgets.chart import render_chart

    def dots(text) -> int:
        return sum(bin(ord(ch) - 0x2800).count("1") for ch in text.plain if 0x2800 < ord(ch) <= 0x28FF)

    series = [("trials", [0.0, 10.0], [0.0, 10.0], "red")]
    assert dots(render_chart(series, 40, 12, lines=False)) == 8  # two points of 2x2 dots, nothing between
    assert dots(render_chart(series, 40, 12, lines=True)) > 20  # the line between them


def test_s_on_the_study_screen_stops_a_study_run_elsewhere_with_checkpoints(tmp_path):
    import optuna

    from vaetui.studies.spec import read_spec, storage

    runs = tmp_path / "runs"
    (tmp_path / "s.toml").write_text(TOML.replace("epochs = 2", "epochs = 50\ncheckpoint_every = 2"))
    proc = subprocess.Popen([sys.executable, "-m", "vaetui", "sweep", str(tmp_path / "s.toml"), "--study", "long",
                             "--workers", "2", "--runs-dir", str(runs)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not all((runs / f"long-t00{k}" / "ckpt-latest.pt").exists() for k in (0, 1)):
        assert time.monotonic() < deadline and proc.poll() is None, "the study never got going"
        time.sleep(0.1)

    async def scenario():
        app = make_app(runs_dir=runs, include_demo=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("y")
            await pilot.pause(0.2)
            await pilot.press("s")
            await pilot.pause(0.1)
            await pilot.press("y")
            await pilot.pause(0.2)
            return [n.message for n in app._notifications]

    notes = asyncio.run(scenario())
    assert any("asked 2 worker(s) to stop" in n for n in notes), notes
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "--resume" in err
    study = optuna.load_study(study_name="long", storage=storage(runs, read_spec(runs, "long")))
    running = [t for t in study.get_trials() if t.state.name == "RUNNING"]
    assert len(running) == 2  # left to --resume, each with a checkpoint from its stop
    for t in running:
        lines = (runs / t.user_attrs["run"] / "metrics.jsonl").read_text().splitlines()
        assert '"reason": "stopped"' in lines[-1] or '"reason":"stopped"' in lines[-1]
