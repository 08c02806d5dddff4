"""Curves a person can trust: a debiased exponential moving average that never crosses a resume or a roll-back,
and the x a curve is drawn against (step, epoch, or wall time).

The EMA is TensorBoard's, debiased (Kingma & Ba's correction, as Adam's moments): m_n = w·m_{n-1} + (1 − w)·y_n
from m_0 = 0, shown as m_n / (1 − wⁿ), so the first points are not pulled towards zero. It starts afresh at each
break (the step a resumed session or a roll-back began at): the steps either side of one are different
trainings of the same run, and an average across them would draw a change that never happened. A non-finite
point is drawn as it is and left out of the average.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Sequence

from vaetui.errors import ConfigError

X_AXES = ("step", "epoch", "time")
SMOOTH_STEPS = (0.0, 0.6, 0.9, 0.99)  # what the chart's key cycles through


def ema(ys: Sequence[float], weight: float) -> list[float]:
    """The debiased EMA of one stretch of points (weight 0: the points themselves)."""
    if not 0.0 <= weight < 1.0:
        raise ConfigError("--smooth", f"smoothing weight {weight} is not in [0, 1)")
    out, m, n = [], 0.0, 0
    for y in ys:
        if not math.isfinite(y):
            out.append(y)
            continue
        n += 1
        m = weight * m + (1.0 - weight) * y
        out.append(m / (1.0 - weight ** n))
    return out


def smooth(xs: Sequence[float], ys: Sequence[float], weight: float, breaks: Sequence[float] = ()) -> list[float]:
    """The debiased EMA of a curve, restarted at every break b (the step a session resumed from, or a roll-back
    went back to): the points at x > b are the new training's, the one at b itself the old one's."""
    if weight == 0.0 or not ys:
        return list(ys)
    out: list[float] = []
    cuts = sorted(breaks)
    start = 0
    for i in range(1, len(xs) + 1):
        if i == len(xs) or bisect_left(cuts, xs[i]) != bisect_left(cuts, xs[i - 1]):
            out.extend(ema(ys[start:i], weight))
            start = i
    return out


def x_values(steps: Sequence[float], axis: str, steps_per_epoch: int = 1,
             wall: tuple[Sequence[float], Sequence[float]] = ((), ())) -> list[float]:
    """Steps as the chosen x: the step itself, epochs (fractional), or hours of wall time since the run's first
    step (TensorBoard's "relative": a break between sessions shows as the time it took), interpolated from
    `wall`, the (step, time) points the log holds."""
    if axis == "step":
        return [float(s) for s in steps]
    if axis == "epoch":
        return [s / max(steps_per_epoch, 1) for s in steps]
    if axis != "time":
        raise ConfigError("--x", f"x axis {axis!r} is not one of {', '.join(X_AXES)}")
    ws, wt = wall
    if not ws:
        return [0.0 for _ in steps]
    import numpy as np

    at = np.interp(np.asarray(steps, float), np.asarray(ws, float), np.asarray(wt, float))
    return ((at - wt[0]) / 3600.0).tolist()


X_LABELS = {"step": "step", "epoch": "epoch", "time": "hours since the first step"}


def next_of(choices: tuple, current):
    """The choice after `current`, round (the first when current is not one): what a key that cycles them sets."""
    return choices[(choices.index(current) + 1) % len(choices)] if current in choices else choices[0]
