"""Training BatchNorm and the activation after it, fused: one kernel for bf16 channels_last tensors on the CPU.

At 218x178 in bf16 the seed decoder's last BatchNorm and LeakyReLU are memory-bound passes over a 64x32x218x178
tensor: PyTorch's BatchNorm reads its input twice and writes once, the activation reads and writes again, and
the backward repeats both (~1.9 GB a step). Fused, the forward reads the input twice and writes once (statistics,
then y = act(x·a + b)), and the backward reads the gradient and the input twice and writes once, recomputing the
activation's slope from the input (~1.3 GB). At full size, 2 threads, bf16: forward 32 vs 61 ms, forward and
backward 76 vs 132–305 ms; the seed network's step at 218x178 went from 1.46x to 1.71x the tuned bf16 loop
(bench/README.md, Training). Its sums are kept in fp32 over blocks of 1,024 rows,
then the blocks in order in double (the same numbers for any number of threads): against a float64 reference its bias gradient is off by 0.001 where PyTorch's bf16 BatchNorm is
off by 78 of 3,460, and its input gradient by 0.008 where PyTorch's is off by 2.4 (tests/unit/models/test_bnact.py).

The kernel (bnact.cpp, shipped with the package) is compiled once per machine with torch's C++ extension builder
(ninja and a C++ compiler) into torch's extension folder ($TORCH_EXTENSIONS_DIR, else ~/.cache/torch_extensions),
keyed by its source, torch's version and the CPU's flags; where
it cannot be built the layers run PyTorch's own ops, as before. `NormBlock` (vaetui.models.convgrad) uses it while
its BatchNorm normalises by batch statistics on a bf16 channels_last CPU tensor.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import torch
from torch import nn

SOURCE = Path(__file__).with_name("bnact.cpp")
FUNCTIONS = ("stats", "apply", "back_sums", "back_apply")
DECLARATIONS = """
std::vector<torch::Tensor> stats(torch::Tensor x2d);
torch::Tensor apply(torch::Tensor x2d, torch::Tensor scale, torch::Tensor shift, double slope);
std::vector<torch::Tensor> back_sums(torch::Tensor g2d, torch::Tensor x2d, torch::Tensor scale, torch::Tensor shift,
                                     double slope);
torch::Tensor back_apply(torch::Tensor g2d, torch::Tensor x2d, torch::Tensor scale, torch::Tensor shift, double slope,
                         torch::Tensor k1, torch::Tensor k2, torch::Tensor k3);
"""
STALE_LOCK_S = 600  # a build lock older than this was left by a process killed while building: removed
_lock = threading.Lock()
_built: dict[str, object] = {}  # "ext": the module, or "error": why it could not be built (once a process)


def extension():
    """The compiled kernel, built on first use (once per machine: later processes load it), or None where it cannot
    be built (no compiler or ninja: the reason is in `unavailable()`)."""
    with _lock:
        if "ext" not in _built and "error" not in _built:
            try:
                _built["ext"] = _build()
            except Exception as exc:  # noqa: BLE001 - any failure to build means PyTorch's own ops, never a crash
                _built["error"] = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"
        return _built.get("ext")


def unavailable() -> str | None:
    """Why the kernel could not be built in this process, or None."""
    return _built.get("error")


def _build():
    import logging

    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "no CUDA runtime": not a CPU build's
    from torch.utils.cpp_extension import load_inline

    import os

    from vaetui.runtime import cpu_flags

    text = SOURCE.read_text()
    key = "\n".join([text, torch.__version__, " ".join(sorted(cpu_flags()))])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    # torch's own folder for built extensions (a machine's, not a user's data: $VAETUI_CACHE_DIR does not move it);
    # -march=native: a home shared by two CPU types gets two builds
    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions")
    folder = root / f"vaetui-bnact-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / "lock"
    if lock.exists() and time.time() - lock.stat().st_mtime > STALE_LOCK_S:
        lock.unlink(missing_ok=True)
    return load_inline(f"vaetui_bnact_{digest}", cpp_sources=[DECLARATIONS, text], functions=list(FUNCTIONS),
                       extra_cflags=["-O3", "-march=native", "-fopenmp", "-ffp-contract=off"], extra_ldflags=["-fopenmp"],
                       build_directory=str(folder), verbose=False)


def applies(x: torch.Tensor, norm: nn.Module, act: nn.Module | None) -> bool:
    """Whether the fused kernel computes norm then act on x: a plain BatchNorm2d normalising by the batch's statistics
    with an exponential running average, a LeakyReLU or ReLU, a bf16 channels_last CPU tensor."""
    return (type(norm) is nn.BatchNorm2d and norm.training and norm.affine and norm.running_mean is not None
            and norm.momentum is not None and type(act) in (nn.LeakyReLU, nn.ReLU) and x.device.type == "cpu"
            and x.dtype == torch.bfloat16 and x.dim() == 4 and x.shape[2] * x.shape[3] > 1
            and x.is_contiguous(memory_format=torch.channels_last) and extension() is not None)


def slope_of(act: nn.Module) -> float:
    return float(act.negative_slope) if isinstance(act, nn.LeakyReLU) else 0.0


def batch_norm_act(x: torch.Tensor, norm: nn.BatchNorm2d, act: nn.Module) -> torch.Tensor:
    """act(norm(x)) in training, fused; updates norm's running statistics as nn.BatchNorm2d does."""
    out, mean, var = _BatchNormAct.apply(x, norm.weight, norm.bias, norm.eps, slope_of(act))
    with torch.no_grad():
        m = x.numel() // x.shape[1]
        norm.num_batches_tracked.add_(1)
        norm.running_mean.mul_(1 - norm.momentum).add_(mean.to(norm.running_mean.dtype), alpha=norm.momentum)
        unbiased = var * (m / (m - 1))
        norm.running_var.mul_(1 - norm.momentum).add_(unbiased.to(norm.running_var.dtype), alpha=norm.momentum)
    return out


def _rows(t: torch.Tensor) -> torch.Tensor:
    """A channels_last (N, C, H, W) tensor as its (N·H·W, C) rows: a view (a copy only for odd strides)."""
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1]).contiguous()


class _BatchNormAct(torch.autograd.Function):
    """y = act(γ (x − μ) / √(σ² + ε) + β) with the batch's μ and (biased) σ²; returns (y, μ, σ²)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps, slope):
        ext = extension()
        n, c, h, w = x.shape
        rows = _rows(x)
        m = rows.shape[0]
        s, q = ext.stats(rows)
        mean = s / m
        var = (q / m - mean * mean).clamp_min(0.0)
        invstd = (var + eps).rsqrt()
        scale = weight.detach().double() * invstd
        shift = bias.detach().double() - mean * scale
        scale, shift = scale.float(), shift.float()
        y = ext.apply(rows, scale, shift, slope).view(n, h, w, c).permute(0, 3, 1, 2)
        ctx.save_for_backward(x, weight, mean, invstd, scale, shift)
        ctx.slope = slope
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    def backward(ctx, grad, _mean_grad, _var_grad):
        x, weight, mean, invstd, scale, shift = ctx.saved_tensors
        ext = extension()
        n, c, h, w = x.shape
        rows = _rows(x)
        g = _rows(grad.contiguous(memory_format=torch.channels_last).to(x.dtype))
        m = rows.shape[0]
        sum_g, sum_gx = ext.back_sums(g, rows, scale, shift, ctx.slope)  # g' = grad · act'(pre-activation)
        d_bias = sum_g
        d_weight = invstd * (sum_gx - mean * sum_g)  # Σ g' x̂
        wd = weight.detach().double()
        # dx = γ/σ · (g' − Σg'/m − x̂ Σg'x̂/m), x̂ = (x − μ)/σ: per channel, g'·k1 + x·k2 + k3
        k1 = wd * invstd
        k2 = -wd * invstd * invstd * d_weight / m
        k3 = -wd * invstd * sum_g / m + wd * invstd * invstd * d_weight * mean / m
        dx = ext.back_apply(g, rows, scale, shift, ctx.slope, k1.float(), k2.float(), k3.float())
        dx = dx.view(n, h, w, c).permute(0, 3, 1, 2)
        return dx, d_weight.to(weight.dtype), d_bias.to(weight.dtype), None, None
