"""vaetui.models.bnact: training BatchNorm + LeakyReLU/ReLU in one kernel (bf16, channels_last, CPU).

Checked against the same layers in float64: the output, every gradient and the running statistics; against
PyTorch's own bf16 BatchNorm, whose sums lose what ours keep; and where it is used (NormBlock) and not.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vaetui.models import bnact, convgrad
from vaetui.models.vae import ConvVAE

BF16, CL = torch.bfloat16, torch.channels_last


def _case(shape, gen):
    x = (torch.randn(*shape, generator=gen) * 2 + 0.5).to(BF16).contiguous(memory_format=CL)
    g = torch.randn(*shape, generator=gen).to(BF16).contiguous(memory_format=CL)
    return x, g


def _layers(c, act, gen):
    norm = nn.BatchNorm2d(c, momentum=0.3)
    with torch.no_grad():
        norm.weight.copy_(torch.rand(c, generator=gen) + 0.5)
        norm.bias.copy_(torch.randn(c, generator=gen))
        norm.running_mean.copy_(torch.randn(c, generator=gen))
        norm.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
    return norm.train(), act


def _run(x, g, norm, act, fused: bool):
    x = x.detach().requires_grad_()
    y = bnact.batch_norm_act(x, norm, act) if fused else act(norm(x))
    y.backward(g)
    return y.detach().double(), x.grad.double(), norm.weight.grad.double(), norm.bias.grad.double()


def test_the_kernel_builds_here():
    assert bnact.extension() is not None, bnact.unavailable()


@pytest.mark.parametrize("act", [nn.LeakyReLU(), nn.LeakyReLU(0.2), nn.ReLU()], ids=["leaky", "leaky0.2", "relu"])
def test_output_gradients_and_running_statistics_are_the_float64_layers(act):
    import copy

    gen = torch.Generator().manual_seed(0)
    x, g = _case((6, 16, 23, 17), gen)
    norm, _ = _layers(16, act, gen)
    ref = copy.deepcopy(norm).double()
    want = _run(x.double(), g.double(), ref, act, fused=False)
    got = _run(x, g, norm, act, fused=True)
    for name, a, b in zip(("y", "dx", "dweight", "dbias"), got, want):
        scale = float(b.abs().max())
        # y and dx are bf16 (8 bits of mantissa): within two roundings; the parameter gradients are fp32 sums
        tol = 2 ** -7 * scale if name in ("y", "dx") else 1e-4 * scale
        assert float((a - b).abs().max()) <= tol, name
    torch.testing.assert_close(norm.running_mean.double(), ref.running_mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(norm.running_var.double(), ref.running_var, rtol=1e-5, atol=1e-5)
    assert int(norm.num_batches_tracked) == int(ref.num_batches_tracked) == 1


def test_its_sums_keep_what_pytorch_s_bf16_batchnorm_loses():
    """Over 16x32x110x90 values, the parameter gradients' error to float64: PyTorch's bf16 BatchNorm backward is
    ~40x further off here (and 13.5 of 1,438 in the bias gradient at batch 64, 78 of 3,460 at 64x32x218x178), the
    fused kernel's sums stay at fp32 rounding. (The input gradient is bf16 either way: both within its rounding.)"""
    import copy

    gen = torch.Generator().manual_seed(1)
    x, g = _case((16, 32, 110, 90), gen)
    act = nn.LeakyReLU()
    norm, _ = _layers(32, act, gen)
    native, ref = copy.deepcopy(norm), copy.deepcopy(norm).double()
    want = _run(x.double(), g.double(), ref, act, fused=False)
    fused = _run(x, g, norm, act, fused=True)
    plain = _run(x, g, native, act, fused=False)
    for i in (2, 3):  # dweight, dbias
        assert float((fused[i] - want[i]).abs().max()) < 0.1 * float((plain[i] - want[i]).abs().max())


def test_norm_block_uses_it_where_it_applies_and_pytorch_s_ops_elsewhere(monkeypatch):
    calls = []
    real = bnact.batch_norm_act
    monkeypatch.setattr(bnact, "batch_norm_act", lambda *a: calls.append(a[0].dtype) or real(*a))
    model = ConvVAE((32, 32), hidden=8, latent=4).to(memory_format=CL)
    x = torch.rand(4, 3, 32, 32).contiguous(memory_format=CL)
    with torch.autocast("cpu", dtype=BF16):
        model(x).logits.float().sum().backward()
    assert calls == [BF16] * 8  # every block, encoder and decoder
    calls.clear()
    model(x).logits.float().sum().backward()  # fp32: PyTorch's ops
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=BF16):
        model(x)  # running statistics: PyTorch's ops
    assert calls == []


def test_without_the_kernel_the_layers_are_pytorch_s_own(monkeypatch):
    """A machine without a C++ compiler: the build fails once, is said, and the block runs as nn.Sequential."""
    monkeypatch.setattr(bnact, "_built", {})
    monkeypatch.setattr(bnact, "_build", lambda: (_ for _ in ()).throw(RuntimeError("Ninja is required\nmore")))
    torch.manual_seed(0)
    block = convgrad.NormBlock(convgrad.Conv2d(3, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.LeakyReLU())
    plain = nn.Sequential(*[layer for layer in block])
    x = torch.rand(2, 8, 9, 9).to(BF16).contiguous(memory_format=CL)
    assert not bnact.applies(x, block[1], block[2])
    assert bnact.unavailable() == "RuntimeError: Ninja is required"
    x = torch.rand(2, 3, 9, 9).contiguous(memory_format=CL)
    with torch.no_grad(), torch.autocast("cpu", dtype=BF16):
        torch.testing.assert_close(block(x), plain(x))


def test_training_says_when_the_kernel_cannot_be_built(monkeypatch):
    from vaetui.train import setup

    cpu = torch.device("cpu")
    assert setup._fused_kernel_note(cpu, "fp32") is None  # fp32 does not use it: nothing built, nothing said
    assert bnact.extension() is not None
    assert setup._fused_kernel_note(cpu, "bf16") is None  # built (or loaded) already in this process: quiet
    monkeypatch.setattr(bnact, "_built", {})
    monkeypatch.setattr(bnact, "_build", lambda: (_ for _ in ()).throw(OSError("g++: not found")))
    note = setup._fused_kernel_note(cpu, "bf16")
    assert "could not be built (OSError: g++: not found)" in note and "PyTorch's ops instead" in note
