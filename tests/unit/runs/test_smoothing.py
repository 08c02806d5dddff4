"""Curves a person can trust: the debiased EMA against hand computations, its restarts, and the x axes."""

from __future__ import annotations

import math

import pytest

from vaetui.runs.events import StartedEvent, StepEvent, WarningEvent
from vaetui.runs.history import History
from vaetui.runs.smoothing import ema, smooth, x_values


def test_the_ema_is_debiased_by_hand():
    # w = 0.5: m = 0.5, 1.25, 2.125; divided by 1 - 0.5**n = 0.5, 0.75, 0.875
    assert ema([1.0, 2.0, 3.0], 0.5) == pytest.approx([1.0, 1.25 / 0.75, 2.125 / 0.875])
    # without the correction the first point would be 0.1 (pulled to zero); with it, the point itself
    assert ema([10.0, 10.0, 10.0], 0.9) == pytest.approx([10.0, 10.0, 10.0])
    assert ema([4.0, 5.0], 0.0) == [4.0, 5.0]


def test_a_non_finite_point_is_drawn_as_it_is_and_left_out_of_the_average():
    out = ema([2.0, math.nan, 4.0], 0.5)
    assert out[0] == 2.0 and math.isnan(out[1])
    assert out[2] == pytest.approx((0.5 * 1.0 + 0.5 * 4.0) / 0.75)  # n = 2: the NaN did not count


def test_smoothing_restarts_at_each_break_and_never_averages_across_one():
    xs, ys = [1, 2, 3, 4, 5, 6], [10.0, 10.0, 10.0, 100.0, 100.0, 100.0]
    out = smooth(xs, ys, 0.9, breaks=[3])  # resumed from step 3: steps 4.. are the new session's
    assert out == pytest.approx([10.0] * 3 + [100.0] * 3)  # the jump is drawn where it happened, not smeared
    across = smooth(xs, ys, 0.9)
    assert across[3] < 50  # without the break the average would cross it


def test_weights_out_of_range_are_refused():
    with pytest.raises(ValueError):
        ema([1.0], 1.0)


def test_x_by_epoch_and_by_wall_time():
    assert x_values([50, 100, 150], "epoch", 100) == [0.5, 1.0, 1.5]
    hours = x_values([1, 5, 10], "time", wall=([1, 10], [3600.0, 3600.0 + 1800.0]))
    assert hours == pytest.approx([0.0, 0.25 * 4 / 4.5, 0.5])
    with pytest.raises(ValueError):
        x_values([1], "minutes")


def _step(step, t=0.0):
    return StepEvent(step=step, epoch=1, epoch_step=step, steps_per_epoch=100, total_steps=100, loss=1.0, recon=1.0,
                     kl=0.0, beta=1.0, lr=1e-3, nats_per_dim=0.0, bits_per_dim=0.0, images_per_s=1.0, elapsed=t,
                     nonfinite=0, time=1000.0 + t)


def test_the_history_knows_where_sessions_and_roll_backs_began():
    h = History()
    h.apply(StartedEvent(step=0, run="r", device="cpu", parameters=1, total_steps=100, steps_per_epoch=100))
    for s in range(1, 31):
        h.apply(_step(s, float(s)))
    h.apply(WarningEvent(step=20, message="a collapse", cause="collapse"))
    assert h.breaks == []
    h.apply(WarningEvent(step=12, message="rolled back", cause="rollback"))
    h.apply(StartedEvent(step=25, run="r", device="cpu", parameters=1, total_steps=100, steps_per_epoch=100,
                         resumed=True))
    assert h.breaks == [12, 25]
    h.apply(StartedEvent(step=10, run="r", device="cpu", parameters=1, total_steps=100, steps_per_epoch=100,
                         resumed=True))
    assert h.breaks == [10]  # an older checkpoint resumed: the later breaks went with the steps they began
    assert h.wall.points()[0][:3] == [1, 2, 3] and h.wall.points()[1][:2] == [1001.0, 1002.0]
