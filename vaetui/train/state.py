"""The trainer's state on disk: capture and restore a checkpoint, the newest good one on resume, saving, and
rolling back after non-finite losses. A base of engine.Trainer, kept apart so the loop reads as a loop."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import torch

from vaetui.train import setup
from vaetui.runs import checkpoint
from vaetui.train import distributed
from vaetui.errors import NoCheckpointYet, VaeError
from vaetui.runs.events import CheckpointEvent, Event, WarningEvent

MAX_NONFINITE_IN_A_ROW = 5
MAX_ROLLBACKS = 4


class TrainerState:
    """Checkpoint and roll-back methods of the Trainer (they use its model, optimiser, counters and run)."""

    def _state(self) -> dict:
        return checkpoint.capture(
            config=self.config, model=self.model, optimizer=self.optimizer, scaler=self.scaler, noise=self.noise,
            device_type=self.device.type, epoch=self.step // self.steps_per_epoch,
            counters=checkpoint.Counters(self.step, self.lr_scale, self.best_valid, self.nonfinite_total,
                                         self.rollbacks, self._epoch_sums_now()),
            aux_optimizer=self.aux_optimizer,
        )

    def _epoch_sums_now(self) -> list:
        """The epoch's running sums with the steps since the last step event: a checkpoint between two step events
        (log_every > 1) must hold them, since the resumed trainer starts with an empty window. (Under torchrun the
        window holds this rank's share alone and summing it would take a collective that only rank 0 reaches
        here: there a checkpoint keeps the sums of the last step event, as step events are what ranks agree on.)"""
        window = getattr(self, "window", None)
        if window is None or window.images == 0 or self.world.distributed:
            return list(self.epoch_sums)
        loss, recon, kl, *_own = window.sums.tolist()  # a family's own terms are not in the epoch sums
        es = self.epoch_sums
        return [es[0] + loss, es[1] + recon, es[2] + kl, es[3] + window.images]

    def _restore(self, state: dict) -> str | None:
        """Load a checkpoint's state; returns a note when the noise generator had to be reseeded."""
        c = checkpoint.restore(state, model=self.model, optimizer=self.optimizer, scaler=self.scaler,
                               aux_optimizer=self.aux_optimizer)
        self.step, self.lr_scale, self.best_valid = c.step, c.lr_scale, c.best_valid
        self.nonfinite_total, self.rollbacks, self.epoch_sums = c.nonfinite_total, c.rollbacks, c.epoch_sums
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.train.lr * self.lr_scale
        reseed = setup.noise_seed(self.config.train.seed, self.world.rank, self.step)
        if self.world.rank != 0:  # the checkpoint holds rank 0's noise; the others continue from (seed, rank, step)
            self.noise.manual_seed(reseed)
            return None
        return checkpoint.restore_noise(state, self.noise, self.device.type, reseed)

    def _load_resume_state(self) -> tuple[dict | None, str, list[str]]:
        """Rank 0 reads the newest good checkpoint and hands it to the other ranks (their disks may lack the run).

        Returns (state or None when there is no checkpoint yet, its file name, warnings about damaged files).
        """
        state, name, warnings = None, "", []
        if self.world.main:
            try:
                state, path, warnings = self.store.load_checkpoint(None, map_location="cpu")
                name = path.name
            except NoCheckpointYet:
                pass
        return distributed.broadcast(state, self.world), name, warnings

    def _weights_finite(self) -> bool:
        return all(bool(torch.isfinite(t).all()) for t in self.model.state_dict().values() if t.is_floating_point())

    def _save(self, label: str) -> Iterator[Event]:
        if not self.world.main:
            return
        if not self._weights_finite():
            yield WarningEvent(step=self.step, cause="nonfinite", message=f"not saving ckpt-{label}: the weights are not finite")
            return
        path = self.store.save_checkpoint(self._state(), label)
        yield CheckpointEvent(step=self.step, path=str(path), label=label)

    def _save_epoch_end(self, epoch: int, best: bool) -> Iterator[Event]:
        """The epoch's checkpoints, in an order a kill at any point cannot make disagree with the log.

        ckpt-best first: until it is written, every checkpoint of this epoch is missing too, so a resume starts
        before the epoch's end (and drops its events from the log) with the previous best still the best. Once
        it is written it is the newest checkpoint, and a resume from it or a later one repairs ckpt-latest and
        ckpt-epoch-N (_repair_checkpoints).
        """
        if best:
            yield from self._save("best")
        yield from self._save(f"epoch-{epoch}")
        if self.world.main:
            self.store.prune_epoch_checkpoints(self.config.train.keep_last)
        yield from self._save("latest")

    def _repair_checkpoints(self, resumed: Path) -> list[str]:
        """After a resume from `resumed`: make ckpt-latest, ckpt-epoch-N and ckpt-best agree with the state it holds.

        A kill inside an epoch's end (or a run of an older vaetui, which wrote ckpt-best last) can leave ckpt-latest
        behind the newest checkpoint, and ckpt-best holding an older epoch than the log's best. The resumed file is
        the truth (it is what the log was truncated to): files are copied, byte for byte, where they belong.
        """
        notes = []
        store = self.store

        def copy(source: Path, label: str, why: str) -> None:
            target = store.checkpoint_path(label)
            if target != source:
                checkpoint.save(target, source.read_bytes())
                notes.append(f"repaired {target.name} ({why}): it now holds step "
                             f"{store.checkpoint_step(target)}, as {source.name} does")

        latest = store.checkpoint_step(store.checkpoint_path("latest"))
        if latest is None or latest < self.step:
            copy(resumed, "latest", "missing or damaged" if latest is None else f"it held step {latest}")
        spe = self.steps_per_epoch
        if self.step > 0 and self.step % spe == 0:
            label = f"epoch-{self.step // spe}"
            if store.checkpoint_step(store.checkpoint_path(label)) != self.step:
                copy(resumed, label, "missing or damaged")
        best_step = self._logged_best_step()
        best = checkpoint.peek(store.checkpoint_path("best")) or {}
        if best_step is not None and best.get("step") != best_step:
            # The best weights are those of the step where the log says the best epoch ended; later checkpoints
            # carry the same best_valid with other weights. When keep_last pruned that step's files, none is left.
            source = next((p for p in store.checkpoint_candidates() if store.checkpoint_step(p) == best_step), None)
            if source is not None:
                held = f"it held step {best['step']}" if "step" in best else "missing or damaged"
                copy(source, "best", f"{held}, not the log's best epoch, which ended at step {best_step}")
        return notes

    def _logged_best_step(self) -> int | None:
        """The step at which the log's last best epoch ended (the log is already truncated to the resumed step)."""
        return next((r.step for r in reversed(self.store.history(steps="none").epochs) if r.best), None)

    def _rollback(self) -> Iterator[Event]:
        self.rollbacks += 1
        if self.rollbacks > MAX_ROLLBACKS:
            raise VaeError(f"training diverges: {self.rollbacks - 1} roll-backs did not help; "
                           f"start again with a lower --lr than {self.config.train.lr:g}")
        lr_scale, nonfinite, rollbacks = self.lr_scale * 0.5, self.nonfinite_total, self.rollbacks
        state, name, _ = self._load_resume_state()
        if state is not None:
            self._restore(state)
            where = f"{name} (step {self.step})"
        else:
            where = "the current weights (no checkpoint yet)"
        # Counts of what happened are not training state: they survive the roll-back.
        self.nonfinite_total, self.rollbacks, self.lr_scale = nonfinite, rollbacks, lr_scale
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.train.lr * self.lr_scale
        if self.world.main:
            self.store.truncate_events_after(self.step)  # the undone steps leave the log, as on resume
        self.window.reset()
        self.order_epoch = -1
        yield WarningEvent(step=self.step, cause="rollback",
                           message=f"{MAX_NONFINITE_IN_A_ROW} non-finite losses in a row: rolled back to {where} and "
                                   f"halved the learning rate to {self.optimizer.param_groups[0]['lr']:.3g}")
