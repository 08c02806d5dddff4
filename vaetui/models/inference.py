"""A network readied for forward passes only: BatchNorm folded into the convolution before it, activations in place.

In eval mode a BatchNorm after a convolution is a per-channel affine map with fixed numbers, so it can live in
the convolution's own weights and bias: y = γ (W x + b − μ) / √(σ² + ε) + β = W' x + b' with
W' = W · γ / √(σ² + ε) per output channel and b' = (b − μ) γ / √(σ² + ε) + β. What it saves is memory traffic:
at 64x64 in bf16 on a 2-core CPU, BatchNorm and the activation after it were half of `vaetui eval`'s time
(each a full pass over the decoder's largest tensors, 2.9 and 3.7 ms a call against the convolution's 3.6),
and the same passes are most of what an explore screen waits for on a 218x178 run. The activations after a
folded convolution write into its output (a fresh tensor no one else holds). The network is then laid out
channels_last, as training runs it, and its two forward methods (`encode`, `decode_logits`, through which every
other one goes) run in the run's precision (bf16 autocast where it trained so and the machine has it), their
outputs given back in fp32. On a 218x178 seed network (2-core AVX-512 host, 16 reconstructions / 64 samples):
273 / 1,087 ms as loaded, 61 / 226 ms readied.

Only `conv → BatchNorm` pairs inside an `nn.Sequential` are folded (the seed network's blocks, its families'
encoders and decoders, a user's model written the same way); anything else is left as it is, so a network this
does not understand runs exactly as before. Never for training: the copy has no BatchNorm to update.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext

import torch
from torch import nn

_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.SiLU, nn.ReLU6, nn.ELU, nn.Hardtanh)


READY = "_vaetui_inference"  # set on a readied model: readying it again returns it as it is


def for_inference(model: nn.Module, precision: str = "fp32", copy_first: bool = True) -> nn.Module:
    """`model` (or, copy_first=False, the model itself, changed in place) with its conv → BatchNorm pairs folded,
    channels_last, in eval mode, its forward passes in `precision` (fp32, bf16, or fp16 on CUDA). A model that
    cannot be copied is returned in eval mode, otherwise unchanged; one readied for this precision as it is."""
    ready = getattr(model, READY, None)
    if ready == precision:
        return model
    if copy_first:
        try:
            model = copy.deepcopy(model)
        except Exception:  # noqa: BLE001 - a user's model may hold what cannot be copied: run it as it is
            return model.eval()
    if ready is not None:  # readied for another precision: its own methods back first
        for name in ("encode", "decode_logits"):
            model.__dict__.pop(name, None)
    model.eval()
    with torch.no_grad():
        for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
            _fold_sequence(seq)
    model.to(memory_format=torch.channels_last)
    device = next(model.parameters()).device
    if not isinstance(precision_context(precision, device), nullcontext):
        for name in ("encode", "decode_logits"):  # on the instance: every caller, every thread, gets them
            setattr(model, name, _InPrecision(getattr(model, name), precision))
    setattr(model, READY, precision)
    return model


def precision_context(precision: str, device: torch.device):
    """The forward passes' precision: bf16 autocast, fp16 autocast on CUDA, fp32 otherwise."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return nullcontext()


class _InPrecision:
    """A forward method run under autocast, its tensors given back in fp32 (a callable object, not a closure, so
    that a deep copy of the model calls the copy's method)."""

    def __init__(self, method, precision: str):
        self.method, self.precision = method, precision

    def __call__(self, *args, **kwargs):
        device = next(self.method.__self__.parameters()).device
        with precision_context(self.precision, device):
            out = self.method(*args, **kwargs)
        return _to_fp32(out)


def _to_fp32(out):
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, tuple):
        return tuple(_to_fp32(t) for t in out)
    return out


def _fold_sequence(seq: nn.Sequential) -> None:
    names = list(seq._modules)
    for i in range(len(names) - 1):
        conv, bn = seq._modules[names[i]], seq._modules[names[i + 1]]
        if _foldable(conv, bn):
            fold_batchnorm(conv, bn)
            seq._modules[names[i + 1]] = nn.Identity()
            after = seq._modules[names[i + 2]] if i + 2 < len(names) else None
            if isinstance(after, _ACTIVATIONS) and hasattr(after, "inplace"):
                after.inplace = True


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and type(bn) is nn.BatchNorm2d
            and conv.groups == 1 and bn.running_mean is not None and bn.running_var is not None
            and bn.num_features == conv.out_channels)


def fold_batchnorm(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> None:
    """Fold an eval-mode BatchNorm into the convolution before it, in place (the convolution gains a bias)."""
    scale = bn.running_var.double().add(bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    bias = conv.bias.double() * scale + shift if conv.bias is not None else shift
    # the output channels: dim 0 of a convolution's weight, dim 1 of a transposed convolution's
    view = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
    weight = conv.weight.double() * scale.view(view)
    conv.weight.copy_(weight.to(conv.weight.dtype))
    if conv.bias is None:
        conv.bias = nn.Parameter(bias.to(conv.weight.dtype), requires_grad=conv.weight.requires_grad)
    else:
        conv.bias.copy_(bias.to(conv.bias.dtype))
