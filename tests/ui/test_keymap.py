"""One keymap: no screen shadows a global navigation key, and help shows exactly the keys of the screen below."""

from __future__ import annotations

import asyncio
import time

import pytest

from vaetui.ui.app import VaeApp, make_app
from vaetui.ui.screens.study import StudyScreen
from vaetui.ui.screens import dialogs, form, monitor, runs
from vaetui.ui.screens.dialogs import GLOBAL_KEYS, bindings_of, help_shown, help_text
from vaetui.ui.screens.explore import (
    CompareScreen, DataScreen, GenerateScreen, InterpolateScreen, LatentScreen, ReconstructScreen,
)

SCREENS = [runs.RunsScreen, form.NewRunScreen, monitor.MonitorScreen, GenerateScreen, InterpolateScreen,
           ReconstructScreen, DataScreen, LatentScreen, CompareScreen, StudyScreen]


def global_actions() -> dict[str, str]:
    return {k.strip(): b.action for b in VaeApp.BINDINGS for k in b.key.split(",")}


@pytest.mark.parametrize("screen", SCREENS, ids=lambda s: s.__name__)
def test_no_screen_shadows_a_global_key(screen):
    actions = global_actions()
    for binding in bindings_of(screen.__new__(screen)):
        for key in binding.key.split(","):
            key = key.strip()
            if key in GLOBAL_KEYS:  # the same key may only mean the same thing (n: new run)
                assert binding.action.removeprefix("app.") == actions[key], (screen.__name__, key, binding.action)


def test_every_global_key_is_bound_by_the_app():
    assert set(GLOBAL_KEYS) <= set(global_actions())


def test_help_lists_exactly_the_keys_of_the_screen_below(tmp_path):
    async def scenario():
        app = make_app(runs_dir=tmp_path, include_demo=True)
        async with app.run_test(size=(80, 24)) as pilot:
            texts = {}
            for key, cls in (("g", GenerateScreen), ("i", InterpolateScreen), ("d", DataScreen)):
                await pilot.press(key)
                deadline = time.monotonic() + 60
                while not isinstance(app.screen, cls) and time.monotonic() < deadline:
                    await pilot.pause(0.05)
                below = app.screen
                await pilot.press("question_mark")
                while help_shown(app.screen) is None and time.monotonic() < deadline:
                    await pilot.pause(0.05)
                texts[cls] = str(help_shown(app.screen).render())
                for binding in bindings_of(below):
                    assert binding.description in texts[cls], (cls.__name__, binding.description)
                await pilot.press("escape")
                await pilot.pause(0.3)
            return texts

    texts = asyncio.run(scenario())
    assert "new faces" in texts[GenerateScreen] and "new faces" not in texts[DataScreen]
    assert "new examples" in texts[DataScreen] and "re-roll" not in "".join(texts.values())


def test_help_fits_80x24():
    from vaetui.ui.screens.explore import LatentScreen

    class FakeApp:
        BINDINGS = VaeApp.BINDINGS

        def get_key_display(self, b):
            return b.key

    for cls in SCREENS:
        text = help_text(FakeApp(), cls.__new__(cls))
        lines = text.splitlines()
        from rich.text import Text

        assert len(lines) <= 22 and max(len(Text.from_markup(line).plain) for line in lines) <= 78, cls.__name__
    assert LatentScreen in SCREENS and dialogs.Help


def test_while_the_help_is_open_it_has_the_keys(tmp_path):
    """Keys typed at the help do not reach the screen beneath it (g does not open generate, q does not
    quit); escape, ? and q close it, and the screen's keys work again."""
    async def scenario():
        app = make_app(runs_dir=tmp_path, include_demo=True)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            below = app.screen
            closed_by = {}
            for close in ("escape", "question_mark", "q"):
                await pilot.press("question_mark")
                await pilot.pause()
                assert help_shown(below) is not None
                await pilot.press("g", "n", "down")
                await pilot.pause()
                assert app.screen is below and help_shown(below) is not None and app.is_running
                await pilot.press(close)
                await pilot.pause()
                closed_by[close] = help_shown(below) is None and app.is_running
            await pilot.press("n")
            deadline = time.monotonic() + 30
            while app.screen is below and time.monotonic() < deadline:
                await pilot.pause(0.05)
            return closed_by, type(app.screen)

    closed_by, after = asyncio.run(scenario())
    assert closed_by == {"escape": True, "question_mark": True, "q": True}
    assert after is form.NewRunScreen


def test_the_help_lays_its_text_out_once_and_again_when_it_changes(tmp_path, monkeypatch):
    """Opening the help again reuses its lines (laying the markup out was ~2 ms of every press that opens it);
    over another screen it is laid out anew and shows that screen's keys."""
    from textual.visual import Visual

    made = []
    to_strips = Visual.to_strips

    def counting(widget, *args, **kwargs):
        if isinstance(widget, dialogs.Help):
            made.append((widget.text.splitlines()[0], widget.size.width))
        return to_strips(widget, *args, **kwargs)

    monkeypatch.setattr(Visual, "to_strips", staticmethod(counting))

    async def scenario():
        app = make_app(runs_dir=tmp_path, include_demo=True)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            for _ in range(3):
                await pilot.press("question_mark")
                await pilot.pause()
                assert help_shown(app.screen) is not None
                await pilot.press("escape")
                await pilot.pause()
            opened_on_runs = list(made)
            await pilot.press("n")  # the new-run form: another screen, its own keys
            deadline = time.monotonic() + 30
            while not isinstance(app.screen, form.NewRunScreen) and time.monotonic() < deadline:
                await pilot.pause(0.05)
            app.action_help()  # the form's fields have the keys: the help opens from the app, as its binding does
            await pilot.pause()
            await pilot.pause()
            return opened_on_runs, made[len(opened_on_runs):], str(help_shown(app.screen).render())

    once, other, text = asyncio.run(scenario())
    assert len(once) == 1 and "runs" in once[0][0]
    assert len(other) == 1 and "new run" in other[0][0] and "new run" in text
