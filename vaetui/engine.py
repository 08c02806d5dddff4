"""The training loop as a generator of events. It knows nothing about who listens.

    trainer = Trainer(config, run)
    for event in trainer.run(control):
        ...

Every event is appended to the run's metrics.jsonl before it is yielded. `control`
lets another thread pause, resume, stop and ask for a checkpoint between steps.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch

from vaetui.config import RunConfig
from vaetui import distributed
from vaetui.data import open_split
from vaetui.errors import CheckpointError, DataError, VaeError
from vaetui.events import (
    CheckpointEvent, EpochEvent, EvalEvent, Event, FailedEvent, FinishedEvent, ImagesEvent, StartedEvent,
    StateEvent, StepEvent, WarningEvent,
)
from vaetui.losses import beta_at, bits_per_dim, nats_per_dim, vae_loss
from vaetui.model import ConvVAE, parameter_count
from vaetui.runs import Run

CHECKPOINT_FORMAT = 1
MAX_NONFINITE_IN_A_ROW = 5
MAX_ROLLBACKS = 4
PREVIEW_IMAGES = 8
SNAPSHOT_MAX_SIDE = 96


@dataclass
class Control:
    """Flags another thread sets; the trainer reads them between steps."""

    stop_requested: threading.Event = field(default_factory=threading.Event)
    paused: threading.Event = field(default_factory=threading.Event)
    checkpoint_requested: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        """Ask the trainer to save a checkpoint and finish."""
        self.stop_requested.set()
        self._wake.set()

    def pause(self) -> None:
        self.paused.set()

    def resume(self) -> None:
        self.paused.clear()
        self._wake.set()

    def toggle_pause(self) -> bool:
        """Pause if running, resume if paused; returns True when now paused."""
        if self.paused.is_set():
            self.resume()
            return False
        self.pause()
        return True

    def checkpoint(self) -> None:
        """Ask for a checkpoint at the next step boundary (also while paused)."""
        self.checkpoint_requested.set()
        self._wake.set()

    def wait(self, timeout: float) -> None:
        self._wake.wait(timeout)
        self._wake.clear()


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VaeError("--device cuda: no CUDA GPU is visible; use --device cpu (or auto)")
    return torch.device(name)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of training images for one epoch, a pure function of (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def to_float(images: torch.Tensor, device: torch.device, non_blocking: bool = False) -> torch.Tensor:
    """uint8 (N,3,H,W) -> channels-last float in [0, 1] on the device (converted there: 4x less to copy)."""
    if non_blocking and images.device.type == "cpu":
        images = images.pin_memory()
    x = images.to(device, non_blocking=non_blocking)
    return x.to(memory_format=torch.channels_last).float().div_(255.0)


class Trainer:
    """Trains one run; `run(control)` yields events until the run completes, stops or fails."""

    def __init__(self, config: RunConfig, run: Run, resume: bool = False):
        self.config = config.validate()
        self.store = run
        self.resume = resume
        self.model: ConvVAE | None = None
        self.world = distributed.current()  # under torchrun: rank 0 alone writes the run

    # ------------------------------------------------------------------ public
    def run(self, control: Control | None = None) -> Iterator[Event]:
        """Train, yielding (and logging) every event; never raises for training errors."""
        control = control or Control()
        warning = None
        try:
            warning = self.store.acquire_lock() if self.world.main else None
        except VaeError as exc:
            yield FailedEvent(step=0, error=str(exc))
            return
        try:
            if warning:
                yield self._log(WarningEvent(step=0, message=warning))
            for event in self._train(control):
                yield self._log(event)
        except VaeError as exc:
            yield self._log(FailedEvent(step=getattr(self, "step", 0), error=str(exc)))
        except Exception as exc:  # a bug or an OOM: keep the trace in the log, fail cleanly
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            yield self._log(FailedEvent(step=getattr(self, "step", 0), error=detail))
        finally:
            if self.world.main:
                self.store.release_lock()

    # ------------------------------------------------------------------ setup
    def _log(self, event: Event) -> Event:
        if self.world.main:
            self.store.append_event(event.to_json())
        return event

    def _any(self, flag: bool) -> bool:
        """True on every rank when it is true on any (a stop request, a non-finite loss): ranks never diverge."""
        if not self.world.distributed:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def _sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world.distributed:
            import torch.distributed as dist

            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def _setup(self) -> None:
        cfg = self.config
        tc = cfg.train
        if tc.threads:
            torch.set_num_threads(tc.threads)  # per thread: this is the training thread
        self.device = resolve_device(tc.device)
        if self.world.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", self.world.local_rank)
        if tc.batch_size % self.world.size:
            raise VaeError(f"--batch-size {tc.batch_size} does not split evenly over {self.world.size} processes: "
                           f"use a multiple of {self.world.size}")
        self.local_batch = tc.batch_size // self.world.size
        if tc.precision == "fp16" and self.device.type != "cuda":
            raise VaeError("--precision fp16 needs CUDA; use --precision bf16 on the CPU")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.train_split = open_split(cfg.data, "train")
        self.valid_split = open_split(cfg.data, "valid")
        if len(self.train_split) < tc.batch_size:
            raise DataError(f"the training split has {len(self.train_split)} images, fewer than one batch "
                            f"({tc.batch_size}): lower --batch-size or add images")
        if len(self.valid_split) == 0:
            raise DataError("the validation split is empty: add images or use a dataset with a validation split")
        self.steps_per_epoch = len(self.train_split) // tc.batch_size
        self.total_steps = tc.epochs * self.steps_per_epoch
        if tc.max_steps is not None:
            self.total_steps = min(self.total_steps, tc.max_steps)
        torch.manual_seed(tc.seed)
        # channels_last: oneDNN's convolutions run ~1.4x faster on CPU in NHWC (measured on
        # the seed network, fp32), and cuDNN's tensor-core kernels want it too.
        self.model = ConvVAE.from_config(cfg).to(self.device, memory_format=torch.channels_last)
        self.forward = self.model
        if self.world.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            if self.device.type == "cuda":
                # Statistics over the global batch, as one process would see it; on CPU (gloo) SyncBatchNorm
                # is not available, so each rank normalises over its own share of the batch.
                self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
                self.forward = DDP(self.model, device_ids=[self.device.index])
            else:
                self.forward = DDP(self.model)
        if tc.compile:
            self.forward = torch.compile(self.forward)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=tc.lr)
        self.scaler = torch.amp.GradScaler("cuda", enabled=tc.precision == "fp16")
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(tc.precision)
        self.noise = torch.Generator(device=self.device).manual_seed(tc.seed + 17 + 7919 * self.world.rank)
        self.dims = 3 * cfg.data.size[0] * cfg.data.size[1]
        n_preview = min(PREVIEW_IMAGES, len(self.valid_split))
        self.preview = self.valid_split.images(np.arange(n_preview))
        self.fixed_z = torch.randn(PREVIEW_IMAGES, cfg.model.latent, generator=torch.Generator().manual_seed(tc.seed + 1))
        self.valid_count = min(tc.valid_size, len(self.valid_split))
        # Training state (what a checkpoint restores).
        self.step = 0
        self.lr_scale = 1.0
        self.best_valid = math.inf
        self.nonfinite_total = 0
        self.rollbacks = 0
        self.epoch_sums = [0.0, 0.0, 0.0, 0]  # loss, recon, kl, images

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    # ------------------------------------------------------------------ checkpoints
    def _state(self) -> dict[str, Any]:
        state = {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_json(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "noise_rng": self.noise.get_state(),
            "step": self.step,
            "epoch": self.step // self.steps_per_epoch,
            "lr_scale": self.lr_scale,
            "best_valid": self.best_valid,
            "nonfinite_total": self.nonfinite_total,
            "epoch_sums": list(self.epoch_sums),
        }
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.world.rank == 0:
            self.noise.set_state(state["noise_rng"].cpu())
        else:  # the checkpoint holds rank 0's noise; the others continue from a seed of (rank, step)
            self.noise.manual_seed(self.config.train.seed + 17 + 7919 * self.world.rank + int(state["step"]))
        self.step = int(state["step"])
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self.best_valid = float(state.get("best_valid", math.inf))
        self.nonfinite_total = int(state.get("nonfinite_total", 0))
        self.epoch_sums = list(state.get("epoch_sums", [0.0, 0.0, 0.0, 0]))
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.train.lr * self.lr_scale

    def _weights_finite(self) -> bool:
        return all(bool(torch.isfinite(t).all()) for t in self.model.state_dict().values() if t.is_floating_point())

    def _save(self, label: str) -> Iterator[Event]:
        if not self.world.main:
            return
        if not self._weights_finite():
            yield WarningEvent(step=self.step, message=f"not saving ckpt-{label}: the weights are not finite")
            return
        path = self.store.save_checkpoint(self._state(), label)
        yield CheckpointEvent(step=self.step, path=str(path), label=label)

    # ------------------------------------------------------------------ the loop
    def _train(self, control: Control) -> Iterator[Event]:
        self._setup()
        tc = self.config.train
        resumed = False
        if self.resume:
            try:
                state, path, warnings = self.store.load_checkpoint("latest", map_location=str(self.device))
            except CheckpointError as exc:
                if "no checkpoint yet" not in str(exc):
                    raise
                state, warnings = None, []
            for w in warnings:
                yield WarningEvent(step=0, message=f"skipped a damaged checkpoint: {w}")
            if state is not None:
                self._restore(state)
                if self.world.main:
                    self.store.truncate_events_after(self.step)
                resumed = True
        yield StartedEvent(
            step=self.step, run=self.store.name, device=str(self.device), parameters=parameter_count(self.model),
            total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch, resumed=resumed,
            threads=torch.get_num_threads(), precision=tc.precision,
        )
        for split in (self.train_split, self.valid_split):
            skipped = getattr(split, "skipped", None)
            if skipped:
                log = split.cache.log
                yield WarningEvent(step=self.step, message=f"skipped {len(skipped)} unreadable images, see {log}")
        if self.step >= self.total_steps:
            yield FinishedEvent(step=self.step, epoch=self.step // self.steps_per_epoch, reason="completed")
            return

        model, opt, device = self.model, self.optimizer, self.device
        model.train()
        bs, spe = tc.batch_size, self.steps_per_epoch
        non_blocking = device.type == "cuda"
        window = torch.zeros(3, device=device)  # loss, recon, kl sums since the last step event
        window_n, window_t0, in_a_row = 0, time.perf_counter(), 0
        t_start = time.perf_counter()
        order, order_epoch = None, -1

        while self.step < self.total_steps:
            # ---- between steps: the controller's requests
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
                window_t0 = time.perf_counter()
                window.zero_()
                window_n = 0
            if self._any(control.stop_requested.is_set()):
                yield from self._save("latest")
                yield FinishedEvent(step=self.step, epoch=self.step // spe, reason="stopped")
                return

            epoch, b = divmod(self.step, spe)
            if order_epoch != epoch:
                order, order_epoch = epoch_order(len(self.train_split), tc.seed, epoch), epoch
            batch = order[b * bs : (b + 1) * bs]
            if self.world.distributed:  # this rank's share of the global batch
                lb = self.local_batch
                batch = batch[self.world.rank * lb : (self.world.rank + 1) * lb]
            idx = np.sort(batch.numpy())  # sorted reads are faster; the batch is a set
            x = to_float(self.train_split.images(idx), device, non_blocking)
            beta = beta_at(self.step, tc.beta, tc.kl_warmup)

            with self._autocast():
                out = self.forward(x, self.noise)
            terms = vae_loss(out.logits, x, out.mu, out.logvar, beta, self.config.model.likelihood)
            if self._any(not bool(torch.isfinite(terms.loss))):
                self.nonfinite_total += 1
                in_a_row += 1
                opt.zero_grad(set_to_none=True)
                yield WarningEvent(step=self.step, message=f"non-finite loss at step {self.step}: step skipped "
                                   f"({self.nonfinite_total} so far)")
                if in_a_row >= MAX_NONFINITE_IN_A_ROW:
                    in_a_row = 0
                    yield from self._rollback()
                    order_epoch = -1
                else:
                    self.step += 1  # skip this batch: the same batch would fail again
                continue
            in_a_row = 0
            opt.zero_grad(set_to_none=True)
            self.scaler.scale(terms.loss).backward()
            self.scaler.step(opt)
            self.scaler.update()

            n = terms.count
            window += torch.stack([terms.loss.detach() * n, terms.recon_sum, terms.kl_sum])
            window_n += n
            self.step += 1

            if self.step % tc.log_every == 0 or self.step % spe == 0 or self.step == self.total_steps:
                if self.world.distributed:
                    window = self._sum(torch.cat([window, window.new_tensor([window_n])]))
                    window_n = int(window[3].item())
                    window = window[:3]
                loss_s, recon_s, kl_s = window.tolist()  # the one read-back per log interval
                es = self.epoch_sums
                self.epoch_sums = [es[0] + loss_s, es[1] + recon_s, es[2] + kl_s, es[3] + window_n]
                now = time.perf_counter()
                elbo = (recon_s + kl_s) / window_n
                yield StepEvent(
                    step=self.step, epoch=(self.step - 1) // spe + 1, epoch_step=(self.step - 1) % spe + 1,
                    steps_per_epoch=spe, total_steps=self.total_steps,
                    loss=loss_s / window_n, recon=recon_s / window_n, kl=kl_s / window_n, beta=beta,
                    lr=opt.param_groups[0]["lr"], nats_per_dim=nats_per_dim(elbo, self.dims),
                    bits_per_dim=bits_per_dim(elbo, self.dims),
                    images_per_s=window_n / max(now - window_t0, 1e-9), elapsed=now - t_start,
                    nonfinite=self.nonfinite_total,
                )
                window.zero_()
                window_n, window_t0 = 0, time.perf_counter()

            if (self.step % tc.image_every == 0 or self.step == 1) and self.world.main:
                yield self._images()
            if self.step % spe == 0:
                yield from self._end_epoch(self.step // spe)
            elif self.step % tc.checkpoint_every == 0:
                yield from self._save("latest")

        if self.step % spe != 0:
            yield from self._save("latest")
        reason = "completed" if self.step >= tc.epochs * spe else "max_steps"
        if self.step % tc.image_every != 0 and self.world.main:
            yield self._images()
        yield FinishedEvent(step=self.step, epoch=self.step // spe, reason=reason)

    def _rollback(self) -> Iterator[Event]:
        self.rollbacks += 1
        if self.rollbacks > MAX_ROLLBACKS:
            raise VaeError(f"training diverges: {self.rollbacks - 1} roll-backs did not help; "
                           f"start again with a lower --lr than {self.config.train.lr:g}")
        lr_scale, nonfinite = self.lr_scale * 0.5, self.nonfinite_total
        try:
            state, path, _ = self.store.load_checkpoint("latest", map_location=str(self.device))
            self._restore(state)
            self.nonfinite_total = nonfinite  # a count of what happened, not training state
            where = f"{path.name} (step {self.step})"
        except CheckpointError:
            where = "the current weights (no checkpoint yet)"
        self.lr_scale = lr_scale
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.train.lr * self.lr_scale
        yield WarningEvent(step=self.step, message=f"{MAX_NONFINITE_IN_A_ROW} non-finite losses in a row: rolled back "
                           f"to {where} and halved the learning rate to {self.optimizer.param_groups[0]['lr']:.3g}")

    @torch.no_grad()
    def evaluate(self, count: int | None = None) -> dict[str, float]:
        """Mean loss terms per image on the first `count` validation images (fixed noise)."""
        model, device = self.model, self.device
        tc = self.config.train
        count = count or self.valid_count
        gen = torch.Generator(device=device).manual_seed(tc.seed + 99)
        beta = beta_at(self.step, tc.beta, tc.kl_warmup)
        sums = torch.zeros(3, device=device)
        was_training = model.training
        model.eval()
        try:
            for start in range(0, count, tc.batch_size):
                x = to_float(self.valid_split.images(np.arange(start, min(start + tc.batch_size, count))), device)
                with self._autocast():
                    out = model(x, gen)
                t = vae_loss(out.logits, x, out.mu, out.logvar, beta, self.config.model.likelihood)
                sums += torch.stack([t.loss * t.count, t.recon_sum, t.kl_sum])
        finally:
            model.train(was_training)
        loss, recon, kl = (v / count for v in sums.tolist())
        return {"loss": loss, "recon": recon, "kl": kl, "count": count}

    def _end_epoch(self, epoch: int) -> Iterator[Event]:
        v = self.evaluate()
        elbo = v["recon"] + v["kl"]
        yield EvalEvent(step=self.step, epoch=epoch, split="valid", loss=v["loss"], recon=v["recon"], kl=v["kl"],
                        nats_per_dim=nats_per_dim(elbo, self.dims), bits_per_dim=bits_per_dim(elbo, self.dims),
                        count=v["count"])
        es = self.epoch_sums
        n = max(es[3], 1)
        best = v["loss"] < self.best_valid
        if best:
            self.best_valid = v["loss"]
        self.epoch_sums = [0.0, 0.0, 0.0, 0]
        yield EpochEvent(step=self.step, epoch=epoch, train_loss=es[0] / n, valid_loss=v["loss"],
                         train_recon=es[1] / n, train_kl=es[2] / n, best=best)
        yield from self._save(f"epoch-{epoch}")
        if self.world.main:
            self.store.prune_epoch_checkpoints(self.config.train.keep_last)
        if best:
            yield from self._save("best")
        yield from self._save("latest")

    @torch.no_grad()
    def _images(self) -> ImagesEvent:
        model, device = self.model, self.device
        was_training = model.training
        model.eval()
        try:
            x = to_float(self.preview, device)
            with self._autocast():
                mu, _ = model.encode(x)
                recon = model.decode(mu)
                samples = model.decode(self.fixed_z.to(device))
        finally:
            model.train(was_training)
        originals = self.preview
        recon, samples = recon.float().cpu(), samples.float().cpu()
        path = self._write_snapshot(originals, recon, samples)
        return ImagesEvent(step=self.step, path=path, originals=originals, reconstructions=recon, samples=samples)

    def _write_snapshot(self, originals, recon, samples) -> str:
        from vaetui.imaging import save_image, stack_rows, to_uint8

        rows = [to_uint8(r) for r in (originals, recon, samples)]
        h, w = rows[0].shape[-2:]
        scale = min(1.0, SNAPSHOT_MAX_SIDE / max(h, w))
        if scale < 1.0:
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            rows = [torch.nn.functional.interpolate(r.float(), size=size, mode="area").round().to(torch.uint8) for r in rows]
        path = self.store.snapshots / f"step-{self.step:08d}.png"
        save_image(stack_rows(rows), path)
        return str(path.relative_to(self.store.path))
