"""Distributed training through PyTorch's own engine: torchrun starts the processes, DDP syncs gradients.

    torchrun --nproc-per-node N -m vaetui train ...

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; `init()` joins the process group (gloo
on CPU, nccl on CUDA). Rank 0 alone reads and writes the run folder (config, metrics,
checkpoints, snapshots) and hands the config and any checkpoint to the other ranks, so
nodes need no shared filesystem; each rank reads its own share of the data.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class World:
    """Where this process stands: rank, world size, local rank, backend ('' when not distributed)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = World()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init() -> World:
    """Join the process group torchrun set up; a single process when not launched by torchrun.

    The group is made before any rank has read the run (on a node without the run folder,
    only rank 0 can), so it serves both devices: gloo for CPU tensors and the objects
    rank 0 hands out, and nccl for CUDA tensors when a GPU is visible. Which one a
    collective uses follows the device of its tensors, i.e. the run's device.
    """
    if not launched_by_torchrun():
        return SINGLE
    import torch
    import torch.distributed as dist

    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available()
    backend = "cpu:gloo,cuda:nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local % torch.cuda.device_count())
    if not dist.is_initialized():
        # A rank that dies makes torchrun stop the others; the timeout bounds a hang if it cannot.
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=10))
    return World(rank, size, local, backend)


def current() -> World:
    """The World of an already initialised process group (SINGLE otherwise)."""
    try:
        import torch.distributed as dist
    except ImportError:
        return SINGLE
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_backend())


def broadcast(value: Any, world: World) -> Any:
    """Rank 0's value on every rank (a run name, an error)."""
    if not world.distributed:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_errors(error: Exception | None, world: World) -> list[tuple[int, str]]:
    """Every rank's error message as (rank, message), the same list on every rank: all stop together, or none."""
    if not world.distributed:
        return [(0, str(error))] if error is not None else []
    import torch.distributed as dist

    box: list = [None] * world.size
    dist.all_gather_object(box, None if error is None else str(error))
    return [(rank, text) for rank, text in enumerate(box) if text is not None]


def shutdown(world: World) -> None:
    """Leave the process group once every rank is done with it: a rank that tore its Gloo pairs down while another
    still used them aborted at exit now and then ("terminate called without an active exception")."""
    if world.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            try:
                dist.barrier()
            except Exception:  # noqa: BLE001 - a peer already gone: nothing left to wait for
                pass
            dist.destroy_process_group()


def any_rank(world: World, device, flag: bool) -> bool:
    """True on every rank when it is true on any (a stop request, a non-finite loss): ranks never diverge."""
    if not world.distributed:
        return flag
    import torch
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def sum_ranks(world: World, t):
    """A tensor summed over the ranks, in place (itself on one process)."""
    if world.distributed:
        import torch.distributed as dist

        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t
