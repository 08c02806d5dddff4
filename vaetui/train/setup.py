"""What a Trainer is built from: the device, the data splits and their sizes, the network (DDP-wrapped under torchrun),
its optimisers and starting state (`TrainerSetup`, the Trainer's set-up methods).

Each function checks what a person could have got wrong and says so in one line.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from vaetui.config.settings import RunConfig, TrainConfig
from vaetui.data import open_split
from vaetui.errors import DataError, VaeError
from vaetui.models.families import family_of
from vaetui.models.protocol import LatentModel
from vaetui.runtime import native_bf16, resolve_precision  # noqa: F401 (where the trainer's callers find them)
from vaetui.train import distributed

PREVIEW_IMAGES = 8  # validation images a snapshot shows


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


def noise_seed(seed: int, rank: int, step: int = 0) -> int:
    """The reparameterisation noise seed of a rank, re-derived at a step when a state cannot be carried over."""
    return seed + 17 + 7919 * rank + step


def device_for(tc: TrainConfig, world) -> torch.device:
    """The device this rank trains on, checked against the settings."""
    device = resolve_device(tc.device)
    if world.distributed and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
    if tc.batch_size % world.size:
        raise VaeError(f"--batch-size {tc.batch_size} does not split evenly over {world.size} processes: "
                       f"use a multiple of {world.size}")
    if tc.precision == "fp16" and device.type != "cuda":
        raise VaeError("--precision fp16 needs CUDA; use --precision bf16 on the CPU")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return device


def check_data(cfg: RunConfig) -> None:
    """What can be known of the data without decoding it: the folder and its index, and splits large enough.
    (Whether the images decode is found out by the trainer, which builds the decode cache.)"""
    if cfg.data.source == "synthetic":
        return
    from vaetui.data.sources import file_index, split_files

    index = file_index(cfg.data)
    sizes = {split: len(split_files(cfg.data, index, split)[0]) for split in ("train", "valid")}
    if sizes["train"] < cfg.train.batch_size:
        raise DataError(f"the training split of {index.folder} has {sizes['train']} images, fewer than one batch "
                        f"({cfg.train.batch_size}): lower --batch-size or add images")
    if sizes["valid"] == 0:
        raise DataError(f"the validation split of {index.folder} is empty: add images (or check the partition file)")


def open_data(cfg: RunConfig):
    """(train split, valid split, steps per epoch, total steps)."""
    tc = cfg.train
    train, valid = open_split(cfg.data, "train"), open_split(cfg.data, "valid")
    if len(train) < tc.batch_size:
        raise DataError(f"the training split has {len(train)} images, fewer than one batch "
                        f"({tc.batch_size}): lower --batch-size or add images")
    if len(valid) == 0:
        raise DataError("the validation split is empty: add images or use a dataset with a validation split")
    steps_per_epoch = len(train) // tc.batch_size
    total = tc.epochs * steps_per_epoch
    if tc.max_steps is not None:
        total = min(total, tc.max_steps)
    return train, valid, steps_per_epoch, total


def network(cfg: RunConfig, device: torch.device, world) -> tuple[LatentModel, torch.nn.Module]:
    """(the family's plain model, what the training step calls: the model, or its DDP / compiled wrapper)."""
    # channels_last: oneDNN's convolutions run ~1.4x faster on CPU in NHWC (measured on
    # the seed network, fp32), and cuDNN's tensor-core kernels want it too.
    model = family_of(cfg).build(cfg).to(device, memory_format=torch.channels_last)
    forward = model
    if world.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        if device.type == "cuda":
            # Statistics over the global batch, as one process would see it; on CPU (gloo) SyncBatchNorm
            # is not available, so each rank normalises over its own share of the batch.
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            forward = DDP(model, device_ids=[device.index])
        else:
            forward = DDP(model)
    if cfg.train.compile:
        forward = torch.compile(forward)
    return model, forward


class Feeder:
    """Batches of a split, as float on the device. On CUDA the uint8 batch goes through one of two reused pinned
    buffers and is copied without blocking (the GPU converts it: 4x fewer bytes cross the bus)."""

    def __init__(self, split, device: torch.device):
        self.split, self.device = split, device
        self._pinned: list[torch.Tensor | None] = [None, None]
        self._copied: list = [None, None]  # the CUDA event after each buffer's last copy
        self._turn = 0

    def __call__(self, indices) -> torch.Tensor:
        from vaetui.models.pixels import to_float

        images = self.split.images(indices)
        if self.device.type != "cuda":
            return to_float(images, self.device)
        k = self._turn = 1 - self._turn
        buf = self._pinned[k]
        if buf is None or buf.shape != images.shape:
            buf = self._pinned[k] = torch.empty(images.shape, dtype=torch.uint8).pin_memory()
        if self._copied[k] is not None:
            self._copied[k].synchronize()  # the copy that last read this buffer is done: it may be refilled
        buf.copy_(images)
        x = buf.to(self.device, non_blocking=True)
        self._copied[k] = torch.cuda.Event()
        self._copied[k].record()
        return to_float(x, self.device)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container or taskset may allow fewer than exist)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _fused_kernel_note(device: torch.device, precision: str) -> str | None:
    """Where bf16 trains on the CPU, the fused BatchNorm kernel is built (or loaded) now, not inside the first step;
    what a person should hear about it: a first build's time, or why PyTorch's ops are used instead."""
    if device.type != "cpu" or precision != "bf16":
        return None
    import time

    from vaetui.models import bnact

    t = time.perf_counter()
    if bnact.extension() is None:
        return f"the fused BatchNorm kernel could not be built ({bnact.unavailable()}): PyTorch's ops instead " \
               "(install a C++ compiler and ninja for 10–20% faster bf16 steps)"
    took = time.perf_counter() - t
    return f"built the fused BatchNorm kernel for this CPU in {took:.0f} s (once: later runs load it)" \
        if took > 5 else None


class TrainerSetup:
    """The Trainer's set-up (a mixin of vaetui.train.engine.Trainer): device, data and sizes on every rank, then the
    network, its optimisers and the training state a checkpoint restores."""

    def _setup_everywhere(self) -> None:
        """Set up on every rank; if any rank cannot (its data is missing, say), every rank stops with its reason."""
        error = None
        try:
            self._setup_local()  # no collective in here: a rank that fails must reach the gather below
        except VaeError as exc:
            error = exc
        if not self.world.distributed:
            if error is not None:
                raise error
        else:
            failures = distributed.gather_errors(error, self.world)
            if failures:
                rank, message = failures[0]
                raise VaeError(f"rank {rank}: {message}" + ("" if rank == 0 else
                               " (every process reads its share of the data: each node needs it at the same path)"))
        self._build_model()

    def _setup_local(self) -> None:
        """Device, data and sizes: what each rank can check alone."""
        cfg, tc = self.config, self.config.train
        self.thread_note = None
        if tc.threads:
            cores = usable_cores()
            if tc.threads > cores:  # more threads than cores only wait on each other (1024 on 2: 1 image/s)
                self.thread_note = (f"threads {tc.threads} is more than the {cores} cores this process may use: "
                                    f"training with {cores}")
            torch.set_num_threads(min(tc.threads, cores))  # per thread: this is the training thread
        self.device = device_for(tc, self.world)
        self.precision = resolve_precision(tc.precision, self.device)
        self.kernel_note = _fused_kernel_note(self.device, self.precision)
        self.local_batch = tc.batch_size // self.world.size
        self.train_split, self.valid_split, self.steps_per_epoch, self.total_steps = open_data(cfg)
        self.feeder = Feeder(self.train_split, self.device)

    def _build_model(self) -> None:
        """The network (DDP-wrapped under torchrun: a collective), the optimiser and the training state."""
        cfg, tc = self.config, self.config.train
        torch.manual_seed(tc.seed)
        self.model, self.forward = network(cfg, self.device, self.world)
        self.optimizer = torch.optim.Adam(self.model.main_parameters(), lr=tc.lr)
        aux = getattr(self.model, "aux", lambda: None)()
        self.aux_optimizer = (torch.optim.Adam(aux.parameters(), lr=tc.lr, betas=self.family.aux_betas)
                              if aux is not None and self.family.aux_betas else None)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        self.noise = torch.Generator(device=self.device).manual_seed(noise_seed(tc.seed, self.world.rank))
        self.dims = 3 * cfg.data.size[0] * cfg.data.size[1]
        self.preview = self.valid_split.images(np.arange(min(PREVIEW_IMAGES, len(self.valid_split))))
        # the previews' samples: the same prior codes at every step (drawn from the prior as it is then, for vamp)
        self.preview_seed = tc.seed + 1
        self.valid_count = min(tc.valid_size, len(self.valid_split))
        # Training state (what a checkpoint restores).
        self.step, self.lr_scale, self.best_valid = 0, 1.0, math.inf
        self.nonfinite_total, self.rollbacks, self.epoch_sums = 0, 0, [0.0, 0.0, 0.0, 0]

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)
