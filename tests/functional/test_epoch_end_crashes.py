"""A trainer killed at any point of an epoch's end resumes with ckpt-best and ckpt-latest agreeing with its log.

The kill is real: a forked child trains and calls os._exit at the chosen point (no finally runs, no lock is
released, nothing is flushed beyond what was written), and this process resumes the run.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil

import pytest

import vaetui.train.engine as engine
from vaetui.runs import checkpoint
from vaetui.runs.store import Run, RunStore

from helpers import tiny_config, train

STEPS_PER_EPOCH = 8  # tiny_config: 128 images, batch 16


@pytest.fixture
def falling_validation(monkeypatch):
    """Validation loss 100 - step: every epoch is the best so far, so each epoch end writes ckpt-best."""
    real = engine.Trainer.evaluate

    def evaluate(self, count=None):
        return {**real(self, count), "loss": 100.0 - self.step}

    monkeypatch.setattr(engine.Trainer, "evaluate", evaluate)


def _train_and_die(root: str, point: str) -> None:
    """In the child: train a 2-epoch run and die at `point` of epoch 2's end (step 16)."""
    real_append, real_save = Run.append_event, Run.save_checkpoint

    def append(self, event):
        real_append(self, event)
        if point == "epoch event" and event.get("type") == "epoch" and event.get("epoch") == 2:
            os._exit(0)

    def save(self, payload, label):
        path = real_save(self, payload, label)
        if point == f"after {label}" and checkpoint.peek(path)["step"] == 2 * STEPS_PER_EPOCH:
            os._exit(0)
        return path

    Run.append_event, Run.save_checkpoint = append, save
    train(RunStore(root, include_demo=False), "r", tiny_config(epochs=2, checkpoint_every=100))
    os._exit(3)  # the point was never reached


def _kill_at(root, point: str) -> None:
    child = multiprocessing.get_context("fork").Process(target=_train_and_die, args=(str(root), point))
    child.start()
    child.join(120)
    assert child.exitcode == 0, f"the child did not die at {point!r} (exit {child.exitcode})"


def _agrees_with_its_log(run: Run) -> None:
    epochs = [json.loads(line) for line in run.metrics_path.read_text().splitlines()
              if '"type":"epoch"' in line]
    assert [e["epoch"] for e in epochs] == [1, 2]  # each epoch once
    best = min(epochs, key=lambda e: e["valid_loss"])
    assert best["best"]
    held = checkpoint.peek(run.checkpoint_path("best"))
    assert (held["step"], held["best_valid"]) == (best["step"], best["valid_loss"])
    assert checkpoint.peek(run.checkpoint_path("latest"))["step"] == 2 * STEPS_PER_EPOCH
    assert checkpoint.peek(run.checkpoint_path("epoch-2"))["step"] == 2 * STEPS_PER_EPOCH
    state, path, _ = run.load_checkpoint("best", fallback=False)  # what `vaetui eval` scores by default
    assert state["step"] == best["step"] and path.name == "ckpt-best.pt"


@pytest.mark.parametrize("point", ["epoch event", "after best", "after epoch-2", "after latest"])
def test_a_kill_at_any_point_of_the_epoch_end_resumes_with_best_and_latest_as_the_log_says(
        tmp_path, falling_validation, point):
    _kill_at(tmp_path, point)
    store = RunStore(tmp_path, include_demo=False)
    run, events = train(store, "r", tiny_config(epochs=2, checkpoint_every=100), resume=True)
    assert events[-1].kind == "finished" and events[-1].reason == "completed"
    _agrees_with_its_log(run)


def test_a_run_left_by_the_old_order_is_repaired_on_resume(tmp_path, falling_validation):
    """Older vaetui wrote ckpt-epoch-N, then ckpt-best, then ckpt-latest: killed after the first, ckpt-best held
    epoch N-1 while the log said N. The resume copies the right file back and says so."""
    store = RunStore(tmp_path, include_demo=False)
    run, _ = train(store, "r", tiny_config(epochs=2, checkpoint_every=100))
    for label in ("best", "latest"):  # both as epoch 1 left them
        shutil.copy(run.checkpoint_path("epoch-1"), run.checkpoint_path(label))
    _, events = train(store, "r", tiny_config(epochs=2, checkpoint_every=100), resume=True)
    assert [e.message for e in events if e.kind == "warning"] == [
        "repaired ckpt-latest.pt (it held step 8): it now holds step 16, as ckpt-epoch-2.pt does",
        "repaired ckpt-best.pt (it held step 8, not the log's best epoch, which ended at step 16): it now holds "
        "step 16, as ckpt-latest.pt does"]
    _agrees_with_its_log(run)
    shutil.copy(run.checkpoint_path("epoch-1"), run.checkpoint_path("latest"))
    run.checkpoint_path("best").unlink()  # and with no ckpt-best at all
    _, events = train(store, "r", tiny_config(epochs=2, checkpoint_every=100), resume=True)
    assert [e.message for e in events if e.kind == "warning"][1] == (
        "repaired ckpt-best.pt (missing or damaged, not the log's best epoch, which ended at step 16): it now "
        "holds step 16, as ckpt-latest.pt does")
    _agrees_with_its_log(run)


def test_the_best_is_the_earliest_checkpoint_that_carries_the_best_loss(tmp_path, monkeypatch):
    """Later checkpoints carry the same best validation loss with other weights: the repair must copy the one
    from the epoch end where it was reached, and copy nothing when that one was pruned."""
    real = engine.Trainer.evaluate
    losses = {8: 50.0, 16: 60.0, 24: 70.0}  # epoch 1 stays the best
    monkeypatch.setattr(engine.Trainer, "evaluate",
                        lambda self, count=None: {**real(self, count), "loss": losses[self.step]})
    store = RunStore(tmp_path, include_demo=False)
    run, _ = train(store, "b", tiny_config(epochs=3, checkpoint_every=100, keep_last=5))
    assert checkpoint.peek(run.checkpoint_path("best"))["step"] == 8
    shutil.copy(run.checkpoint_path("epoch-2"), run.checkpoint_path("best"))  # wrong weights, the same best_valid
    run.checkpoint_path("best").unlink()
    _, events = train(store, "b", tiny_config(epochs=3, checkpoint_every=100, keep_last=5), resume=True)
    assert checkpoint.peek(run.checkpoint_path("best"))["step"] == 8  # epoch 1's, not epoch 2's or 3's
    assert any("as ckpt-epoch-1.pt does" in e.message for e in events if e.kind == "warning")
    run.checkpoint_path("best").unlink()
    run.checkpoint_path("epoch-1").unlink()  # pruned: no checkpoint holds epoch 1's weights any more
    _, events = train(store, "b", tiny_config(epochs=3, checkpoint_every=100, keep_last=5), resume=True)
    assert not run.checkpoint_path("best").exists()  # nothing copied rather than the wrong weights
    assert not [e for e in events if e.kind == "warning"]


@pytest.mark.parametrize("damage", ["zero bytes", "truncated", "empty dict"])
def test_a_damaged_latest_is_reported_on_resume_and_replaced(tmp_path, damage):
    """A truncated, zero-byte or empty-dict ckpt-latest.pt ranked last and was skipped without a word."""
    import torch

    store = RunStore(tmp_path, include_demo=False)
    run, _ = train(store, "d", tiny_config(max_steps=10, checkpoint_every=3))
    latest = run.checkpoint_path("latest")
    if damage == "zero bytes":
        latest.write_bytes(b"")
    elif damage == "truncated":
        latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])
    else:
        torch.save({}, latest)
    _, events = train(store, "d", tiny_config(max_steps=12, checkpoint_every=3), resume=True)
    skipped = [e.message for e in events if e.kind == "warning" and "skipped a damaged checkpoint" in e.message]
    assert skipped and "ckpt-latest.pt" in skipped[0]
    assert checkpoint.peek(latest)["step"] == 12


def _train_and_die_after_step(root: str, name: str, step: int, config) -> None:
    """In the child: train, and die right after the step event of `step` is logged."""
    real_append = Run.append_event

    def append(self, event):
        real_append(self, event)
        if event.get("type") == "step" and event.get("step") == step:
            os._exit(0)

    Run.append_event = append
    train(RunStore(root, include_demo=False), name, config)
    os._exit(3)


def _kill_after_step(root, name: str, step: int, config) -> None:
    child = multiprocessing.get_context("fork").Process(target=_train_and_die_after_step,
                                                         args=(str(root), name, step, config))
    child.start()
    child.join(120)
    assert child.exitcode == 0, f"the child did not die after step {step} (exit {child.exitcode})"


def _logged(run: Run, kind: str) -> list[dict]:
    return [json.loads(line) for line in run.metrics_path.read_text().splitlines() if f'"type":"{kind}"' in line]


def test_killed_between_checkpoints_the_resumed_log_has_each_step_once(tmp_path):
    """Steps 4 and 5 were logged after the checkpoint at 3, then the trainer was killed: the resume trains them
    again and its log holds each step once (the first run's 4 and 5 are dropped, not kept beside the new ones)."""
    config = tiny_config(epochs=2, checkpoint_every=3)
    _kill_after_step(tmp_path, "k", 5, config)
    run = Run(tmp_path / "k")
    assert [e["step"] for e in _logged(run, "step")] == [1, 2, 3, 4, 5]
    train(RunStore(tmp_path, include_demo=False), "k", config, resume=True)
    assert [e["step"] for e in _logged(run, "step")] == list(range(1, 17))


@pytest.mark.parametrize("log_every", [1, 2])
def test_an_epoch_s_train_loss_is_the_same_after_a_mid_epoch_kill(tmp_path, log_every):
    """The epoch's running sums are training state: a resume from a checkpoint inside epoch 1 must report epoch 1's
    train loss over all its steps, as the run that was never stopped does (and with log_every 2, the steps since
    the last step event are in the checkpoint's sums too)."""
    config = tiny_config(epochs=2, checkpoint_every=3, log_every=log_every)
    train(RunStore(tmp_path, include_demo=False), "straight", config)
    _kill_after_step(tmp_path, "killed", 4, config)
    train(RunStore(tmp_path, include_demo=False), "killed", config, resume=True)
    straight = [(e["epoch"], e["train_loss"]) for e in _logged(Run(tmp_path / "straight"), "epoch")]
    resumed = [(e["epoch"], e["train_loss"]) for e in _logged(Run(tmp_path / "killed"), "epoch")]
    assert [epoch for epoch, _ in resumed] == [epoch for epoch, _ in straight] == [1, 2]
    # (pytest.approx does not reach into tuples inside a list: it compared them exactly, which held by luck of the
    # float rounding of the step sums folded at the checkpoint; the losses themselves, to 1e-6 as meant)
    assert [loss for _, loss in resumed] == pytest.approx([loss for _, loss in straight], rel=1e-6)
