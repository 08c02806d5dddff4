"""The training loop as a generator of events. It knows nothing about who listens.

    trainer = Trainer(config, run)
    for event in trainer.run(control):
        ...

Every event is appended to the run's metrics.jsonl before it is yielded. `control`
lets another thread pause, resume, stop and ask for a checkpoint between steps.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from vaetui.train import setup
from vaetui.train import distributed
from vaetui.train import observe
from vaetui.train.setup import epoch_order, resolve_device  # noqa: F401 (part of the engine's interface)
from vaetui.config.settings import RunConfig
from vaetui.train.control import Control, ControlWatcher
from vaetui.errors import VaeError
from vaetui.runs.events import (
    EpochEvent, EvalEvent, Event, FailedEvent, FinishedEvent, ImagesEvent, StartedEvent,
    StateEvent, StepEvent, WarningEvent,
)
from vaetui.models.families import family_of
from vaetui.models.losses import bits_per_dim, kl_per_dim, nats_per_dim, schedule_beta
from vaetui.models.protocol import LatentModel
from vaetui.models.vae import parameter_count
from vaetui.runs.store import Run
from vaetui.train.state import MAX_NONFINITE_IN_A_ROW, TrainerState


@dataclass
class _Window:
    """Loss sums since the last step event, kept on the device (read back once per log interval)."""

    sums: torch.Tensor
    images: int = 0
    t0: float = field(default_factory=lambda: time.perf_counter())

    def reset(self) -> None:
        self.sums.zero_()
        self.images = 0
        self.t0 = time.perf_counter()


class Trainer(setup.TrainerSetup, TrainerState):
    """Trains one run; `run(control)` yields events until the run completes, stops or fails."""

    def __init__(self, config: RunConfig, run: Run, resume: bool = False):
        self.config = config.validate()
        self.family = family_of(self.config)  # its objective (vaetui.models.families)
        self.forward_options = self.family.forward_options(self.config)  # what it needs of each forward pass
        self.store = run
        self.resume = resume
        self.model: LatentModel | None = None
        self.world = distributed.current()  # under torchrun: rank 0 alone writes the run
        self.step = 0
        self.collapse_warned = False  # the posterior-collapse alert is said once per training session

    # ------------------------------------------------------------------ public
    def run(self, control: Control | None = None) -> Iterator[Event]:
        """Train, yielding (and logging) every event; never raises for training errors."""
        control = control or Control()
        try:
            warning = self.store.acquire_lock() if self.world.main else None
        except VaeError as exc:
            yield FailedEvent(step=0, error=str(exc))
            return
        # Intents from other processes (the TUI, `vaetui monitor`, another host): the run's control file.
        watcher = ControlWatcher(self.store.path, control).start() if self.world.main else None
        try:
            if self.world.main and self.resume and self.store.config() != self.config:
                # Under the lock: a resume that lost the race for it must not rewrite the winner's settings.
                self.store.write_config(self.config)
            if warning:
                yield self._log(WarningEvent(step=0, message=warning))
            for event in self._train(control):
                yield self._log(event)
        except VaeError as exc:
            yield self._log(FailedEvent(step=self.step, error=str(exc)))
        except Exception as exc:  # a bug or an OOM: keep the trace in the log, fail cleanly
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            yield self._log(FailedEvent(step=self.step, error=detail))
        finally:
            if watcher is not None:
                watcher.stop()
            if self.world.main:
                self.store.release_lock()

    # ------------------------------------------------------------------ the loop
    def _train(self, control: Control) -> Iterator[Event]:
        yield from self._prepare()
        budget = self.config.train.time_budget
        while self.step < self.total_steps:
            if budget is not None and distributed.any_rank(self.world, self.device, time.perf_counter() - self.t_start >= budget):
                yield from self._out_of_time()
                return
            yield from self._between_steps(control)
            if distributed.any_rank(self.world, self.device, control.stop_requested.is_set()):
                yield from self._save("latest")
                yield FinishedEvent(step=self.step, epoch=self.step // self.steps_per_epoch, reason="stopped")
                return
            rolled_back = yield from self._train_step()
            if not rolled_back:
                yield from self._cadences()
        yield from self._finish()

    def _prepare(self) -> Iterator[Event]:
        """Build everything, restore the newest checkpoint when resuming, say where training starts."""
        self._setup_everywhere()
        resumed, repaired = False, []
        if self.resume:
            state, path, warnings = self._load_resume_state()
            for w in warnings:
                yield WarningEvent(step=0, message=f"skipped a damaged checkpoint: {w}")
            if state is not None:
                note = self._restore(state)
                if note:
                    yield WarningEvent(step=self.step, message=note)
                if self.world.main:
                    self.store.truncate_events_after(self.step)
                    repaired = self._repair_checkpoints(self.store.path / path)
                resumed = True
        tc = self.config.train
        yield StartedEvent(
            step=self.step, run=self.store.name, device=str(self.device), parameters=parameter_count(self.model),
            total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch, resumed=resumed,
            threads=torch.get_num_threads(), precision=self.precision, compiled=tc.compile,
            world_size=self.world.size, epochs=tc.epochs,
        )
        for note in repaired + [n for n in (self.thread_note, self.kernel_note) if n]:
            yield WarningEvent(step=self.step, message=note)
        for split in (self.train_split, self.valid_split):
            skipped = getattr(split, "skipped", None)
            if skipped:
                yield WarningEvent(step=self.step, message=f"skipped {len(skipped)} unreadable images, "
                                   f"see {split.cache.log}")
        self.model.train()
        # KL per latent dimension, logged with each step event (the monitor's heat map): Gaussian codes only
        self.kl_dims = self.config.model.latent if getattr(self.model, "latent_kind", "gaussian") == "gaussian" else 0
        self.window = _Window(torch.zeros(3 + len(self.family.terms) + self.kl_dims, device=self.device))
        self.t_start = time.perf_counter()
        self.in_a_row = 0
        self.order, self.order_epoch = None, -1

    def _between_steps(self, control: Control) -> Iterator[Event]:
        """The controller's requests: a checkpoint now, a pause (checkpoints still served while paused)."""
        if control.checkpoint_requested.is_set():
            control.checkpoint_requested.clear()
            yield from self._save("latest")
        if control.paused.is_set() and not control.stop_requested.is_set():
            yield StateEvent(step=self.step, state="paused")
            while control.paused.is_set() and not control.stop_requested.is_set():
                control.wait(0.2)
                if control.checkpoint_requested.is_set():
                    control.checkpoint_requested.clear()
                    yield from self._save("latest")
            if not control.stop_requested.is_set():
                yield StateEvent(step=self.step, state="running")
            self.window.reset()

    def _next_batch(self) -> torch.Tensor:
        tc, spe = self.config.train, self.steps_per_epoch
        epoch, b = divmod(self.step, spe)
        if self.order_epoch != epoch:
            self.order, self.order_epoch = setup.epoch_order(len(self.train_split), tc.seed, epoch), epoch
        batch = self.order[b * tc.batch_size : (b + 1) * tc.batch_size]
        if self.world.distributed:  # this rank's share of the global batch
            lb = self.local_batch
            batch = batch[self.world.rank * lb : (self.world.rank + 1) * lb]
        return self.feeder(np.sort(batch.numpy()))  # sorted reads are faster; the batch is a set

    def _train_step(self) -> Iterator[Event]:
        """One optimiser step, or a skipped one (non-finite loss); returns True after a roll-back."""
        tc = self.config.train
        x = self._next_batch()
        beta = schedule_beta(self.step, tc, tc.epochs * self.steps_per_epoch)
        main, aux = self.family.phases(self.config, self._progress())
        aux = aux and self.aux_optimizer is not None
        if main:
            with self._autocast():
                out = self.forward(x, self.noise, **self.forward_options)
        else:  # the network is frozen (VQ-VAE's second stage): its codes, as it would give them when evaluated
            self.model.eval()
            with torch.no_grad(), self._autocast():
                out = self.model(x, self.noise, **self.forward_options)
            self.model.train()
        # the aux part's loss first: it may tell the objective what it measured (VQ-VAE: the prior's NLL)
        aux_loss = self.model.aux_loss(out, self.noise) if aux else None
        terms = self.family.objective(out, x, beta, self.config, len(self.train_split))
        self.optimizer.zero_grad(set_to_none=True)
        if distributed.any_rank(self.world, self.device, not bool(torch.isfinite(terms.loss if main else aux_loss))):
            self.nonfinite_total += 1
            self.in_a_row += 1
            yield WarningEvent(step=self.step, cause="nonfinite", message=f"non-finite loss at step {self.step}: step skipped "
                               f"({self.nonfinite_total} so far)")
            if self.in_a_row >= MAX_NONFINITE_IN_A_ROW:
                self.in_a_row = 0
                yield from self._rollback()
                return True
            self.step += 1  # skip this batch (it would fail again); the step's cadences still run
            return False
        self.in_a_row = 0
        if main:
            self.scaler.scale(terms.loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        if aux_loss is not None:  # FactorVAE's critic, VQ-VAE's prior: from this step's codes, with their own Adam
            self.aux_optimizer.zero_grad(set_to_none=True)
            aux_loss.backward()
            self.aux_optimizer.step()
        sums = torch.stack([terms.loss.detach() * terms.count, terms.recon_sum, terms.kl_sum,
                            *(terms.terms[name] for name in self.family.terms)])
        if self.kl_dims:
            sums = torch.cat([sums, self._kl_dims(out)])
        self.window.sums += sums
        self.window.images += terms.count
        self.step += 1
        return False

    def _kl_dims(self, out) -> torch.Tensor:
        """This batch's KL summed over images, per dimension of the code, to N(0, 1): the prior of most families,
        and for the others (VampPrior, a hierarchy's top level) still which dimensions carry information."""
        mu, logvar = out.mu, out.logvar
        if logvar is None or mu.dim() != 2 or mu.shape[1] != self.kl_dims:  # a user's model of another shape
            return torch.zeros(self.kl_dims, device=self.device)
        with torch.no_grad():
            return kl_per_dim(mu.float(), logvar.float()).sum(0)

    def _cadences(self) -> Iterator[Event]:
        """Everything due at this step: the step event, pictures, the epoch's end, a periodic checkpoint."""
        tc, spe = self.config.train, self.steps_per_epoch
        epoch_end = self.step % spe == 0
        if self.step % tc.log_every == 0 or epoch_end or self.step == self.total_steps:
            yield from self._step_event()
        started = time.perf_counter()
        if (self.step % tc.image_every == 0 or self.step == 1) and self.world.main:
            yield self._images()
        if epoch_end:
            yield from self._end_epoch(self.step // spe)
        elif self.step % tc.checkpoint_every == 0:
            yield from self._save("latest")
        # Pictures, validation and checkpoints are not training: images/s counts the steps alone (elapsed and
        # the ETA still count everything).
        self.window.t0 += time.perf_counter() - started

    def _finish(self) -> Iterator[Event]:
        tc, spe = self.config.train, self.steps_per_epoch
        if self.step % spe != 0:
            yield from self._save("latest")
        if self.step % tc.image_every != 0 and self.world.main:
            yield self._images()
        reason = "completed" if self.step >= tc.epochs * spe else "max_steps"
        yield FinishedEvent(step=self.step, epoch=self.step // spe, reason=reason)

    def _progress(self) -> float:
        """How far the run is, 0..1: of its planned steps (--epochs), or of its --time-budget when that is further."""
        tc = self.config.train
        done = self.step / max(tc.epochs * self.steps_per_epoch, 1)
        if tc.time_budget is not None:
            done = max(done, (time.perf_counter() - self.t_start) / tc.time_budget)
        return done

    def _out_of_time(self) -> Iterator[Event]:
        """--time-budget spent: the steps since the last event, a validation of the weights as they are now (a
        comparison at equal time reads it), a checkpoint, and the end."""
        tc, spe = self.config.train, self.steps_per_epoch
        if self.window.images:
            yield from self._step_event()
        if self.step % spe:  # at an epoch's end it was just validated
            yield self._validated(self.step // spe + 1)[1]
            yield from self._save("latest")
        if self.step % tc.image_every != 0 and self.world.main:
            yield self._images()
        yield FinishedEvent(step=self.step, epoch=self.step // spe, reason="time budget")

    def _step_event(self) -> Iterator[Event]:
        w = self.window
        sums, n = w.sums, w.images
        if self.world.distributed:
            sums = distributed.sum_ranks(self.world, torch.cat([sums, sums.new_tensor([n])]))
            n = int(sums[-1].item())
            sums = sums[:-1]
        loss_s, recon_s, kl_s, *own = sums.tolist()  # the one read-back per log interval
        own, dims = own[:len(own) - self.kl_dims], own[len(own) - self.kl_dims:]
        es = self.epoch_sums
        self.epoch_sums = [es[0] + loss_s, es[1] + recon_s, es[2] + kl_s, es[3] + n]
        now = time.perf_counter()
        rate = n / max(now - w.t0, 1e-9)
        w.reset()
        if n == 0:
            return  # every step since the last event was skipped: there is nothing to average
        spe, tc = self.steps_per_epoch, self.config.train
        elbo = (recon_s + kl_s) / n
        yield StepEvent(
            step=self.step, epoch=(self.step - 1) // spe + 1, epoch_step=(self.step - 1) % spe + 1,
            steps_per_epoch=spe, total_steps=self.total_steps,
            loss=loss_s / n, recon=recon_s / n, kl=kl_s / n, beta=schedule_beta(self.step - 1, tc, tc.epochs * spe),
            lr=self.optimizer.param_groups[0]["lr"], nats_per_dim=nats_per_dim(elbo, self.dims),
            bits_per_dim=bits_per_dim(elbo, self.dims), images_per_s=rate, elapsed=now - self.t_start,
            nonfinite=self.nonfinite_total,
            gpu_mem_mb=torch.cuda.memory_allocated(self.device) / 2**20 if self.device.type == "cuda" else None,
            terms={name: s / n for name, s in zip(self.family.terms, own)} or None,
            kl_dims=[float(f"{d / n:.4g}") for d in dims] or None,
        )

    def _validated(self, epoch: int) -> tuple[dict, EvalEvent]:
        """The validation objective of the weights as they are (observe.validate), and its event."""
        v = self.evaluate()
        elbo = v["recon"] + v["kl"]
        return v, EvalEvent(step=self.step, epoch=epoch, split="valid", loss=v["loss"], recon=v["recon"], kl=v["kl"],
                            nats_per_dim=nats_per_dim(elbo, self.dims), bits_per_dim=bits_per_dim(elbo, self.dims),
                            count=v["count"], beta=self.config.train.beta, active_units=v["active_units"])

    def _end_epoch(self, epoch: int) -> Iterator[Event]:
        v, event = self._validated(epoch)
        yield event
        collapse = None if self.collapse_warned else observe.collapse_message(v, epoch)
        if collapse:
            self.collapse_warned = True
            yield WarningEvent(step=self.step, cause="collapse", message=collapse)
        es = self.epoch_sums
        best = v["loss"] < self.best_valid
        if best:
            self.best_valid = v["loss"]
        self.epoch_sums = [0.0, 0.0, 0.0, 0]
        n = es[3]
        mean = (lambda s: s / n) if n else (lambda s: math.nan)
        yield EpochEvent(step=self.step, epoch=epoch, train_loss=mean(es[0]), valid_loss=v["loss"],
                         train_recon=mean(es[1]), train_kl=mean(es[2]), best=best)
        yield from self._save_epoch_end(epoch, best)

    # ------------------------------------------------------------------ setup
    def _log(self, event: Event) -> Event:
        if self.world.main:
            self.store.append_event(event.to_json())
        return event

    # ------------------------------------------------------------------ evaluation and pictures
    def evaluate(self, count: int | None = None) -> dict[str, float]:
        """Mean loss terms per image on the first `count` validation images (see observe.validate)."""
        tc = self.config.train
        return observe.validate(self.model, self.valid_split, count or self.valid_count, tc.batch_size, tc.beta,
                                self.config.model.likelihood, tc.seed + 99, self.device, self._autocast)

    def _images(self) -> ImagesEvent:
        recon, samples = observe.preview(self.model, self.preview, self.preview_seed, self.device, self._autocast)
        path = observe.write_snapshot(self.store, self.step, self.preview, recon, samples)
        return ImagesEvent(step=self.step, path=path, originals=self.preview, reconstructions=recon, samples=samples)
