"""vaetui.models.convgrad: torch.nn's convolutions with the bias gradient summed outside oneDNN.

Each layer is checked against torch.nn's own layer with the same weights: the forward and every
gradient, in fp32 and under bf16 autocast, in both memory formats, with the odd paddings and
output padding the seed's decoder uses; and that the split backward is the one that ran.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vaetui.models import convgrad
from vaetui.models.vae import ConvVAE

LAYERS = {
    "transposed": (lambda cls: cls(8, 6, 4, 2, (2, 1), output_padding=(1, 0)), nn.ConvTranspose2d,
                   convgrad.ConvTranspose2d),
    "conv": (lambda cls: cls(8, 6, 3, 2, 1), nn.Conv2d, convgrad.Conv2d),
    "narrow": (lambda cls: cls(8, 3, 3, 1, 1), nn.Conv2d, convgrad.Conv2d),  # the seed's last: bf16 weight grad by shifts
}


def _pair(kind: str):
    make, stock_cls, split_cls = LAYERS[kind]
    torch.manual_seed(3)
    stock = make(stock_cls)
    split = make(split_cls)
    split.load_state_dict(stock.state_dict())
    return stock, split


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("channels_last", [True, False])
def test_same_outputs_and_gradients_as_torch_nn(kind, precision, channels_last):
    stock, split = _pair(kind)
    x = torch.randn(4, 8, 13, 11)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        ya, yb = stock(xa), split(xb)
    assert "ConvSplitBias" in yb.grad_fn.name()  # the split backward is the one under test
    assert yb.dtype == ya.dtype and yb.shape == ya.shape
    torch.testing.assert_close(yb, ya, rtol=0, atol=0)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    for ours, theirs in ((xb.grad, xa.grad), (split.weight.grad, stock.weight.grad), (split.bias.grad, stock.bias.grad)):
        # bf16: each is a sum of hundreds of bf16 products, rounded to bf16 (an ulp is 0.4% of the
        # value) by kernels that add in different orders: an element that cancels to near 0 differs
        # by an ulp of the terms, so the bound is 2% of the tensor's scale, not of each element
        scale = theirs.abs().max().item()
        tol = {"rtol": 1e-5, "atol": 1e-5} if precision == "fp32" else {"rtol": 2e-2, "atol": 2e-2 * max(scale, 1.0)}
        torch.testing.assert_close(ours, theirs, **tol)
    assert split.bias.grad.dtype == torch.float32  # parameters stay fp32 under autocast


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_bias_gradient_is_the_sum_of_the_output_gradient(kind):
    _, split = _pair(kind)
    split.double()
    x = torch.randn(3, 8, 9, 7, dtype=torch.float64)  # the input needs no gradient: the first encoder layer's case
    y = split(x)
    g = torch.randn_like(y)
    y.backward(g)
    torch.testing.assert_close(split.bias.grad, g.sum((0, 2, 3)), rtol=1e-12, atol=1e-12)
    assert x.grad is None


def test_a_bf16_bias_gradient_over_a_large_output_is_accumulated_in_fp32():
    """A full-size decoder output sums ~2.5M values per channel: summed in bf16 the total would drift by
    percents; accumulated in fp32 and rounded once, it is within one bf16 rounding of the exact sum."""
    _, split = _pair("transposed")
    x = torch.randn(16, 8, 64, 64).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = split(x)
    g = (torch.rand(y.shape) + 0.5).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)  # all > 0
    y.backward(g)
    exact = g.double().sum((0, 2, 3))
    torch.testing.assert_close(split.bias.grad.double(), exact, rtol=2 ** -8, atol=0)


@pytest.mark.parametrize("kernel,padding", [((3, 3), (1, 1)), ((1, 1), (0, 0)), ((5, 3), (2, 1))])
@pytest.mark.parametrize("channels_last", [False, True])
def test_weight_gradient_by_shifts_is_the_convolution_s(kernel, padding, channels_last):
    torch.manual_seed(5)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(3, 5, 11, 8, dtype=torch.float64).contiguous(memory_format=fmt)
    weight = torch.randn(2, 5, *kernel, dtype=torch.float64)
    grad = torch.randn(3, 2, 11, 8, dtype=torch.float64).contiguous(memory_format=fmt)
    _, expected, _ = torch.ops.aten.convolution_backward(grad, x, weight, None, [1, 1], list(padding), [1, 1], False,
                                                         [0, 0], 1, [False, True, False])
    torch.testing.assert_close(convgrad.weight_grad_by_shifts(grad, x, weight, padding), expected, rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("shifts_faster", [True, False])
def test_the_last_convolution_s_weight_gradient_takes_the_way_its_timing_found_faster(monkeypatch, shifts_faster):
    """Timed once per shape and precision (a fake clock here: which way wins is the CPU's), then kept; the gradient is
    the convolution's either way; a layer it does not apply to is never timed."""
    calls, timed = [], []
    real = convgrad.weight_grad_by_shifts
    monkeypatch.setattr(convgrad, "weight_grad_by_shifts", lambda *a: calls.append(a[0].dtype) or real(*a))
    monkeypatch.setattr(convgrad, "_FASTER", {})

    def fake_timed(work):
        timed.append(work)
        shifts = "weight_grad_by_shifts" in work.__code__.co_names
        return 1.0 if shifts == shifts_faster else 2.0

    monkeypatch.setattr(convgrad, "_timed", fake_timed)
    torch.manual_seed(0)
    model = ConvVAE((32, 32), hidden=8, latent=4)
    x = torch.rand(2, 3, 32, 32)
    grads = {}
    for step in range(2):
        for precision in ("fp32", "bf16"):
            model.zero_grad()
            torch.manual_seed(1)  # the same z each time
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = model(x)
            out.logits.float().sum().backward()
            grads[precision] = model.decoder[-1].weight.grad.clone()
    assert len(timed) == 4  # both ways, once for each precision's shape: the second step reuses the choice
    assert calls == ([torch.float32, torch.bfloat16] * 2 if shifts_faster else [])  # the last layer only
    reference = ConvVAE((32, 32), hidden=8, latent=4)
    reference.load_state_dict(model.state_dict())
    monkeypatch.setattr(convgrad, "_FASTER", {})
    monkeypatch.setattr(convgrad, "_narrow_same", lambda *a: False)  # oneDNN's own
    reference.zero_grad()
    torch.manual_seed(1)
    reference(x).logits.float().sum().backward()
    torch.testing.assert_close(grads["fp32"], reference.decoder[-1].weight.grad, rtol=1e-4, atol=1e-4)


def test_gradcheck_in_float64():
    for kind in LAYERS:
        _, split = _pair(kind)
        split.double()
        x = torch.randn(2, 8, 5, 4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x, w, b: convgrad._call(x, w, b, *_conf(split)),
                                        (x, split.weight, split.bias))


def _conf(layer):
    transposed = isinstance(layer, nn.ConvTranspose2d)
    return (transposed, layer.stride, layer.padding, layer.output_padding if transposed else (0, 0),
            layer.dilation, layer.groups)


def test_without_gradients_the_stock_layer_runs():
    _, split = _pair("transposed")
    with torch.no_grad():
        y = split(torch.randn(2, 8, 5, 4))
    assert y.grad_fn is None
    split.bias.requires_grad_(False)
    y = split(torch.randn(2, 8, 5, 4, requires_grad=True))
    assert "ConvSplitBias" not in y.grad_fn.name()


def test_the_seed_network_is_torch_nn_layers_with_the_same_state_dict():
    model = ConvVAE((218, 178), hidden=32, latent=100)
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [type(m).__bases__[0] for m in convs] == [nn.Conv2d] * 4 + [nn.ConvTranspose2d] * 4 + [nn.Conv2d]
    stock = nn.ConvTranspose2d(32, 32, 4, 2, (2, 2))  # the last decoder block's, as torch.nn builds it
    last = model.decoder[3][0]
    assert {k: v.shape for k, v in last.state_dict().items()} == {k: v.shape for k, v in stock.state_dict().items()}
    last.load_state_dict(stock.state_dict())  # checkpoints of the stock layers load unchanged


def _stock_copy(model: ConvVAE) -> ConvVAE:
    """The same network built from torch.nn's own layers and plain Sequentials."""
    import copy

    stock = copy.deepcopy(model)
    for seq in list(stock.modules()):
        if isinstance(seq, nn.Sequential):
            for name, m in list(seq._modules.items()):
                if isinstance(m, convgrad.NormBlock):
                    seq._modules[name] = nn.Sequential(*m)
    for seq in list(stock.modules()):
        for name, m in list(seq._modules.items()):
            if type(m) in (convgrad.Conv2d, convgrad.ConvTranspose2d):
                plain = copy.deepcopy(m)
                plain.__class__ = nn.Conv2d if type(m) is convgrad.Conv2d else nn.ConvTranspose2d
                seq._modules[name] = plain
    assert not any(type(m) in (convgrad.Conv2d, convgrad.ConvTranspose2d, convgrad.NormBlock) for m in stock.modules())
    return stock


@pytest.mark.parametrize("training", [True, False])
def test_a_bias_before_batch_statistics_has_a_zero_gradient_and_the_rest_are_torch_nn_s(training):
    """In float64: torch.nn's own bias gradients before a training BatchNorm are zero but for rounding, vaetui's are
    exactly zero, and every other gradient is torch.nn's; with running statistics (eval mode) they are summed."""
    torch.manual_seed(0)
    model = ConvVAE((32, 32), hidden=4, latent=3).double().train(training)
    stock = _stock_copy(model).train(training)
    x = torch.rand(5, 3, 32, 32, dtype=torch.float64)
    for net in (model, stock):
        torch.manual_seed(1)
        net(x).logits.pow(2).sum().backward()
    before_norm = [name for name, m in model.named_modules() if isinstance(m, convgrad.NormBlock)]
    assert len(before_norm) == 8
    got, want = dict(model.named_parameters()), dict(stock.named_parameters())
    for name, p in got.items():
        g, w = p.grad, want[name].grad
        if training and any(name == f"{block}.0.bias" for block in before_norm):
            assert torch.equal(g, torch.zeros_like(g)), name
            assert float(w.abs().max()) < 1e-9 * float(want[name.replace("bias", "weight")].grad.abs().max()), name
        else:
            torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12, msg=name)
    if not training:
        assert float(got["decoder.3.0.bias"].grad.abs().max()) > 1e-6  # running statistics: the bias counts
