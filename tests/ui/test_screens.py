"""The TUI: form validation, training from the keyboard, the monitor, small terminals, snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
from pathlib import Path

import pytest

from vaetui.config.presets import preset
from vaetui.runs.store import RunStore
from vaetui.ui.app import make_app
from vaetui.ui.screens.dialogs import Choose, Confirm, TooSmall, help_shown
from vaetui.ui.screens.form import NewRunScreen, parse_form, field_values
from vaetui.sysstats import ProcessStats, Stats
from vaetui.ui.screens.monitor import MonitorScreen
from vaetui.ui.screens.runs import RunsScreen

from fake_runs import make_finished_run


@pytest.fixture(autouse=True)
def fixed_stats(monkeypatch):
    monkeypatch.setattr(ProcessStats, "sample", lambda self: Stats(42.0, 512.0))


def form_values(**changes):
    values = {"preset": "tiny", **field_values(preset("tiny"))}
    values.update(changes)
    return values


def test_form_accepts_a_preset_and_names_each_bad_field(tmp_path):
    cfg, name, errors = parse_form(form_values())
    assert errors == {} and cfg.preset == "tiny" and name is None
    cfg, _, errors = parse_form(form_values(latent="abc", beta="-1", lr="0", size="8x8", name="../x"))
    assert cfg is None
    assert errors["latent"] == "must be an integer, got 'abc'"
    assert "must be in [0, 10000]" in errors["beta"]
    assert "must be in (1e-08, 1]" in errors["lr"]
    assert "must be in [16, 1024]" in errors["size"]
    assert "name" in errors
    cfg, _, errors = parse_form(form_values(data="celeba"))
    assert cfg is None and "data_root" in errors
    cfg, _, errors = parse_form(form_values(data="folder", data_root=str(tmp_path / "missing")))
    assert "does not exist" in errors["data_root"]


def test_the_form_reads_only_the_chosen_familys_own_settings():
    cfg, _, errors = parse_form(form_values(model="iwae", iw_samples="7", free_bits="2", gamma="oops"))
    assert errors == {} and cfg.model.family == "iwae" and cfg.train.iw_samples == 7
    assert cfg.train.free_bits == 0.0  # the β-VAE's free bits are not read for iwae (nor another family's γ)
    cfg, _, errors = parse_form(form_values(model="vamp", pseudo_inputs="0"))
    assert cfg is None and "pseudo_inputs" in errors
    cfg, _, errors = parse_form(form_values(model="factorvae", gamma="12"))
    assert errors == {} and cfg.model.family == "factorvae" and cfg.train.gamma == 12.0


def test_the_forms_first_field_is_the_model_and_it_shows_its_own_fields(tmp_path):
    async def scenario():
        app = make_app(runs_dir=tmp_path, threads=1, include_demo=False, start="new")
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen))
            form = app.screen
            assert app.focused is form.query_one("#f-model")
            shown = lambda key: form.query_one(f"#row-{key}").display  # noqa: E731
            assert shown("free_bits") and not shown("iw_samples") and not shown("pseudo_inputs")
            form.query_one("#f-model").value = "iwae"
            await wait_for(pilot, lambda: shown("iw_samples"))
            assert not shown("free_bits") and not shown("gamma")
            form.query_one("#f-model").value = "beta-tcvae"
            await wait_for(pilot, lambda: shown("alpha") and shown("gamma") and not shown("iw_samples"))
            form.query_one("#f-preset").value = "tiny"  # another preset keeps the family chosen
            await wait_for(pilot, lambda: form._preset == "tiny")
            assert form.values()["model"] == "beta-tcvae" and shown("alpha")

    asyncio.run(scenario())


async def wait_for(pilot, predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)


def test_train_pause_resume_stop_from_the_keyboard(tmp_path):
    async def scenario():
        app = make_app(runs_dir=tmp_path, threads=1, include_demo=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("n")
            await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen))
            form = app.screen
            form.fill(preset("tiny"))
            form.query_one("#f-epochs").value = "300"
            form.query_one("#f-latent").value = "zero"
            await pilot.pause()
            assert form.query_one("#start").disabled
            assert "must be an integer" in str(form.query_one("#e-latent").render())
            form.query_one("#f-latent").value = "4"
            form.query_one("#f-name").value = "kb"
            await pilot.pause()
            assert not form.query_one("#start").disabled
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
            view = app.training_view
            state = lambda: view.history  # noqa: E731 - the feed hands over a new history first
            await wait_for(pilot, lambda: state().step >= 3)
            await pilot.press("p")
            await wait_for(pilot, lambda: state().status == "paused" and any("paused" in l for l in state().log))
            paused_at = state().step
            await pilot.pause(0.3)
            assert state().step == paused_at  # really paused
            await pilot.press("p")
            await wait_for(pilot, lambda: state().step > paused_at)
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
            await pilot.press("y")
            await wait_for(pilot, lambda: not app.training_here() and state().status == "stopped")
            assert app.screen.query_one("#picture").image is not None
        return state()

    state = asyncio.run(scenario())
    run = RunStore(tmp_path, include_demo=False).open("kb")
    info = run.info()
    assert info.status == "stopped" and info.step == state.step
    ckpt, _, _ = run.load_checkpoint("latest", fallback=False)
    assert ckpt["step"] == state.step


@contextlib.asynccontextmanager
async def monitor_of_a_finished_run(tmp_path):
    """The app opened on the monitor of a finished 60-step run on disk, once its history is read."""
    make_finished_run(tmp_path)
    app = make_app(runs_dir=tmp_path, include_demo=False, monitor="faces-demo")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await wait_for(pilot, lambda: app.screen.view.history.step == 60)
        yield app, pilot


def test_monitor_of_a_run_on_disk(tmp_path):
    async def scenario():
        async with monitor_of_a_finished_run(tmp_path) as (app, pilot):
            screen = app.screen
            s = screen.view.history
            assert s.status == "finished" and s.step == 60 and len(s.series["valid"]) == 3
            assert len(s.snapshots) == 3
            first = screen._shown_picture
            await pilot.press("home")
            assert screen.snapshot_index == 0 and screen._shown_picture is not first
            await pilot.press("right")
            assert screen.snapshot_index == 1
            await pilot.press("end")
            assert screen.snapshot_index is None
            await pilot.press("f")
            await pilot.pause()
            assert type(app.screen).__name__ == "ChartScreen"
            chart = str(app.screen.query_one("#chart").render())
            assert "⣀" in chart or any(0x2800 < ord(c) <= 0x28FF for c in chart)
            await pilot.press("escape")
            await pilot.press("p")  # not trained here: a warning, no crash
            await pilot.pause()
            assert isinstance(app.screen, MonitorScreen)

    asyncio.run(scenario())


def test_the_monitor_draws_a_familys_own_terms(tmp_path):
    make_finished_run(tmp_path, "tc", model="beta-tcvae", terms=("mi", "tc", "dwkl"))
    make_finished_run(tmp_path, "plain")

    async def scenario(run):
        app = make_app(runs_dir=tmp_path, include_demo=False, monitor=run)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
            await wait_for(pilot, lambda: app.screen.view.history.step == 60)
            await pilot.pause()
            screen = app.screen
            rows = [screen.query_one(f"#termrow-{i}") for i in range(3)]
            labels = [str(screen.query_one(f"#label-term-{i}").render()) for i in range(3)]
            return [r.display for r in rows], labels, {k: len(s) for k, s in screen.view.history.terms.items()}

    shown, labels, lengths = asyncio.run(scenario("tc"))
    assert shown == [True, True, True] and lengths == {"mi": 60, "tc": 60, "dwkl": 60}
    assert [l.split()[0] for l in labels] == ["MI", "TC", "dim-KL"]
    assert float(labels[2].split()[1]) == pytest.approx(30 * (1 + math.exp(-5)), abs=0.06)  # the newest dwkl
    shown, _, lengths = asyncio.run(scenario("plain"))
    assert shown == [False, False, False] and lengths == {}


def test_news_that_arrive_while_the_app_closes_are_not_drawn(tmp_path):
    """A trainer that ends as the window closes (CI saw it): the monitor has lost its widgets, the app still reads its queue."""
    from vaetui.ui.messages import TrainerExited

    async def scenario():
        async with monitor_of_a_finished_run(tmp_path) as (app, pilot):
            close_all = app._close_all

            async def close_all_with_news():  # as Textual closes a screen: its widgets go first
                await app.screen.query_children().remove()
                app.post_message(TrainerExited("faces-demo", 0))
                for _ in range(20):
                    await asyncio.sleep(0)
                await close_all()

            app._close_all = close_all_with_news
        return app

    app = asyncio.run(scenario())
    assert app.return_code in (None, 0)


def test_a_waiting_trainers_cpu_reads_the_same_at_every_sample():
    """A paused trainer reads 0, 1 or 2% by chance; each flip was a repaint (51 bytes) of a paused run's screen."""
    assert Stats(0.0, 512.0).line() == Stats(1.4, 512.0).line() == Stats(2.6, 512.0).line() == "cpu <5%  mem 512 MB"
    assert Stats(181.2, 512.0).line() == "cpu 181%  mem 512 MB"


def test_small_terminal_shows_a_message_and_recovers(tmp_path):
    async def scenario():
        app = make_app(runs_dir=tmp_path, include_demo=False)
        async with app.run_test(size=(60, 20)) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, TooSmall)
            assert "needs 80x24" in str(app.screen.query_one("#toosmall").render())
            await pilot.resize_terminal(80, 24)
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: help_shown(app.screen) is not None)
            assert isinstance(app.screen, RunsScreen)  # drawn over the screen, not a screen of its own

    asyncio.run(scenario())


def test_the_app_collects_garbage_again_once_its_first_frame_is_drawn(tmp_path):
    """run_tui turns the collector off while Textual is imported and the first frame drawn; the app must turn
    it back on (else a long session's cycles are never collected)."""
    import gc

    async def scenario():
        app = make_app(runs_dir=tmp_path, include_demo=False)
        async with app.run_test(size=(100, 30)) as pilot:
            deadline = time.monotonic() + 10
            while not gc.isenabled() and time.monotonic() < deadline:
                await pilot.pause(0.05)
            return gc.isenabled()

    gc.disable()
    try:
        assert asyncio.run(scenario()) is True
    finally:
        gc.enable()


def test_a_warm_start_lists_the_runs_in_its_first_frame_and_a_changed_run_leaves_it_to_the_worker(tmp_path,
                                                                                                   monkeypatch):
    """Cached lines (unchanged files, nobody training) are listed before the first frame; a run whose line
    is not cached, here one whose log grew since, leaves the whole listing to the worker (disabled here)."""
    make_finished_run(tmp_path, "a")
    make_finished_run(tmp_path, "b")
    RunStore(tmp_path, include_demo=False).infos()  # an earlier process listed them: their lines are cached
    monkeypatch.setattr(RunsScreen, "_list_runs", lambda self: None)

    async def rows_without_the_worker():
        app = make_app(runs_dir=tmp_path, include_demo=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            return app.screen.query_one("#runs").row_count

    assert asyncio.run(rows_without_the_worker()) == 2
    with (tmp_path / "b" / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"type": "warning", "step": 60, "time": 1.0, "message": "late"}) + "\n")
    assert asyncio.run(rows_without_the_worker()) == 0


def test_quit_while_training_asks_then_saves(tmp_path):
    async def scenario():
        app = make_app(runs_dir=tmp_path, threads=1, include_demo=False)
        async with app.run_test(size=(100, 30)) as pilot:
            cfg = preset("tiny")
            from dataclasses import replace

            cfg = replace(cfg, train=replace(cfg.train, epochs=300))
            app.start_training(app.store.create(cfg, "q"))
            await wait_for(pilot, lambda: app.training_view.history.step >= 2)
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, Choose))
            await pilot.press("y")
            await wait_for(pilot, lambda: not app.training_here(), timeout=60)
            await pilot.pause(0.2)
        return app.return_value

    assert asyncio.run(scenario()) == 0
    state, _, _ = RunStore(tmp_path).open("q").load_checkpoint("latest", fallback=False)
    assert state["step"] >= 2


def test_quit_leaving_the_run_training_then_stop_it_from_outside(tmp_path):
    """`q` then `b`: the window closes, its trainer (a process of its own session) trains on; any process can
    then stop it through the run's control file, and it saves a checkpoint."""
    from dataclasses import replace

    from vaetui.train.control import ControlFile

    async def scenario():
        app = make_app(runs_dir=tmp_path, threads=1, include_demo=False)
        async with app.run_test(size=(100, 30)) as pilot:
            cfg = preset("tiny")
            app.start_training(app.store.create(replace(cfg, train=replace(cfg.train, epochs=5000)), "bg"))
            await wait_for(pilot, lambda: app.training_view.history.step >= 2)
            proc = app.trainer[1]
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, Choose))
            await pilot.press("b")
            await pilot.pause(0.2)
        return proc

    proc = asyncio.run(scenario())
    run = RunStore(tmp_path, include_demo=False).open("bg")
    assert proc.poll() is None and os.getsid(proc.pid) != os.getsid(0)  # still training, in its own session
    step = run.info().step
    deadline = time.monotonic() + 60
    while run.info().step <= step and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run.info().step > step  # trains on without the window
    ControlFile(run.path).stop()
    assert proc.wait(timeout=60) == 0
    info = run.info()
    assert info.status == "stopped"
    state, _, _ = run.load_checkpoint("latest", fallback=False)
    assert state["step"] == info.step


# ---------------------------------------------------------------------------- snapshots
@pytest.fixture
def snap_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the runs folder shows as "runs", the same on every machine
    monkeypatch.setenv("TZ", "UTC")  # the "updated" column, the same in every time zone
    time.tzset()
    make_finished_run(tmp_path / "runs")
    return "runs"


def test_snapshot_runs(snap_compare, snap_runs):
    assert snap_compare(make_app(runs_dir=snap_runs, include_demo=False), terminal_size=(100, 24))


def test_snapshot_monitor(snap_compare, snap_runs):
    app = make_app(runs_dir=snap_runs, include_demo=False, monitor="faces-demo")
    assert snap_compare(app, terminal_size=(100, 30), press=["_"])


def test_snapshot_monitor_of_a_family_with_terms_80x24(snap_compare, snap_runs):
    make_finished_run(Path(snap_runs), "tc-demo", model="beta-tcvae", terms=("mi", "tc", "dwkl"))
    app = make_app(runs_dir=snap_runs, include_demo=False, monitor="tc-demo")
    assert snap_compare(app, terminal_size=(80, 24), press=["_"])


def test_snapshot_monitor_80x24(snap_compare, snap_runs):
    app = make_app(runs_dir=snap_runs, include_demo=False, monitor="faces-demo")
    assert snap_compare(app, terminal_size=(80, 24), press=["_"])


def test_snapshot_chart(snap_compare, snap_runs):
    app = make_app(runs_dir=snap_runs, include_demo=False, monitor="faces-demo")
    assert snap_compare(app, terminal_size=(100, 30), press=["_", "f", "l"])


def test_snapshot_new_run_form(snap_compare, snap_runs):
    assert snap_compare(make_app(runs_dir=snap_runs, include_demo=False, start="new"), terminal_size=(80, 24))


def test_snapshot_help(snap_compare, snap_runs):
    assert snap_compare(make_app(runs_dir=snap_runs, include_demo=False), terminal_size=(80, 24), press=["question_mark"])


def test_snapshot_too_small(snap_compare, snap_runs):
    assert snap_compare(make_app(runs_dir=snap_runs, include_demo=False), terminal_size=(60, 16))


@pytest.fixture
def fixed_pictures(monkeypatch):
    """The explore screens show FixedPictures' pictures, the same on every CPU (see fake_runs.FixedPictures)."""
    import dataclasses

    import vaetui.runs.checkpoint as checkpoint
    from fake_runs import FixedPictures

    real = checkpoint.open_model

    def load(run, checkpoint=None, device="cpu"):
        loaded = real(run, checkpoint, device)
        return dataclasses.replace(loaded, model=FixedPictures(loaded.config.model.latent, loaded.config.data.size))

    monkeypatch.setattr(checkpoint, "open_model", load)
    # The per-image losses shown are sums over every pixel: in float64 their last digit shown no longer depends on
    # the order the host's kernels sum in.
    import vaetui.models.losses as losses

    real_nll = losses.reconstruction_nll
    monkeypatch.setattr(losses, "reconstruction_nll",
                        lambda logits, x, likelihood="bernoulli": real_nll(logits.double(), x.double(), likelihood))


def _explore_ready(key: str, *then: str):
    async def run_before(pilot) -> None:
        await pilot.press(key)
        deadline = time.monotonic() + 60
        while getattr(pilot.app.screen, "figure", None) is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
        for k in then:  # keys that recompose the picture (zoom, a selection): wait for the new one
            shown = pilot.app.screen.shown
            await pilot.press(k)
            while pilot.app.screen.shown is shown and time.monotonic() < deadline:
                await pilot.pause(0.05)
        await pilot.pause(0.2)

    return run_before


@pytest.mark.parametrize("key", ["g", "i", "r", "d"])
def test_snapshot_explore_screens_on_the_demo(snap_compare, snap_runs, fixed_pictures, key):
    app = make_app(runs_dir=snap_runs, include_demo=True)
    assert snap_compare(app, terminal_size=(100, 30), run_before=_explore_ready(key))


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
@pytest.mark.parametrize("key", ["g", "i", "r", "d", "z"])
def test_snapshot_explore_screens_fill_the_window(snap_compare, snap_runs, fixed_pictures, key, size):
    app = make_app(runs_dir=snap_runs, include_demo=True)
    assert snap_compare(app, terminal_size=size, run_before=_explore_ready(key))


@pytest.mark.parametrize("key, then", [("g", ["right", "enter"]), ("r", ["down", "enter"])])
def test_snapshot_zoomed_picture(snap_compare, snap_runs, fixed_pictures, key, then):
    app = make_app(runs_dir=snap_runs, include_demo=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_explore_ready(key, *then))


def test_snapshot_monitor_200x60(snap_compare, snap_runs):
    app = make_app(runs_dir=snap_runs, include_demo=False, monitor="faces-demo")
    assert snap_compare(app, terminal_size=(200, 60), press=["_"])


def test_snapshot_monitor_zoomed(snap_compare, snap_runs):
    app = make_app(runs_dir=snap_runs, include_demo=False, monitor="faces-demo")
    assert snap_compare(app, terminal_size=(80, 24), press=["_", "enter"])


def test_runs_list_sort_mark_compare_rename_delete(tmp_path, monkeypatch):
    from helpers import tiny_config, train as train_run
    from vaetui.ui.screens.dialogs import Ask
    from vaetui.ui.screens.explore import CompareScreen, LatentScreen

    store = RunStore(tmp_path, include_demo=False)
    train_run(store, "alpha", tiny_config(epochs=2))
    train_run(store, "beta", tiny_config(epochs=2, latent=3))

    async def scenario():
        app = make_app(runs_dir=tmp_path, include_demo=False)
        async with app.run_test(size=(100, 30)) as pilot:
            runs = app.screen
            await pilot.pause()
            assert [i.name for i in runs.infos] == ["alpha", "beta"]
            await pilot.press("o")  # by updated: newest first
            assert runs.sort_by == "updated" and runs.infos[0].name == "beta"
            await pilot.press("o", "o", "o", "o")  # best valid, latent, status, and back to name
            assert runs.sort_by == "name"
            await pilot.press("space", "space")
            assert runs.marked == {"alpha", "beta"}
            await pilot.press("v")
            await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.figure is not None)
            cmp = app.screen
            assert "alpha" in cmp.info_text() and "beta" in cmp.info_text()
            assert cmp.figure.image.height > 3 * 32  # originals + two runs' rows
            from vaetui.ui.widgets.chart import Chart

            rd = cmp.query_one("#cmp-rd", Chart)
            await wait_for(pilot, lambda: len(rd._series) == 2)
            for name, kls, recons, _ in rd._series:  # each run's path through its validation epochs
                logged = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
                evals = [e for e in logged if e["type"] == "eval"]
                assert list(kls) == [e["kl"] for e in evals] and list(recons) == [e["recon"] for e in evals]
            assert "rate–distortion" in str(rd.render())
            await pilot.press("u")
            await wait_for(pilot, lambda: app.screen is runs)
            runs.query_one("DataTable").move_cursor(row=1)  # beta (latent 3)
            await pilot.press("z")
            await wait_for(pilot, lambda: isinstance(app.screen, LatentScreen) and app.screen.figure is not None)
            assert "active" in app.screen.info_text()
            await pilot.press("u")
            await wait_for(pilot, lambda: app.screen is runs)
            runs.query_one("DataTable").move_cursor(row=0)
            await pilot.press("m")
            await wait_for(pilot, lambda: isinstance(app.screen, Ask))
            app.screen.query_one("Input").value = "gamma"
            await pilot.press("enter")
            await wait_for(pilot, lambda: runs.infos and [i.name for i in runs.infos] == ["beta", "gamma"])
            runs.query_one("DataTable").move_cursor(row=1)
            await pilot.press("x")
            await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
            await pilot.press("y")
            await wait_for(pilot, lambda: [i.name for i in runs.infos] == ["beta"])

    asyncio.run(scenario())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beta"]


def test_monitor_follows_a_run_trained_by_another_process(tmp_path):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "vaetui", "train", "--preset", "tiny", "--epochs", "400",
                             "--threads", "1", "--runs-dir", str(tmp_path), "--name", "elsewhere", "--log-format", "json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async def scenario():
            deadline = time.monotonic() + 60
            while not (tmp_path / "elsewhere" / "metrics.jsonl").exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            app = make_app(runs_dir=tmp_path, include_demo=False, monitor="elsewhere")
            async with app.run_test(size=(100, 30)) as pilot:
                await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
                state = lambda: app.screen.view.history  # noqa: E731
                await wait_for(pilot, lambda: state().step > 0)
                first = state().step
                await wait_for(pilot, lambda: state().step > first + 4)  # it keeps following
                assert state().status == "running"
                await wait_for(pilot, lambda: "running elsewhere" in str(app.screen.query_one("#status").render()))
                # the keys of a second SSH session work on it too: through the run's control file
                await pilot.press("p")
                await wait_for(pilot, lambda: state().status == "paused")
                paused_at = state().step
                await pilot.press("c")
                await wait_for(pilot, lambda: state().checkpoints.get("latest") == paused_at)
                await pilot.press("p")
                await wait_for(pilot, lambda: state().status == "running" and state().step > paused_at)
                await pilot.press("s")
                await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
                await pilot.press("y")
                await wait_for(pilot, lambda: state().status == "stopped")
                assert proc.wait(timeout=60) == 0

        asyncio.run(scenario())
    finally:
        proc.kill()
        proc.wait()


def test_monitor_follows_a_run_through_a_kill_and_a_resume(tmp_path):
    """A resume rewrites metrics.jsonl shorter: the monitor reads it again and sees the resumed run (issue "Trust", 10)."""
    import json
    import signal
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "vaetui", "train", "--threads", "1", "--runs-dir", str(tmp_path), "--log-format", "json"]
    first = subprocess.Popen([*cmd, "--preset", "tiny", "--epochs", "400", "--dataset-size", "4096", "--name", "again",
                              "--checkpoint-every", "50", "--image-every", "1000"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def logged_step() -> int:
        try:
            lines = (tmp_path / "again" / "metrics.jsonl").read_text().splitlines()
        except FileNotFoundError:
            return 0
        return max([json.loads(l)["step"] for l in lines if l.endswith("}")] or [0])

    procs = [first]
    try:
        async def scenario():
            deadline = time.monotonic() + 60
            while not (tmp_path / "again" / "metrics.jsonl").exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            app = make_app(runs_dir=tmp_path, include_demo=False, monitor="again")
            async with app.run_test(size=(100, 30)) as pilot:
                await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
                state = lambda: app.screen.view.history  # noqa: E731 - a resume replaces the history
                await wait_for(pilot, lambda: state().step >= 5)
                # Kill it between two checkpoints: the steps after the last one are in the log, unsaved.
                await wait_for(pilot, lambda: 60 <= logged_step() and 15 <= logged_step() % 50 <= 40)
                first.send_signal(signal.SIGKILL)
                first.wait()
                killed_at = logged_step()
                await wait_for(pilot, lambda: "interrupted" in str(app.screen.query_one("#status").render()))
                second = subprocess.Popen([*cmd, "--resume", "again"], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
                procs.append(second)
                await wait_for(pilot, lambda: any("resumed at step" in line for line in state().log))
                resumed_at = int(next(l for l in state().log if "resumed at step" in l).split("step ")[1].split()[0])
                await wait_for(pilot, lambda: state().status == "running" and state().step > resumed_at + 3)
                assert resumed_at < killed_at  # the log really was rewritten shorter
                shown = lambda: str(app.screen.query_one("#status").render())  # noqa: E731
                import re

                def shown_step() -> int:
                    m = re.search(r"step (\d+)/", shown())
                    return int(m.group(1)) if m else -1

                await wait_for(pilot, lambda: "running elsewhere" in shown() and shown_step() > resumed_at)

        asyncio.run(scenario())
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_deleting_a_symlinked_run_in_the_runs_list_says_why_in_one_line(tmp_path):
    """`x` on a run that is a symbolic link raised an OSError in the TUI; now one line, and nothing is deleted."""
    make_finished_run(tmp_path / "elsewhere", name="real")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "linked").symlink_to(tmp_path / "elsewhere" / "real")

    async def scenario():
        app = make_app(runs_dir=tmp_path / "runs", include_demo=False)
        async with app.run_test(size=(100, 30)) as pilot:
            runs = app.screen
            await wait_for(pilot, lambda: runs.infos and [i.name for i in runs.infos] == ["linked"])
            await pilot.press("x")
            await wait_for(pilot, lambda: isinstance(app.screen, Confirm))
            await pilot.press("y")
            await wait_for(pilot, lambda: any("is a link to" in n.message for n in app._notifications))
            return [n.message for n in app._notifications]

    messages = asyncio.run(scenario())
    said = next(m for m in messages if "is a link to" in m)
    assert "\n" not in said and "remove the link" in said
    assert (tmp_path / "elsewhere" / "real" / "config.json").exists() and (tmp_path / "runs" / "linked").is_symlink()
