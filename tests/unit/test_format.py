"""vaetui.format: which values are real numbers, and durations for people."""

import math

import pytest

from vaetui.format import duration, finite, is_finite


@pytest.mark.parametrize("value, expected", [(3, 3.0), (2.5, 2.5), (-1e300, -1e300), (0, 0.0)])
def test_a_finite_number_is_itself_as_a_float(value, expected):
    assert finite(value) == expected and isinstance(finite(value), float) and is_finite(value)


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf, True, False, "3", [1], {}])
def test_anything_else_is_not_a_number(value):
    assert finite(value) is None and not is_finite(value)


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (42, "42s"), (59.4, "59s"), (59.6, "1m00s"), (185, "3m05s"),
                                           (3599, "59m59s"), (3600, "1h00m"), (3725, "1h02m"), (90061, "25h01m")])
def test_durations_are_written_short(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize("seconds", [None, -1, math.nan, math.inf])
def test_an_unknown_duration_is_two_dashes(seconds):
    assert duration(seconds) == "--"
