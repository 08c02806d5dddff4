"""Training recovers without losing or misreporting anything: non-finite steps and roll-back, resume from the
newest good checkpoint (across devices), the log's torn tail and its fsync, the best checkpoint, a stopped run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

import vaetui.models.families as families
import vaetui.train.observe as observe
from vaetui.runs.events import EpochEvent, WarningEvent
from vaetui.models.protocol import LatentModel
from vaetui.runs.store import RunStore

from helpers import tiny_config, train

VAETUI = [sys.executable, "-m", "vaetui"]


def nan_at(monkeypatch, calls: set[int]):
    """Make the training loss non-finite at these training calls (1-based); validation is left alone."""
    real = families.vae_loss
    seen = {"n": 0}

    def flaky(logits, x, mu, logvar, beta, likelihood, free_bits=0.0):
        terms = real(logits, x, mu, logvar, beta, likelihood, free_bits)
        if not torch.is_grad_enabled():
            return terms
        seen["n"] += 1
        if seen["n"] in calls:
            terms.loss = terms.loss * float("nan")
        return terms

    monkeypatch.setattr(families, "vae_loss", flaky)


def step_of(path) -> int:
    return int(torch.load(path, weights_only=True)["step"])


def logged(run):
    """Every line of metrics.jsonl, parsed (a line that does not parse fails the test)."""
    return [json.loads(line) for line in run.metrics_path.read_text().splitlines()]


def test_nonfinite_last_step_of_an_epoch_still_ends_the_epoch(tmp_path, monkeypatch):
    """A NaN on the epoch's last step: the epoch still has its eval, epoch event and ckpt-epoch-N."""
    nan_at(monkeypatch, {8})  # 8 steps per epoch: call 8 is epoch 1's last step
    store = RunStore(tmp_path, include_demo=False)
    run, events = train(store, "e", tiny_config(epochs=2))
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert [(e.epoch, e.step) for e in epochs] == [(1, 8), (2, 16)]
    assert step_of(run.checkpoint_path("epoch-1")) == 8
    assert [e["epoch"] for e in logged(run) if e["type"] == "eval"] == [1, 2]


def test_nonfinite_last_step_of_the_run_still_saves_it(tmp_path, monkeypatch):
    """A NaN on the run's last step: ckpt-latest holds the last step, and the last epoch ended."""
    nan_at(monkeypatch, {16})
    store = RunStore(tmp_path, include_demo=False)
    run, events = train(store, "last", tiny_config(epochs=2, checkpoint_every=3))
    assert events[-1].kind == "finished" and events[-1].step == 16
    state, _, _ = run.load_checkpoint("latest", fallback=False)
    assert state["step"] == 16
    assert [e.epoch for e in events if isinstance(e, EpochEvent)] == [1, 2]


def test_rollback_truncates_the_log_and_keeps_its_counters(tmp_path, monkeypatch):
    """After a roll-back the log has each step once, and the checkpoint keeps the roll-back count."""
    nan_at(monkeypatch, {2, 6, 7, 8, 9, 10})
    store = RunStore(tmp_path, include_demo=False)
    run, events = train(store, "rb", tiny_config(max_steps=12, checkpoint_every=3))
    assert any("rolled back" in e.message for e in events if isinstance(e, WarningEvent))
    steps = [e["step"] for e in logged(run) if e["type"] == "step"]
    assert steps == sorted(set(steps)) and steps[-1] == 12
    state, _, _ = run.load_checkpoint("latest", fallback=False)
    assert state["rollbacks"] == 1 and state["nonfinite_total"] == 6
    back = [e.step for e in events if isinstance(e, WarningEvent) and e.cause == "rollback"]
    assert len(back) == 1 and run.history().breaks == back  # the curves' smoothing restarts where the roll-back went


def test_resume_takes_the_newest_good_checkpoint_by_step(tmp_path):
    """Killed inside the epoch end (epoch-1 written, latest not yet): resume from epoch-1, not the older latest."""
    store = RunStore(tmp_path, include_demo=False)
    a, _ = train(store, "a", tiny_config(max_steps=8, checkpoint_every=3))
    b, _ = train(store, "b", tiny_config(max_steps=6, checkpoint_every=3))
    shutil.copy(b.checkpoint_path("latest"), a.checkpoint_path("latest"))  # latest: step 6; epoch-1: step 8
    _, events = train(store, "a", tiny_config(max_steps=10, checkpoint_every=3), resume=True)
    assert events[0].kind == "started" and events[0].resumed and events[0].step == 8


@pytest.mark.parametrize("with_device", [True, False])
def test_resume_on_cpu_from_a_cuda_generator_state(tmp_path, with_device):
    """A checkpoint whose noise generator was CUDA's (16 bytes of seed and offset) resumes on the CPU."""
    store = RunStore(tmp_path, include_demo=False)
    run, _ = train(store, "g", tiny_config(max_steps=4))
    path = run.checkpoint_path("latest")
    state = torch.load(path, weights_only=True)
    state["noise_rng"] = torch.zeros(16, dtype=torch.uint8)
    if with_device:
        state["noise_device"] = "cuda"
    else:
        state.pop("noise_device", None)  # a checkpoint from before the device was recorded
    torch.save(state, path)
    copy = tmp_path / "copy.pt"
    shutil.copy(path, copy)
    _, events = train(store, "g", tiny_config(max_steps=8), resume=True)
    assert events[-1].kind == "finished" and events[-1].step == 8
    assert any("reseeded" in e.message for e in events if isinstance(e, WarningEvent))
    first = run.load_checkpoint("latest", fallback=False)[0]["model"]
    assert run.load_checkpoint("latest", fallback=False)[0]["noise_device"] == "cpu"
    # The reseeding is deterministic: the same checkpoint resumed again gives the same weights.
    for p in run.path.glob("ckpt-*.pt"):
        p.unlink()
    shutil.copy(copy, path)
    train(store, "g", tiny_config(max_steps=8), resume=True)
    again = run.load_checkpoint("latest", fallback=False)[0]["model"]
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_a_torn_last_line_does_not_swallow_the_next_event(tmp_path):
    """A kill mid-append leaves half a line: it is trimmed before the next append, nothing glues to it."""
    store = RunStore(tmp_path, include_demo=False)
    run, _ = train(store, "t", tiny_config(max_steps=4))
    with open(run.metrics_path, "ab") as fh:
        fh.write(b'{"type":"step","step":5,"time":1.0,"epo')
    _, events = train(store, "t", tiny_config(max_steps=8), resume=True)
    lines = logged(run)  # every line parses
    started = [e for e in lines if e["type"] == "started"]
    assert started[-1]["resumed"] and started[-1]["step"] == 4
    assert lines[-1]["type"] == "finished" and lines[-1]["step"] == 8


def test_the_log_is_fsynced_with_every_checkpoint(tmp_path, monkeypatch):
    """Each checkpoint write also makes metrics.jsonl durable."""
    synced: list[str] = []
    real = os.fsync

    def spy(fd):
        try:
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    store = RunStore(tmp_path, include_demo=False)
    run, events = train(store, "s", tiny_config(max_steps=6, checkpoint_every=3))
    checkpoints = [e for e in events if e.kind == "checkpoint"]
    assert checkpoints
    assert sum(p.endswith("/s/metrics.jsonl") for p in synced) >= len(checkpoints)


def test_best_checkpoint_compares_epochs_at_the_final_beta(tmp_path, monkeypatch):
    """During KL warm-up, epochs are compared at the run's final β, not at each epoch's warm-up β."""
    real_nll = observe.reconstruction_nll
    calls = {"n": 0}
    # (recon, KL) per image of the validation batches: epoch 1 then epoch 2 (two batches each).
    values = [(100.0, 50.0)] * 2 + [(110.0, 10.0)] * 2

    def fake_nll(logits, x, likelihood):  # validation's reconstruction term, per image
        recon = values[min(calls["n"], len(values) - 1)][0]
        calls["n"] += 1
        return real_nll(logits, x, likelihood) * 0 + recon

    def fake_kl(self, mu, logvar, z=None):  # and the KL of the same batch
        return mu.new_full((mu.shape[0],), values[min(calls["n"] - 1, len(values) - 1)][1])

    monkeypatch.setattr(observe, "reconstruction_nll", fake_nll)  # validation's; training's objective has its own
    monkeypatch.setattr(LatentModel, "kl", fake_kl)  # training never calls the model's kl
    store = RunStore(tmp_path, include_demo=False)
    # β warms up over 80 steps: 0.1 after epoch 1, 0.2 after epoch 2; the final β is 1.
    run, events = train(store, "best", tiny_config(epochs=2, beta=1.0, kl_warmup=80))
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert [round(e.valid_loss) for e in epochs] == [150, 120]
    assert step_of(run.checkpoint_path("best")) == 16


def test_a_stopped_run_is_stopped_everywhere(tmp_path):
    """The runs list, `vaetui runs` and the monitor's history all call a stopped run 'stopped'."""
    from vaetui.train.engine import Control, Trainer

    store = RunStore(tmp_path, include_demo=False)
    run = store.create(tiny_config(epochs=50), "halt")
    control = Control()
    for event in Trainer(run.config(), run).run(control):
        if event.kind == "step" and event.step == 3:
            control.stop()
    assert run.info().status == "stopped"
    assert run.history().status == "stopped"
    out = subprocess.run([*VAETUI, "runs", "--runs-dir", str(tmp_path)], capture_output=True, text=True)
    assert "stopped" in out.stdout and "interrupted" not in out.stdout
