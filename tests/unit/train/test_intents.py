"""vaetui.train.control.Intent: the words of control.jsonl, read back whatever a line holds."""

import json

import pytest

from vaetui.train.control import Control, ControlFile, ControlWatcher, Intent


@pytest.mark.parametrize("line, intent", [({"intent": "stop"}, Intent.STOP), ({"intent": "pause", "by": "h:1"}, Intent.PAUSE),
                                          ({"intent": "resume"}, Intent.RESUME),
                                          ({"intent": "checkpoint"}, Intent.CHECKPOINT)])
def test_a_line_names_its_intent(line, intent):
    assert Intent.of(line) is intent


@pytest.mark.parametrize("line", [{}, {"intent": "explode"}, {"intent": None}, {"intent": ["stop"]}, [1, 2], "stop", None])
def test_a_damaged_or_unknown_line_is_no_intent(line):
    assert Intent.of(line) is None


def test_each_intent_reaches_the_trainer_through_the_file(tmp_path):
    control = Control()
    watcher = ControlWatcher(tmp_path, control)
    asked = ControlFile(tmp_path)
    asked.pause()
    watcher.poll()
    assert control.paused.is_set() and not control.stop_requested.is_set()
    asked.resume()
    asked.checkpoint()
    watcher.poll()
    assert not control.paused.is_set() and control.checkpoint_requested.is_set()
    asked.stop()
    watcher.poll()
    assert control.stop_requested.is_set()
    lines = [json.loads(line) for line in (tmp_path / "control.jsonl").read_text().splitlines()]
    assert [line["intent"] for line in lines] == ["pause", "resume", "checkpoint", "stop"]
