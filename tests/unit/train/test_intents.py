"""vaetui.train.control.Intent: the words of control.jsonl, read back whatever a line holds."""

import pytest

from vaetui.train.control import Control, Intent


@pytest.mark.parametrize("line, intent", [({"intent": "stop"}, Intent.STOP), ({"intent": "pause", "by": "h:1"}, Intent.PAUSE),
                                          ({"intent": "resume"}, Intent.RESUME),
                                          ({"intent": "checkpoint"}, Intent.CHECKPOINT)])
def test_a_line_names_its_intent(line, intent):
    assert Intent.of(line) is intent


@pytest.mark.parametrize("line", [{}, {"intent": "explode"}, {"intent": None}, {"intent": ["stop"]}, [1, 2], "stop", None])
def test_a_damaged_or_unknown_line_is_no_intent(line):
    assert Intent.of(line) is None


@pytest.mark.parametrize("intent, flag", [(Intent.STOP, "stop_requested"), (Intent.PAUSE, "paused"),
                                          (Intent.CHECKPOINT, "checkpoint_requested")])
def test_an_intent_sets_its_flag_and_no_other(intent, flag):
    control = Control()
    intent.apply(control)
    flags = {"stop_requested", "paused", "checkpoint_requested"}
    assert {f for f in flags if getattr(control, f).is_set()} == {flag}


def test_resume_clears_a_pause():
    control = Control()
    Intent.PAUSE.apply(control)
    Intent.RESUME.apply(control)
    assert not control.paused.is_set()
