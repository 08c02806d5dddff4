"""A study's worker: ask Optuna for a trial, train it as an ordinary run, report each epoch, tell the result.

Several workers (processes here, or on other machines sharing the study's journal) run
the same loop; a file lock beside the journal makes "is the budget spent? then ask" one
step, so K workers never start more than the study's trials. A stop (Ctrl-C, SIGTERM,
`s` in the TUI) checkpoints the trial in flight and leaves it RUNNING; `--resume` picks
such trials up again from their checkpoints, under their own numbers and run names.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vaetui.format import finite, is_finite
from vaetui.train.control import Control
from vaetui.errors import VaeError
from vaetui.studies.spec import METRICS, StudySpec, load_study, study_dir, trial_run_name


@dataclass(frozen=True)
class Outcome:
    number: int
    run: str
    state: str  # complete, pruned, failed, stopped
    value: float | None = None
    reason: str = ""


def trial_config(spec: StudySpec, params: dict, overrides: dict):
    """The run's settings: the preset, the space's shared settings, the command line's, then the trial's."""
    from vaetui.config.resolve import resolve

    return resolve(None, spec.space.settings, overrides, params)


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _gone(worker: str) -> bool:
    """Whether the worker that claimed a trial is no longer running (only this host's can be told; a PID now
    used by another program is gone too)."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not is_sweep_worker(int(pid))


def abandoned(study, runs_root: Path) -> list:
    """RUNNING trials whose worker is gone and whose run nobody trains: to be resumed."""
    from optuna.trial import TrialState

    from vaetui.runs.store import Run

    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        run = t.user_attrs.get("run")
        if not run or not _gone(t.user_attrs.get("worker", "")):
            continue
        if Run(Path(runs_root) / run).live_trainer() is None:
            out.append(t)
    return out


def claim(study, spec: StudySpec, runs_root: Path, overrides: dict, resume: bool):
    """The next trial for this worker, (trial, run, resuming), or None when the study's budget is spent."""
    import optuna

    from vaetui.disk.locks import file_lock
    from vaetui.runs.store import Run, RunStore

    with file_lock(study_dir(runs_root, spec.name) / "claim.lock"):
        if resume:
            for frozen in abandoned(study, runs_root):
                trial = optuna.Trial(study, frozen._trial_id)
                trial.set_user_attr("worker", _me())
                run = Run(Path(runs_root) / frozen.user_attrs["run"])
                if not run.config_path.exists():  # its worker died before making the run: make it now
                    run = RunStore(runs_root, include_demo=False).create(
                        trial_config(spec, frozen.params, overrides), run.name)
                return trial, run, run.has_checkpoint()
        budget = spec.trials if spec.sampler != "grid" else min(spec.trials, spec.space.size() or spec.trials)
        started = [t for t in study.get_trials(deepcopy=False) if t.state != optuna.trial.TrialState.WAITING]
        if len(started) >= budget:  # (a grid's enqueued trials wait until asked)
            return None
        trial = study.ask()
        params = {p.name: p.suggest(trial) for p in spec.space.params}
        name = trial_run_name(spec.name, trial.number)
        trial.set_user_attr("run", name)
        trial.set_user_attr("worker", _me())
        store = RunStore(runs_root, include_demo=False)
        try:
            run = store.create(trial_config(spec, params, overrides), name)
        except VaeError as exc:
            trial.set_user_attr("reason", str(exc))
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        return trial, run, False


def value_of(event, metric: str) -> float | None:
    """The metric an epoch reports (valid-loss from the epoch event, elbo from the validation eval)."""
    from vaetui.runs.events import EpochEvent, EvalEvent

    if metric == "valid-loss" and isinstance(event, EpochEvent):
        return event.valid_loss
    if metric == "elbo" and isinstance(event, EvalEvent) and event.split == "valid":
        return event.recon + event.kl  # −ELBO at β = 1, nats per image
    return None


def logged_value(run, metric: str) -> float | None:
    """The metric of the run's last epoch in its log (what that epoch reported while it trained), if finite."""
    epochs = run.history(steps="none").epochs
    if not epochs or metric not in ("valid-loss", "elbo"):
        return None
    last = epochs[-1]
    value = last.valid_loss if metric == "valid-loss" else last.valid_recon + last.valid_kl
    return finite(value)


def final_psnr(run) -> float:
    from vaetui.data import open_split
    from vaetui.runs.checkpoint import open_model
    from vaetui.metrics.likelihood import evaluate

    loaded = open_model(run, "best")
    split = open_split(loaded.config.data, "valid")
    return float(evaluate(loaded.model, loaded.config, split, loaded.config.train.valid_size, k=1)["psnr"])


def evaluate_trial(run, say: Callable[[str], None] = print) -> list[dict]:
    """A trial's evaluation once it has ended (a study made with --evaluate): vaetui eval's protocol (TRIAL_EVAL) on
    its newest checkpoint, sample quality from its prior and, where its code is continuous, from its ex-post GMM;
    each kept in the run's eval folder as `vaetui eval` keeps them. Returns the results."""
    from vaetui.data import open_split
    from vaetui.metrics.fidelity import sample_quality
    from vaetui.metrics.likelihood import evaluate
    from vaetui.pictures.latent_space import sampler_mixture
    from vaetui.runs.checkpoint import open_model
    from vaetui.studies.spec import TRIAL_EVAL as P

    loaded = open_model(run, "latest")
    model, config, path = loaded.model, loaded.config, loaded.path
    split = open_split(config.data, P["split"])
    continuous = getattr(model, "latent_kind", "gaussian") == "gaussian"
    say(f"{run.name}: evaluating {path.name} on {min(P['count'], len(split))} {P['split']} images")
    from vaetui.train.setup import resolve_precision

    precision = resolve_precision(config.train.precision, next(model.parameters()).device)  # the run's, as eval does
    base = evaluate(model, config, split, P["count"], P["k"], P["seed"], disentangle_n=P["disentangle_n"],
                    precision=precision)
    out = []
    for sampler in ("prior", "gmm") if continuous else ("prior",):
        mixture = sampler_mixture(run, model, config, path, sampler)
        result = dict(base) if sampler == "prior" else {k: v for k, v in base.items() if k != "disentanglement"}
        result["samples"] = sample_quality(model, config, split, P["samples_n"], P["seed"], mixture=mixture,
                                           sampler=sampler)
        protocol = {"run": run.name, "checkpoint": path.name, "split": P["split"],
                    "count": min(P["count"], len(split)), "k": P["k"], "seed": P["seed"],
                    "disentangle_n": min(P["disentangle_n"], len(split)) if continuous else 0,
                    **({"sampler": sampler} if sampler != "prior" else {})}
        result = {"protocol": protocol, **result}
        run.save_eval(result)
        out.append(result)
    return out


def _in_process(run, resuming: bool, control: Control):
    """The trial's events from a Trainer in this process, and how to stop it (with a checkpoint)."""
    from vaetui.train.engine import Trainer

    mine = Control()  # this trial's: a prune stops it, not the worker
    return Trainer(run.config(), run, resume=resuming).run(mine), mine.stop


def _under_torchrun(run, nproc: int, runs_root: Path):
    """The trial's events as its `vaetui train` under torchrun writes them (followed in its metrics.jsonl),
    and how to stop it: SIGTERM, which torchrun passes to every rank, and rank 0 checkpoints."""
    import signal

    from vaetui.train.process import follow, spawn_trainer

    proc = spawn_trainer(run, runs_root, nproc=nproc)
    return follow(run, proc), lambda: proc.poll() is None and proc.send_signal(signal.SIGTERM)


def _deliverer():
    """A trial's alerts: the study's terminal (bell, desktop, tmux) when the worker writes to one, and the person's
    command ($VAETUI_NOTIFY_CMD, from vaetui sweep --notify-cmd)."""
    import sys

    from vaetui.runs.alerts import Deliverer, notify_command

    def write(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    return Deliverer(notify_command(), write=write if sys.stderr.isatty() else None,
                     on_error=lambda m: print(f"vaetui: warning: {m}", file=sys.stderr))


def train_trial(study, spec: StudySpec, trial, run, resuming: bool, control: Control,
                say: Callable[[str], None], nproc: int = 1, runs_root: Path | None = None) -> Outcome:
    """Train one trial's run (here, or under torchrun with nproc ranks), reporting each epoch for pruning;
    tells Optuna how it ended (unless stopped)."""
    import optuna

    from vaetui.runs.alerts import alerting
    from vaetui.runs.events import FailedEvent, FinishedEvent

    say(f"trial {trial.number} ({run.name}): {'resumed' if resuming else 'started'}"
        + (f" under torchrun ×{nproc}" if nproc > 1 else "") + "  "
        + "  ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items()))
    events, stop = _under_torchrun(run, nproc, runs_root) if nproc > 1 else _in_process(run, resuming, control)
    deliver = _deliverer()
    events = alerting(events, run.name, deliver)
    value = last = None
    pruned_at = None
    stopping = False
    for event in events:
        last = event
        if control.stop_requested.is_set() and not stopping:
            stopping = True
            stop()
        v = value_of(event, spec.metric)
        if is_finite(v):
            value = v
            trial.report(v, event.epoch)
            final = event.epoch >= run.config().train.epochs  # nothing left to save by stopping it
            if pruned_at is None and not final and trial.should_prune():
                pruned_at = event.epoch
                stop()
    deliver.wait()  # a worker may exit after this trial: its alerts are delivered first
    if isinstance(last, FailedEvent):
        trial.set_user_attr("reason", last.error)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return Outcome(trial.number, run.name, "failed", None, last.error)
    if pruned_at is not None:
        reason = f"pruned after epoch {pruned_at}: {spec.metric} {value:.4g} behind the median of earlier trials"
        trial.set_user_attr("reason", reason)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return Outcome(trial.number, run.name, "pruned", value, reason)
    if isinstance(last, FinishedEvent) and last.reason == "stopped":
        return Outcome(trial.number, run.name, "stopped", value, "stopped with a checkpoint: --resume continues it")
    if value is None and isinstance(last, FinishedEvent):
        value = logged_value(run, spec.metric)  # it had finished before its worker died, untold: its log says
    if spec.metric == "psnr":
        value = final_psnr(run)
    if not is_finite(value):
        reason = f"no finite {spec.metric} to report"
        trial.set_user_attr("reason", reason)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return Outcome(trial.number, run.name, "failed", None, reason)
    study.tell(trial, value)
    if spec.evaluate:
        try:
            evaluate_trial(run, say)
        except VaeError as exc:  # the trial stands; its numbers are missing, and why is said
            say(f"{run.name}: not evaluated: {exc}")
    return Outcome(trial.number, run.name, "complete", value)


def work(runs_root: Path, spec: StudySpec, overrides: dict, resume: bool, control: Control,
         say: Callable[[str], None] = print, nproc: int = 1) -> list[Outcome]:
    """One worker's loop: claim, train, tell, until the budget is spent or a stop is asked."""
    study = load_study(runs_root, spec)
    done: list[Outcome] = []
    while not control.stop_requested.is_set():
        got = claim(study, spec, runs_root, overrides, resume)
        if got is None:
            break
        outcome = train_trial(study, spec, *got, control, say, nproc, runs_root)
        value = "" if outcome.value is None else f"  {spec.metric} {outcome.value:.4g}"
        say(f"trial {outcome.number} ({outcome.run}): {outcome.state}{value}"
            + (f"  ({outcome.reason})" if outcome.reason and outcome.state != "complete" else ""))
        done.append(outcome)
    return done


def best_line(study, metric: str) -> str:
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not complete:
        return "no finished trial yet"
    pick = min if METRICS[metric] == "minimize" else max
    best = pick(complete, key=lambda t: t.value)
    params = "  ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
    return f"best: trial {best.number} ({best.user_attrs.get('run', '?')}) {metric} {best.value:.4g}  {params}"


def stop_workers(study) -> tuple[int, int]:
    """Ask every worker of the study's running trials to stop (SIGTERM: each trial checkpoints, the study can be
    resumed). Returns (workers signalled, workers on other hosts, which only they can stop)."""
    import signal

    from optuna.trial import TrialState

    signalled, elsewhere = set(), set()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        host, _, pid = t.user_attrs.get("worker", "").rpartition(":")
        if host != socket.gethostname() or not pid.isdigit():
            elsewhere.add(t.user_attrs.get("worker", "?"))
            continue
        if not is_sweep_worker(int(pid)):  # long gone, and its PID now someone else's
            continue
        try:
            os.kill(int(pid), signal.SIGTERM)
            signalled.add(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return len(signalled), len(elsewhere)


def is_sweep_worker(pid: int) -> bool:
    """Whether the process with this PID here is a `vaetui sweep` worker (a PID in the journal may be reused)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(a == b"vaetui" or a.endswith(b"/vaetui") or a == b"vaetui.cli" for a in argv) and b"sweep" in argv
