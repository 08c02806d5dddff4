"""Convolutions whose bias gradient is a plain sum: the same layers, a faster backward on CPU.

On CPU PyTorch hands a convolution's whole backward to oneDNN, and when the bias needs a
gradient oneDNN's kernels get much slower (batch 64, channels_last, 2 threads, fp32): the
seed decoder's full-size transposed convolution takes 300-450 ms for input, weight and bias
gradients together, 154 ms for input and weight alone, and the bias gradient, the sum of
the output gradient over batch and space, takes 8 ms more. The same holds for the first
encoder convolution (45 vs 11 ms) and, less, for the other transposed convolutions.

`Conv2d` and `ConvTranspose2d` here are `torch.nn`'s layers (same parameters, same
state_dict, same forward) whose backward asks oneDNN for the input and weight gradients
only and sums the bias gradient itself (accumulating in fp32). On other devices (cuDNN's bias gradient is
fine) and without gradients they are the stock layers. Under autocast the inputs are cast the way
autocast casts a convolution, outside the custom function, so its backward runs in the
lower precision too. The weight gradient of a narrow 'same' convolution (the seed's last, 32 -> 3, stride 1) can
also be one matrix product of the shifted output gradient (`weight_grad_by_shifts`): which of the two is faster
depends on the CPU and oneDNN's build (by shifts: 1.6x faster in bf16 on one AMX host, 2.2x slower on another;
2.3x faster in fp32 on an AVX2-only one), so the first backward of each shape times both and keeps the faster, as
cuDNN's benchmark mode does (`_by_shifts`).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

_backward = torch.ops.aten.convolution_backward


class _ConvSplitBias(torch.autograd.Function):
    """y = conv(x, w) + b, whose backward takes the bias gradient out of oneDNN's hands."""

    @staticmethod
    def forward(ctx, x, weight, bias, transposed, stride, padding, output_padding, dilation, groups,
                bias_cancels=False):
        ctx.save_for_backward(x, weight)
        ctx.conf = (transposed, stride, padding, output_padding, dilation, groups)
        ctx.bias_cancels = bias_cancels
        if transposed:
            return F.conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation)
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        transposed, stride, padding, output_padding, dilation, groups = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if need_x or need_w:
            grad = grad.contiguous(memory_format=_memory_format(x))
            by_shifts = need_w and _by_shifts(grad, x, weight, ctx.conf)
            grad_x, grad_w, _ = _backward(grad, x, weight, None, list(stride), list(padding), list(dilation),
                                          transposed, list(output_padding), groups,
                                          [need_x, need_w and not by_shifts, False])
            if by_shifts:
                grad_w = weight_grad_by_shifts(grad, x, weight, padding)
        if need_b and ctx.bias_cancels:  # a BatchNorm on the batch's statistics follows: exactly zero (NormBlock)
            grad_b = grad.new_zeros(grad.shape[1])
        elif need_b:
            # in grad's own dtype: CPU sums of bf16/fp16 accumulate in fp32 and round once at the end (the same
            # numbers as summing to fp32 and casting), while sum(dtype=float32) first copies the whole gradient
            # to fp32 (65 ms at full size in bf16, against 4)
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None, None, None, None, None


def _narrow_same(grad, weight, transposed, stride, padding, output_padding, dilation, groups) -> bool:
    """A 'same' stride-1 convolution to a few channels (the seed's last, 32 -> 3): where the weight gradient by shifts
    applies and can win (its operand is taps x out channels rows)."""
    return (not transposed and groups == 1 and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
            and all(k % 2 == 1 and p == k // 2 for k, p in zip(weight.shape[2:], padding))
            and weight.shape[0] * weight.shape[2] * weight.shape[3] <= 32)


_FASTER: dict[tuple, bool] = {}  # (shapes, dtype, layout) -> whether the weight gradient by shifts won its timing
TIMING_MARGIN = 0.95  # by shifts is kept only when this much faster (a tie keeps oneDNN's)


def _by_shifts(grad, x, weight, conf) -> bool:
    """Whether this backward takes the weight gradient by shifts: timed once per shape and layout in a process."""
    if not _narrow_same(grad, weight, *conf):
        return False
    key = (tuple(grad.shape), tuple(x.shape), tuple(weight.shape), grad.dtype, _memory_format(x))
    if key not in _FASTER:
        padding, dilation = conf[2], conf[4]
        onednn = lambda: _backward(grad, x, weight, None, [1, 1], list(padding), list(dilation), False,  # noqa: E731
                                   [0, 0], 1, [False, True, False])
        shifts = lambda: weight_grad_by_shifts(grad, x, weight, padding)  # noqa: E731
        _FASTER[key] = _timed(shifts) < TIMING_MARGIN * _timed(onednn)
    return _FASTER[key]


def _timed(work, repeats: int = 3) -> float:
    """The fastest of a few runs of work(), after one to warm it up (seconds)."""
    work()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - t)
    return best


def weight_grad_by_shifts(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, padding) -> torch.Tensor:
    """The weight gradient of a stride-1 'same' convolution as one matrix product.

    dW[o, c, a, b] = sum over n, u, v of x[n, c, u, v] * grad[n, o, u + p - a, v + q - b] (zero outside): the
    output gradient shifted once per kernel tap, stacked into (taps * O, N*H*W), times x as (N*H*W, C).
    """
    out, cin, kh, kw = weight.shape
    ph, pw = padding
    n, _, h, w = x.shape
    padded = F.pad(grad.permute(1, 0, 2, 3), (pw, pw, ph, ph))  # (O, N, H + 2p, W + 2q)
    shifted = grad.new_empty((kh, kw, out, n, h, w))
    for a in range(kh):
        for b in range(kw):
            shifted[a, b] = padded[:, :, 2 * ph - a: 2 * ph - a + h, 2 * pw - b: 2 * pw - b + w]
    rows = x.permute(0, 2, 3, 1).reshape(-1, cin)  # a view when x is channels_last, else a copy
    product = shifted.view(kh * kw * out, -1) @ rows
    return product.view(kh, kw, out, cin).permute(2, 3, 0, 1).contiguous(memory_format=_memory_format(weight))


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() \
        else torch.contiguous_format


def _split(x: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """Whether the bias-split backward applies: a CPU convolution with a bias that needs a gradient."""
    return bias is not None and x.device.type == "cpu" and torch.is_grad_enabled() and bias.requires_grad


def _cast(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """What autocast does to a convolution's arguments (here, before the custom function sees them)."""
    if not torch.is_autocast_enabled("cpu"):
        return tensors
    dtype = torch.get_autocast_dtype("cpu")
    return tuple(t.to(dtype) for t in tensors)


def _call(x, weight, bias, *conf, bias_cancels=False):
    x, weight, bias = _cast(x, weight, bias)
    with torch.autocast("cpu", enabled=False):
        return _ConvSplitBias.apply(x, weight, bias, *conf, bias_cancels)


class Conv2d(nn.Conv2d):
    """nn.Conv2d with the bias gradient summed outside oneDNN on CPU (see the module's docstring)."""

    def forward(self, x: torch.Tensor, bias_cancels: bool = False) -> torch.Tensor:
        if self.padding_mode != "zeros" or not isinstance(self.padding, tuple) or not _split(x, self.bias):
            return super().forward(x)
        return _call(x, self.weight, self.bias, False, self.stride, self.padding, (0, 0), self.dilation, self.groups,
                     bias_cancels=bias_cancels)


class ConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d with the bias gradient summed outside oneDNN on CPU (see the module's docstring)."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None, bias_cancels: bool = False
                ) -> torch.Tensor:
        if output_size is not None or not _split(x, self.bias):
            return super().forward(x, output_size)
        return _call(x, self.weight, self.bias, True, self.stride, self.padding, self.output_padding,
                     self.dilation, self.groups, bias_cancels=bias_cancels)


class NormBlock(nn.Sequential):
    """convolution → BatchNorm → activation (the seed network's blocks: the same modules, state_dict and outputs as
    nn.Sequential). While the BatchNorm normalises by the batch's own statistics (training), a constant added to a
    channel of the convolution's output is taken out again: the convolution's bias does not move the loss and its
    gradient is exactly zero, so it is given as zero instead of summed from the output gradient (26 ms of a 657 ms
    bf16 step at 218x178 on 2 cores: the sum is a full pass over the largest gradient). With running statistics
    (eval mode) the bias gradient is summed as usual. The BatchNorm and the activation after it run as one kernel
    where vaetui.models.bnact applies (training, bf16, channels_last, on the CPU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from vaetui.models import bnact

        layers = list(self)
        conv, norm = layers[0], layers[1] if len(layers) > 1 else None
        cancels = isinstance(norm, nn.modules.batchnorm._BatchNorm) and (norm.training or norm.running_mean is None)
        x = conv(x, bias_cancels=True) if cancels and isinstance(conv, (Conv2d, ConvTranspose2d)) else conv(x)
        rest = layers[1:]
        if len(rest) >= 2 and bnact.applies(x, rest[0], rest[1]):  # BatchNorm + activation in one kernel
            x, rest = bnact.batch_norm_act(x, rest[0], rest[1]), rest[2:]
        for layer in rest:
            x = layer(x)
        return x
