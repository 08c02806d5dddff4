import json
import math

import pytest
import torch

import vaetui.models.families as families
import vaetui.train.engine as engine
from vaetui.train.engine import Control, Trainer
from vaetui.runs.events import EpochEvent, FailedEvent, FinishedEvent, ImagesEvent, StepEvent, WarningEvent
from vaetui.runs.store import RunStore

from helpers import kinds, tiny_config, train


def params(run, label="latest"):
    state, _, _ = run.load_checkpoint(label, fallback=False)
    return state["model"]


def test_events_and_files_of_a_tiny_run(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    run, events = train(store, "a")
    k = kinds(events)
    assert k[0] == "started" and k[-1] == "finished"
    assert isinstance(events[-1], FinishedEvent) and events[-1].reason == "completed"
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert [e.epoch for e in epochs] == [1, 2]
    assert all(math.isfinite(e.train_loss) and math.isfinite(e.valid_loss) for e in epochs)
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert steps[-1].step == 16 and steps[0].steps_per_epoch == 8
    assert steps[-1].loss < steps[0].loss  # it learns something in 16 steps
    images = [e for e in events if isinstance(e, ImagesEvent)]
    assert images and images[0].reconstructions.shape == (8, 3, 32, 32)
    assert (run.path / images[0].path).exists()
    for f in ("config.json", "metrics.jsonl", "ckpt-latest.pt", "ckpt-best.pt", "ckpt-epoch-2.pt"):
        assert (run.path / f).exists(), f
    logged = [json.loads(line)["type"] for line in run.metrics_path.read_text().splitlines()]
    assert logged == k
    assert not run.lock_path.exists()
    info = run.info()
    assert info.status == "finished" and info.epochs_done == 2 and info.best_valid == min(e.valid_loss for e in epochs)


def test_keep_last_prunes_epoch_checkpoints(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    run, _ = train(store, "k", tiny_config(epochs=4, dataset_size=32, keep_last=2))
    assert [p.name for p in run.epoch_checkpoints()] == ["ckpt-epoch-3.pt", "ckpt-epoch-4.pt"]


@pytest.mark.parametrize("split_at", [5, 8])  # inside an epoch, and at its boundary
def test_resume_gives_identical_parameters(tmp_path, split_at):
    store = RunStore(tmp_path, include_demo=False)
    straight, _ = train(store, "straight", tiny_config(max_steps=12))
    half, _ = train(store, "half", tiny_config(max_steps=split_at))
    half, events = train(store, "half", tiny_config(max_steps=12), resume=True)
    assert events[0].resumed and events[0].step == split_at
    a, b = params(straight), params(half)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # (That the log then has each step once is tested where something is left to undo: a trainer killed between
    # checkpoints, tests/test_crash_points.py. Here the first half ends with a checkpoint at its last step.)


def test_pause_resume_stop_and_checkpoint_requests(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    run = store.create(tiny_config(epochs=50, checkpoint_every=1000), "ctl")
    control = Control()
    seen = []
    for event in Trainer(run.config(), run).run(control):
        seen.append(event)
        if isinstance(event, StepEvent) and event.step == 3:
            control.pause()
            control.checkpoint()
            # resume from "another thread" once the pause is acknowledged
        if event.kind == "state" and event.state == "paused":
            control.resume()
        if isinstance(event, StepEvent) and event.step == 6:
            control.stop()
    k = kinds(seen)
    assert "state" in k
    assert seen[-1].kind == "finished" and seen[-1].reason == "stopped" and seen[-1].step == 6
    labels = [(e.label, e.step) for e in seen if e.kind == "checkpoint"]
    assert ("latest", 3) in labels and ("latest", 6) in labels
    assert run.info().status == "stopped"


def test_nonfinite_losses_are_skipped_then_rolled_back(tmp_path, monkeypatch):
    real = families.vae_loss
    calls = {"n": 0}

    def flaky(logits, x, mu, logvar, beta, likelihood, free_bits=0.0):
        terms = real(logits, x, mu, logvar, beta, likelihood, free_bits)
        if not torch.is_grad_enabled():  # validation: leave it alone
            return terms
        calls["n"] += 1
        if calls["n"] == 2 or 6 <= calls["n"] <= 10:
            terms.loss = terms.loss * float("nan")
        return terms

    monkeypatch.setattr(families, "vae_loss", flaky)
    store = RunStore(tmp_path, include_demo=False)
    run, events = train(store, "nan", tiny_config(max_steps=10, checkpoint_every=3))
    warnings = [e.message for e in events if isinstance(e, WarningEvent)]
    assert any("non-finite loss at step 1" in w for w in warnings)
    rolled = [w for w in warnings if "rolled back" in w]
    assert len(rolled) == 1 and "ckpt-latest.pt" in rolled[0]
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert steps[-1].lr == pytest.approx(0.5 * run.config().train.lr)
    assert steps[-1].nonfinite == 6
    assert events[-1].kind == "finished"
    state, _, _ = run.load_checkpoint("latest", fallback=False)
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


def test_checkpoint_with_nonfinite_weights_is_never_written(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    run = store.create(tiny_config(), "w")
    trainer = Trainer(run.config(), run)
    trainer._setup_local()
    trainer._build_model()
    with torch.no_grad():
        trainer.model.fc_mu.weight[0, 0] = float("inf")
    events = list(trainer._save("latest"))
    assert isinstance(events[0], WarningEvent) and "not finite" in events[0].message
    assert not run.checkpoint_path("latest").exists()


def test_training_failure_is_an_event_not_a_crash(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("simulated out of memory")

    monkeypatch.setattr(families, "vae_loss", boom)
    store = RunStore(tmp_path, include_demo=False)
    run, events = train(store, "f")
    assert isinstance(events[-1], FailedEvent) and "simulated out of memory" in events[-1].error
    assert run.info().status == "failed"
    assert not run.lock_path.exists()


def test_bf16_autocast_on_cpu_trains(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    _, events = train(store, "bf16", tiny_config(max_steps=4, precision="bf16"))
    assert events[-1].kind == "finished"
    assert all(math.isfinite(e.loss) for e in events if isinstance(e, StepEvent))


def test_fp16_on_cpu_is_a_clear_error(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    _, events = train(store, "fp16", tiny_config(max_steps=2, precision="fp16"))
    assert isinstance(events[-1], FailedEvent) and "bf16" in events[-1].error


def test_images_per_s_counts_training_steps_not_validation_or_checkpoints(tmp_path, monkeypatch):
    """A step's images/s is training throughput: a long validation and its checkpoints at an epoch's end do not
    drag the next step's number down (a fake clock: each training step takes 0.1 s, each validation 50 s)."""
    clock = {"now": 0.0}
    monkeypatch.setattr(engine.time, "perf_counter", lambda: clock["now"])
    real_loss, real_evaluate = families.vae_loss, engine.Trainer.evaluate

    def step_loss(*args, **kwargs):
        clock["now"] += 0.1
        return real_loss(*args, **kwargs)

    def slow_evaluate(self, *args, **kwargs):
        clock["now"] += 50.0
        return real_evaluate(self, *args, **kwargs)

    monkeypatch.setattr(families, "vae_loss", step_loss)
    monkeypatch.setattr(engine.Trainer, "evaluate", slow_evaluate)
    store = RunStore(tmp_path, include_demo=False)
    _, events = train(store, "rate", tiny_config(epochs=3, log_every=1))
    rates = [e.images_per_s for e in events if isinstance(e, StepEvent)]
    assert len(rates) == 24 and all(abs(r - 16 / 0.1) < 1e-6 for r in rates), rates
    last = [e for e in events if isinstance(e, StepEvent)][-1]
    assert last.elapsed >= 2 * 50.0  # elapsed (and the ETA) still count the validations before it


def test_more_threads_than_cores_are_capped_with_a_warning(tmp_path):
    """--threads 1024 on 2 cores trained at 1 image/s: it is capped to the cores, and the log says so."""
    import torch

    from vaetui.train.setup import usable_cores

    before = torch.get_num_threads()
    try:
        store = RunStore(tmp_path, include_demo=False)
        _, events = train(store, "t", tiny_config(max_steps=1, threads=1024))
    finally:
        torch.set_num_threads(before)
    started = next(e for e in events if e.kind == "started")
    assert started.threads == usable_cores() < 1024
    assert any(e.kind == "warning" and "threads 1024 is more than" in e.message for e in events)
