import math

import pytest
import torch
import torch.nn.functional as F

from vaetui.models.losses import (
    beta_at, bernoulli_nll, bits_per_dim, gaussian_nll, kl_divergence, kl_per_dim, nats_per_dim, vae_loss,
)
from vaetui.models.vae import ConvVAE


def test_closed_form_kl_matches_monte_carlo(gen):
    mu = torch.tensor([[0.5, -1.0, 2.0]])
    logvar = torch.tensor([[0.0, -1.5, 0.7]])
    closed = float(kl_divergence(mu, logvar))
    std = torch.exp(0.5 * logvar)
    z = mu + std * torch.randn(400_000, 3, generator=gen)
    log_q = torch.distributions.Normal(mu, std).log_prob(z).sum(1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    mc = float((log_q - log_p).mean())
    assert abs(closed - mc) < 0.02 * closed + 0.01


def test_kl_per_dim_sums_to_kl_and_is_zero_at_prior():
    mu, logvar = torch.randn(4, 7), torch.randn(4, 7)
    assert torch.allclose(kl_per_dim(mu, logvar).sum(1), kl_divergence(mu, logvar))
    assert float(kl_divergence(torch.zeros(1, 5), torch.zeros(1, 5))) == 0.0


def test_bce_sum_matches_torch(gen):
    logits = torch.randn(3, 3, 8, 8, generator=gen)
    x = torch.rand(3, 3, 8, 8, generator=gen)
    ours = bernoulli_nll(logits, x).sum()
    theirs = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum")
    assert torch.allclose(ours, theirs, rtol=1e-5)


def test_bce_is_finite_for_saturated_logits():
    logits = torch.tensor([[[[1000.0, -1000.0]]]])
    x = torch.tensor([[[[0.0, 1.0]]]])
    assert torch.isfinite(bernoulli_nll(logits, x)).all()


def test_bce_gradient_in_float64_and_as_torch_s_in_bf16(gen):
    logits = (4 * torch.randn(2, 3, 5, 4, generator=gen, dtype=torch.float64)).requires_grad_()
    x = torch.rand(2, 3, 5, 4, generator=gen, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(bernoulli_nll, (logits, x))
    low = logits.detach().to(torch.bfloat16).requires_grad_()
    stock = low.detach().clone().requires_grad_()
    weights = torch.tensor([1.0, -2.0])  # a per-image weight reaches each image's pixels
    (bernoulli_nll(low, x.detach()) * weights).sum().backward()
    (F.binary_cross_entropy_with_logits(stock.float(), x.detach().float(), reduction="none").flatten(1).sum(1)
     * weights).sum().backward()
    assert low.grad.dtype == torch.bfloat16
    torch.testing.assert_close(low.grad, stock.grad, rtol=1e-2, atol=1e-2)


def test_bce_gradient_is_finite_for_saturated_logits():
    logits = torch.tensor([[[[1000.0, -1000.0, 1000.0]]]], requires_grad=True)
    x = torch.tensor([[[[0.0, 1.0, 1.0]]]])
    loss = bernoulli_nll(logits, x)
    loss.sum().backward()
    torch.testing.assert_close(loss, torch.tensor([2000.0]))
    torch.testing.assert_close(logits.grad, torch.tensor([[[[1.0, -1.0, 0.0]]]]))


def test_gaussian_nll_matches_torch_normal(gen):
    logits = torch.randn(2, 3, 4, 4, generator=gen)
    x = torch.rand(2, 3, 4, 4, generator=gen)
    expected = -torch.distributions.Normal(torch.sigmoid(logits), 0.1).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(gaussian_nll(logits, x, 0.1), expected, rtol=1e-4)


def test_beta_warmup_is_linear():
    assert beta_at(0, 0.3, 100) == 0.0
    assert beta_at(50, 0.3, 100) == pytest.approx(0.15)
    assert beta_at(500, 0.3, 100) == pytest.approx(0.3)
    assert beta_at(0, 0.3, 0) == pytest.approx(0.3)


def test_units():
    dims = 3 * 64 * 64
    assert nats_per_dim(dims * 2.0, dims) == pytest.approx(2.0)
    assert bits_per_dim(dims * math.log(2), dims) == pytest.approx(1.0)


@pytest.mark.parametrize("size", [(32, 32), (64, 64), (128, 128), (218, 178)])
def test_loss_shapes_through_the_model(size):
    model = ConvVAE(size, hidden=4, latent=3)
    x = torch.rand(2, 3, *size)
    out = model(x)
    terms = vae_loss(out.logits, x, out.mu, out.logvar, beta=0.3)
    assert terms.loss.shape == () and torch.isfinite(terms.loss)
    assert terms.count == 2
    expected = (terms.recon_sum + 0.3 * terms.kl_sum) / 2
    assert torch.allclose(terms.loss.detach(), expected)
    terms.loss.backward()
    assert model.encoder[0][0].weight.grad is not None


def test_discretized_gaussian_is_a_probability_over_the_256_values():
    """Summed over every 8-bit value a pixel can take, the discretised likelihood is 1 (a proper PMF)."""
    import math

    import torch

    from vaetui.models.losses import discretized_gaussian_nll

    values = torch.arange(256, dtype=torch.float32) / 255.0
    for mean in (0.0, 0.3, 0.999):
        logit = torch.logit(torch.tensor(mean).clamp(1e-4, 1 - 1e-4))
        x = values.view(256, 1, 1, 1)
        logits = logit.expand_as(x)
        p = torch.exp(-discretized_gaussian_nll(logits, x))
        assert abs(float(p.sum()) - 1.0) < 1e-4
        # and the most likely value is the one nearest the mean
        assert abs(float(values[p.argmax()]) - mean) <= 1 / 255 + 1e-6
    assert math.isfinite(float(discretized_gaussian_nll(torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)).sum()))
