"""Process-wide speed settings, applied once at start-up, before torch allocates much."""

from __future__ import annotations

import ctypes
import functools
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_done = False
_set_for_the_ui: list[str] = []  # environment variables this process set for its UI's sake, not for training


def tune_allocator() -> bool:
    """On glibc, keep big activation buffers in the heap instead of returning them to the OS after every step.

    Without this, each training step mmaps and unmaps its large tensors and pays page
    faults for them again (measured 1.6-2x slower for this network on CPU). The trim
    threshold is as high as mallopt takes (INT_MAX, 2 GB): at 1 GB, a 218x178 batch's
    ~2 GB of activations was still given back between steps, and step times swung
    p90/p10 1.5-1.7 instead of 1.1-1.2. Returns True when the settings were applied.
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except (OSError, AttributeError):
        return False
    _done = ok
    return ok


def quiet_openmp() -> None:
    """Keep idle OpenMP threads from starving the UI; must run before torch is imported.

    OMP_WAIT_POLICY=PASSIVE (sleep at once) cost 9% of training speed here (270 vs 298
    images/s on faces64); a short spin before sleeping (GOMP_SPINCOUNT, libgomp's knob,
    which torch's Linux wheels use) keeps the speed and still frees the core within
    microseconds. A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
    """
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = "10000"
        _set_for_the_ui.append("GOMP_SPINCOUNT")


def training_environment() -> dict[str, str]:
    """This process's environment without what quiet_openmp set for the UI: what a trainer it starts gets."""
    return {k: v for k, v in os.environ.items() if k not in _set_for_the_ui}


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags as /proc/cpuinfo lists them (empty where there is no such file), read once."""
    try:
        with open("/proc/cpuinfo") as fh:
            return frozenset(next((line for line in fh if line.startswith("flags")), "").partition(":")[2].split())
    except OSError:
        return frozenset()


def native_bf16(device) -> bool:
    """Does this device compute bf16 natively (AMX or AVX512-BF16 on the CPU; Ampere or newer on CUDA)?"""
    if device.type == "cuda":
        import torch

        return bool(torch.cuda.is_bf16_supported())
    flags = cpu_flags()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(precision: str, device) -> str:
    """'auto' -> bf16 where it is native (measured 1.5-1.9x fp32 on this network, loss within 1%), else fp32."""
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"
