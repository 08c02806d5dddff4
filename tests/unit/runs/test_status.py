"""vaetui.runs.status: the one rule that makes a run's status from its log and whether a live process trains it."""

import json

import pytest

from vaetui.runs.status import RunStatus, status_of


@pytest.mark.parametrize("logged, live, expected", [
    ("new", None, "new"), ("running", None, "running"), ("paused", None, "paused"),  # liveness not known yet
    ("running", False, "interrupted"), ("paused", False, "interrupted"),  # nobody trains it: it resumes
    ("finished", False, "finished"), ("stopped", False, "stopped"), ("failed", False, "failed"), ("new", False, "new"),
    ("running", True, "running"), ("paused", True, "paused"),
    ("new", True, "running"), ("finished", True, "running"), ("stopped", True, "running"),  # a resume's first moments
])
def test_the_status_of_a_run(logged, live, expected):
    assert status_of(logged, live) == RunStatus(expected)


def test_a_status_is_its_word_in_text_and_json():
    assert f"{RunStatus.INTERRUPTED}" == "interrupted" and str(RunStatus.PAUSED) == "paused"
    assert f"{RunStatus.NEW:>5}" == "  new"
    assert json.loads(json.dumps({"status": RunStatus.FAILED})) == {"status": "failed"}
    assert RunStatus.STOPPED == "stopped"


def test_ended_is_finished_stopped_or_failed():
    assert {s for s in RunStatus if s.ended} == {RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.FAILED}


def test_an_unknown_word_is_refused():
    with pytest.raises(ValueError):
        status_of("sleeping", None)
