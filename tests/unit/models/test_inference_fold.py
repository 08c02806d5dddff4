"""vaetui.models.inference: BatchNorm folded into the convolution before it computes what the network computed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vaetui.config.settings import MODELS
from vaetui.models.families import family_of
from vaetui.models.inference import fold_batchnorm, for_inference
from vaetui.models.vae import ConvVAE
from vaetui.runs.checkpoint import load_model, open_model
from vaetui.runs.store import RunStore

from helpers import tiny_config


def _trained_looking(model: nn.Module, gen: torch.Generator) -> nn.Module:
    """Every BatchNorm given statistics and an affine map far from the identity a fresh one has (a fold that mixed
    up channels, or the transposed convolution's weight axes, would then change the output)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen))
            m.running_var.copy_(torch.rand(c, generator=gen) * 3 + 0.1)
            m.weight.data.copy_(torch.randn(c, generator=gen))
            m.bias.data.copy_(torch.randn(c, generator=gen))
    return model.eval()


@pytest.mark.parametrize("name", MODELS)
def test_every_family_folded_encodes_and_decodes_as_before(name):
    gen = torch.Generator().manual_seed(3)
    config = tiny_config(model=name)
    # float64, but the VQ-VAE's codebook search, which runs in float32 whatever the network does
    dtype, tol = (torch.float32, 1e-4) if name == "vqvae" else (torch.float64, 1e-9)
    model = _trained_looking(family_of(config).build(config).to(dtype), gen)
    folded = for_inference(model)
    x = torch.rand(4, 3, *config.data.size, generator=gen, dtype=dtype)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        mu_f, logvar_f = folded.encode(x)
        torch.testing.assert_close(mu_f, mu, rtol=tol, atol=tol)
        if logvar is not None:
            torch.testing.assert_close(logvar_f, logvar, rtol=tol, atol=tol)
        torch.testing.assert_close(folded.decode_logits(mu), model.decode_logits(mu), rtol=tol, atol=tol)
    # the caller's model is untouched: a copy was folded
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) >= 1 or name == "factorvae"


def test_the_seed_network_keeps_no_batchnorm_and_its_activations_write_in_place():
    model = _trained_looking(ConvVAE((64, 64), hidden=8, latent=4), torch.Generator().manual_seed(0))
    folded = for_inference(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 8  # four blocks each way
    acts = [m for m in folded.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
    assert len(acts) == 8 and all(a.inplace for a in acts)
    assert not any(m.inplace for m in model.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU)))


@pytest.mark.parametrize("transposed", [False, True])
def test_a_convolution_without_a_bias_gains_one(transposed):
    gen = torch.Generator().manual_seed(1)
    conv = (nn.ConvTranspose2d(3, 5, 4, 2, 1, bias=False) if transposed else nn.Conv2d(3, 5, 3, 2, 1, bias=False))
    seq = _trained_looking(nn.Sequential(conv, nn.BatchNorm2d(5)).double(), gen)
    x = torch.randn(2, 3, 9, 7, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        want = seq(x)
        fold_batchnorm(seq[0], seq[1])
        torch.testing.assert_close(seq[0](x), want, rtol=1e-10, atol=1e-10)
    assert seq[0].bias is not None


def test_open_model_gives_the_readied_network_in_the_run_s_precision():
    from vaetui.models.inference import READY
    from vaetui.runtime import resolve_precision

    run = RunStore(include_demo=True).open("demo")
    plain = load_model(run)[0]
    loaded = open_model(run)
    precision = resolve_precision(loaded.config.train.precision, torch.device("cpu"))
    assert getattr(loaded.model, READY) == precision
    assert not any(isinstance(m, nn.BatchNorm2d) for m in loaded.model.modules())
    x = torch.rand(8, 3, *loaded.config.data.size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mu = plain.encode(x)[0]
        tol = 1e-5 if precision == "fp32" else 0.05
        torch.testing.assert_close(loaded.model.decode(mu), plain.decode(mu), rtol=tol, atol=tol)
        torch.testing.assert_close(loaded.model.encode(x)[0], mu, rtol=tol, atol=tol)


def test_a_readied_model_runs_in_its_precision_and_can_be_readied_again_for_another():
    import copy

    gen = torch.Generator().manual_seed(5)
    model = _trained_looking(ConvVAE((32, 32), hidden=8, latent=4), gen)
    x = torch.rand(4, 3, 32, 32, generator=gen)
    fp32 = for_inference(model, "fp32")
    bf16 = for_inference(model, "bf16")
    with torch.no_grad():
        want, got = fp32.encode(x)[0], bf16.encode(x)[0]
        assert got.dtype == torch.float32 and bf16.decode_logits(want).dtype == torch.float32
        assert not torch.equal(got, want)  # it ran in bf16 ...
        torch.testing.assert_close(got, want, rtol=0.05, atol=0.05)  # ... to bf16's precision
        back = for_inference(bf16, "fp32")  # eval --precision fp32 of a model the explore loader readied
        torch.testing.assert_close(back.encode(x)[0], want, rtol=1e-6, atol=1e-6)
        assert for_inference(bf16, "bf16") is bf16
        twin = copy.deepcopy(bf16)  # a copy's methods are the copy's own
        twin.fc_mu.bias.add_(1.0)
        torch.testing.assert_close(twin.encode(x)[0], got + 1.0, rtol=0.05, atol=0.05)
        torch.testing.assert_close(bf16.encode(x)[0], got)
