"""Faster numerics keep the same training: bf16 autocast within 1% of fp32 eager over 200 steps (tiny preset)."""

from __future__ import annotations

import statistics

import pytest
import torch

from vaetui.train import setup
from vaetui import runtime
from vaetui.runs.events import StartedEvent, StepEvent
from vaetui.runs.store import RunStore

from helpers import tiny_config, train


def losses(store, name, **settings):
    settings = {"max_steps": 200, "epochs": 100, "checkpoint_every": 10**6, "image_every": 10**6, "log_every": 10,
                **settings}
    cfg = tiny_config(**settings)
    _, events = train(store, name, cfg)
    started = next(e for e in events if isinstance(e, StartedEvent))
    return started, [e.loss for e in events if isinstance(e, StepEvent)]


def test_bf16_autocast_trains_like_fp32(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    fp32_started, fp32 = losses(store, "fp32", precision="fp32")
    bf16_started, bf16 = losses(store, "bf16", precision="bf16")
    assert (fp32_started.precision, bf16_started.precision) == ("fp32", "bf16")
    assert fp32[-1] < 0.9 * fp32[0]  # it learned: the comparison is between trained models
    late_fp32, late_bf16 = statistics.mean(fp32[-5:]), statistics.mean(bf16[-5:])  # the last 50 steps
    assert abs(late_bf16 - late_fp32) <= 0.01 * late_fp32, (late_fp32, late_bf16)


def test_auto_precision_is_bf16_only_where_it_is_native(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    started, _ = losses(store, "auto", precision="auto", max_steps=2)
    native = setup.native_bf16(torch.device("cpu"))
    assert started.precision == ("bf16" if native else "fp32")
    assert setup.resolve_precision("fp32", torch.device("cpu")) == "fp32"


@pytest.mark.parametrize("flags, native", [("fpu sse avx512f", False), ("fpu amx_bf16 amx_tile", True),
                                           ("fpu avx512_bf16", True)])
def test_native_bf16_reads_the_cpu_flags(monkeypatch, tmp_path, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor : 0\nflags\t\t: {flags}\n")
    real_open = open

    def fake_open(path, *a, **k):
        return real_open(cpuinfo if path == "/proc/cpuinfo" else path, *a, **k)

    monkeypatch.setattr("builtins.open", fake_open)
    runtime.cpu_flags.cache_clear()
    try:
        assert setup.native_bf16(torch.device("cpu")) is native
    finally:
        runtime.cpu_flags.cache_clear()  # this machine's own flags again for the tests that follow
