"""vaetui plot --smooth/--x and the full chart's smoothing: a reference EMA with debiasing, restarted at a resume."""

from __future__ import annotations

import asyncio
import json

import pytest

from vaetui.cli import main
from vaetui.pictures import plots

from fake_runs import make_finished_run


def reference_ema(ys, w):
    """TensorBoard's smoothing as its docs give it, written out here (not vaetui's code)."""
    out, last, n = [], 0.0, 0
    for y in ys:
        n += 1
        last = last * w + (1 - w) * y
        out.append(last / (1 - w ** n))
    return out


@pytest.fixture
def resumed_run(tmp_path):
    """A finished run of 60 steps (20 an epoch) whose second session began at step 30, one loss higher after it."""
    path = make_finished_run(tmp_path, name="r")
    lines = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    out = []
    for e in lines:
        if e["type"] == "step" and e["step"] == 31:
            out.append({**lines[0], "step": 30, "resumed": True, "time": e["time"] - 0.5})
        if e["type"] == "step" and e["step"] > 30:
            e = {**e, "loss": e["loss"] + 500.0}
        out.append(e)
    (path / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in out))
    return tmp_path, [e for e in out if e["type"] == "step"]


def test_plot_smooths_each_session_on_its_own_against_the_chosen_x(resumed_run, monkeypatch, capsys):
    runs, steps = resumed_run
    drawn = {}

    def keep(plt, fig, out):
        drawn["lines"] = [(ln.get_label(), list(ln.get_xdata()), list(ln.get_ydata())) for ln in fig.axes[0].lines]
        drawn["xlabel"] = fig.axes[0].get_xlabel()
        plt.close(fig)
        return out

    monkeypatch.setattr(plots, "_save", keep)
    assert main(["plot", "r", "--runs-dir", str(runs), "--smooth", "0.9", "--x", "epoch", "--out",
                 str(runs / "c.png")]) == 0
    lines = {label: (xs, ys) for label, xs, ys in drawn["lines"]}
    xs, ys = lines["r train (per step, EMA 0.9)"]
    first = [e["loss"] for e in steps if e["step"] <= 30]
    second = [e["loss"] for e in steps if e["step"] > 30]
    assert ys == pytest.approx(reference_ema(first, 0.9) + reference_ema(second, 0.9))
    assert xs == pytest.approx([e["step"] / 20 for e in steps])  # epochs
    raw = [ln for ln in drawn["lines"] if ln[0].startswith("_")][0]  # the faint raw points beneath
    assert raw[2] == pytest.approx([e["loss"] for e in steps])
    assert drawn["xlabel"] == "Epoch"
    assert main(["plot", "r", "--runs-dir", str(runs), "--x", "time", "--steps", "--out", str(runs / "c.png")]) == 0
    xs = dict((label, x) for label, x, _ in drawn["lines"])["r train (per step)"]
    assert xs == pytest.approx([(e["time"] - steps[0]["time"]) / 3600 for e in steps])


def test_the_full_chart_cycles_smoothing_and_x(resumed_run):
    from vaetui.ui.app import make_app
    from vaetui.ui.screens.monitor import MonitorScreen

    runs, steps = resumed_run

    async def scenario():
        app = make_app(runs_dir=runs, include_demo=False, monitor="r")
        async with app.run_test(size=(100, 30)) as pilot:
            while not (isinstance(app.screen, MonitorScreen) and app.screen.view.history.step == 60):
                await pilot.pause(0.05)
            await pilot.press("f")
            while type(app.screen).__name__ != "ChartScreen":
                await pilot.pause(0.05)
            chart = app.screen.query_one("#chart")
            seen = {"default": list(chart._series)}
            await pilot.press("w")  # 0.6 -> 0.9
            seen["0.9"] = list(chart._series)
            await pilot.press("x")  # step -> epoch
            seen["epoch"] = list(chart._series)
            return seen, chart.x_label

    seen, x_label = asyncio.run(scenario())
    losses = [e["loss"] for e in steps]
    first, second = losses[:30], losses[30:]
    names = [s[0] for s in seen["0.9"]]
    assert names == ["total loss raw", "total loss EMA 0.9"] and seen["0.9"][0][3].startswith("dim")
    assert list(seen["0.9"][0][2]) == pytest.approx(losses)
    assert list(seen["0.9"][1][2]) == pytest.approx(reference_ema(first, 0.9) + reference_ema(second, 0.9))
    assert list(seen["default"][1][2]) == pytest.approx(reference_ema(first, 0.6) + reference_ema(second, 0.6))
    assert list(seen["epoch"][1][1]) == pytest.approx([e["step"] / 20 for e in steps]) and x_label == "epoch"


def test_compare_smooths_each_runs_steps_the_same_way(resumed_run):
    from vaetui.runs.store import RunStore
    from vaetui.ui.screens.explore.compare import curves_and_numbers

    runs, steps = resumed_run
    lines, _, _ = curves_and_numbers(RunStore(runs, include_demo=False), ["r"], True, 0.9, "epoch")
    (raw_name, raw_x, raw_y, raw_colour), (name, xs, ys, colour) = lines
    losses = [e["loss"] for e in steps]
    assert raw_colour == f"dim {colour}" and list(raw_y) == pytest.approx(losses)
    assert list(ys) == pytest.approx(reference_ema(losses[:30], 0.9) + reference_ema(losses[30:], 0.9))
    assert list(xs) == pytest.approx([e["step"] / 20 for e in steps])
