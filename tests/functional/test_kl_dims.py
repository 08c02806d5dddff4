"""KL per latent dimension: logged with each step event, folded into the history, drawn as a heat map that
repaints only the column a new event changes, and shown live in the monitor."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from vaetui.runs.events import StepEvent
from vaetui.runs.history import RunHistory
from vaetui.runs.store import RunStore
from vaetui.ui.widgets.heatmap import FLOOR, NOTHING, HeatMap, Schedule, _colour, _columns, render_heat

from helpers import tiny_config, train


def test_each_step_event_carries_the_kl_of_every_dimension_and_they_sum_to_the_kl(tmp_path):
    run, events = train(RunStore(tmp_path, include_demo=False), "k", tiny_config(max_steps=6, latent=5))
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert steps and all(len(e.kl_dims) == 5 for e in steps)
    for e in steps:  # the loss's own KL (summed over dimensions) against the vector (4 significant digits each)
        assert sum(e.kl_dims) == pytest.approx(e.kl, rel=1e-3, abs=1e-3)
    rh = RunHistory(run.metrics_path)
    rh.refresh()
    assert rh.history.kl_dims.steps() == [e.step for e in steps]
    assert rh.history.kl_dims.last == steps[-1].kl_dims


def test_a_discrete_code_logs_none(tmp_path):
    _, events = train(RunStore(tmp_path, include_demo=False), "q",
                      tiny_config(model="vqvae", max_steps=2, codebook_size=16))
    assert all(e.kl_dims is None for e in events if isinstance(e, StepEvent))


def test_a_long_log_folds_the_same_columns_in_bulk(tmp_path):
    """Read whole (bulk, a sample of lines parsed) or event by event: the newest columns agree, and a resume
    drops the columns after its checkpoint."""
    path = tmp_path / "metrics.jsonl"
    lines = [{"type": "started", "step": 0, "time": 1.0, "run": "r", "device": "cpu", "parameters": 1,
              "total_steps": 3000, "steps_per_epoch": 3000}]
    for s in range(1, 3001):
        lines.append({"type": "step", "step": s, "time": 1.0 + s, "epoch": 1, "epoch_step": s, "steps_per_epoch": 3000,
                      "total_steps": 3000, "loss": 1.0, "recon": 1.0, "kl": 0.3, "beta": 1.0, "lr": 1e-3,
                      "nats_per_dim": 0.1, "bits_per_dim": 0.1, "images_per_s": 1.0, "elapsed": s, "nonfinite": 0,
                      "kl_dims": [0.1, 0.2 * (s > 1500)]})
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    rh = RunHistory(path)
    rh.refresh()
    cols = rh.history.kl_dims
    assert len(cols) <= 1024 and cols.steps()[-1] == 3000 and cols.last == [0.1, 0.2]
    assert cols.matrix()[0] == [0.1, 0.0]
    with path.open("a") as fh:
        fh.write(json.dumps({**lines[0], "step": 1000, "resumed": True}) + "\n")
    rh.refresh()
    assert max(rh.history.kl_dims.steps()) <= 1000


def test_columns_are_placed_by_step_so_a_new_event_changes_one():
    steps = [10, 20, 30]
    cols, total = _columns(steps, [[1.0], [2.0], [3.0]], 10, 100)
    assert total == 100 and cols[0] == [1.0] and cols[1] == [2.0] and cols[2] == [3.0] and cols[3] is None
    later, _ = _columns(steps + [40], [[1.0], [2.0], [3.0], [4.0]], 10, 100)
    assert [j for j, (a, b) in enumerate(zip(cols, later)) if a != b] == [3]
    few, _ = _columns([10, 50], [[1.0], [5.0]], 10, 100)  # between two events a column holds the one before
    assert few[1:4] == [[1.0]] * 3 and few[4] == [5.0] and few[5] is None


def test_colours_say_nothing_the_floor_and_how_much():
    assert _colour(0.001, 5.0, 0.0) == NOTHING  # a collapsed dimension
    assert _colour(0.5, 5.0, 0.5) == FLOOR  # held at the free-bits floor
    low, high = _colour(0.05, 5.0, 0.0), _colour(4.0, 5.0, 0.0)
    assert low != high and sum(high) > sum(low)  # more KL, brighter


def test_the_heat_map_marks_the_schedule_and_counts_active_dimensions():
    text = render_heat([50, 100], [[0.5, 0.001, 2.0], [0.6, 0.002, 2.1]], 44, 10,
                       Schedule(warmup=100, cycles=2, total=400, free_bits=0.0))
    lines = text.plain.splitlines()
    assert lines[0].startswith("active 2/3")
    marks = lines[-1]
    assert marks.index("▲") == 4 + 9 and marks.index("△") == 4 + 19  # step 100 and 200 of 400 over 40 columns


def test_the_widget_repaints_only_the_changed_column(monkeypatch):
    from textual.app import App
    from textual.geometry import Region

    class One(App):
        def compose(self):
            yield HeatMap(id="h")

    async def scenario():
        app = One()
        async with app.run_test(size=(44, 12)) as pilot:
            heat = app.query_one(HeatMap)
            heat.set_columns([10, 20], [[1.0, 0.1], [1.0, 0.1]], Schedule(total=400))
            await pilot.pause()
            asked = []
            monkeypatch.setattr(HeatMap, "refresh", lambda self, *regions, **kw: asked.append(regions))
            heat.set_columns([10, 20, 30], [[1.0, 0.1], [1.0, 0.1], [0.9, 0.1]], total=400)
            heat.set_columns([10, 20, 30], [[1.0, 0.1], [1.0, 0.1], [0.9001, 0.1]], total=400)  # the same colours
            heat.set_columns([10, 20, 30], [[1.0, 0.1], [1.0, 0.1], [0.9, 0.001]], total=400)  # z1 collapses
            return asked

    new_column, collapsed = asyncio.run(scenario())  # the second call repainted nothing
    assert new_column == (Region(4 + 2, 1, 1, 11),)  # step 30 of 400 over 40 columns: column 2, after the gutter
    assert collapsed == (Region(0, 0, 44, 1), Region(4 + 2, 1, 1, 11))  # the title's active count, and the column


def test_the_monitor_shows_active_dimensions_and_the_heat_map_on_k(tmp_path):
    from vaetui.ui.app import make_app
    from vaetui.ui.screens.monitor import MonitorScreen

    train(RunStore(tmp_path, include_demo=False), "m", tiny_config(max_steps=8, latent=4))

    async def scenario():
        app = make_app(runs_dir=tmp_path, include_demo=False, monitor="m")
        async with app.run_test(size=(100, 30)) as pilot:
            deadline = time.monotonic() + 60
            while not (isinstance(app.screen, MonitorScreen) and app.screen.view.history.step == 8) \
                    and time.monotonic() < deadline:
                await pilot.pause(0.05)
            await pilot.pause(0.2)
            label = str(app.screen.query_one("#label-kl").render())
            await pilot.press("k")
            await pilot.pause(0.3)
            heat = app.screen.query_one("#heat")
            shown = heat.display and not app.screen.query_one("#picture").display
            return label, shown, str(heat.render()), app.screen.view.history.kl_dims.last

    label, shown, heat, last = asyncio.run(scenario())
    active = sum(v >= 0.01 for v in last)
    assert f"active {active}/4" in label and shown and heat.startswith(f"active {active}/4")


def test_plot_kl_dims_draws_the_logged_matrix_with_the_schedule(tmp_path, monkeypatch, capsys):
    import numpy as np

    from vaetui.cli import main
    from vaetui.pictures import plots

    run, events = train(RunStore(tmp_path, include_demo=False), "p",
                        tiny_config(max_steps=12, latent=3, kl_warmup=6, kl_cycles=2, epochs=3))
    drawn = {}

    def keep(plt, fig, out):
        ax = fig.axes[0]
        drawn["image"] = ax.images[0].get_array()
        drawn["lines"] = sorted(line.get_xdata()[0] for line in ax.lines)
        plt.close(fig)
        return out

    monkeypatch.setattr(plots, "_save", keep)
    assert main(["plot", "p", "--kl-dims", "--runs-dir", str(tmp_path), "--out", str(tmp_path / "k.png")]) == 0
    logged = np.array([e.kl_dims for e in events if isinstance(e, StepEvent)]).T  # dims × step events
    assert np.allclose(np.asarray(drawn["image"]), np.clip(logged, 1e-3, None))
    total = 3 * 8  # 3 epochs of 8 steps (128 images, batch 16): the cycles split the planned steps
    assert drawn["lines"] == [6, total // 2]  # the warm-up's end, the second cycle's start
