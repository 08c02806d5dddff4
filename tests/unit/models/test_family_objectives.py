"""vaetui.models.families: each family's objective against a hand computation on a small case."""

from __future__ import annotations

import math

import pytest
import torch

from vaetui.config.settings import MODELS
from vaetui.models.families import FAMILIES, family_of
from vaetui.models.losses import reconstruction_nll
from vaetui.models.memory import training_bytes
from vaetui.models.protocol import ModelOutput
from vaetui.models.vae import ConvVAE

from helpers import tiny_config


def _normal_logpdf(z, mu, logvar):  # float64, one term at a time: the textbook density
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / math.exp(logvar))


def test_every_family_the_config_names_has_an_objective():
    assert tuple(FAMILIES) == MODELS
    assert all(family_of(tiny_config(model=name)).name == name for name in MODELS)


def _case(gen, n=3, latent=2, k=1):
    x = torch.rand(n, 3, 8, 8, generator=gen).round()
    mu = torch.randn(n, latent, generator=gen, dtype=torch.float64).float()
    logvar = 0.5 * torch.randn(n, latent, generator=gen, dtype=torch.float64).float()
    z = torch.randn(k * n, latent, generator=gen)
    logits = torch.randn(k * n, 3, 8, 8, generator=gen)
    return x, ModelOutput(logits, mu, logvar, z)


def _single_sample_neg_elbo(x, out, i, row=None, likelihood="bernoulli"):
    """−[log p(x|z) + log p(z) − log q(z|x)] for image i at the code of a row (its own by default), by hand."""
    r = i if row is None else row
    nll = float(reconstruction_nll(out.logits[r:r + 1], x[i:i + 1], likelihood))
    log_p = sum(_normal_logpdf(float(out.z[r, j]), 0.0, 0.0) for j in range(out.z.shape[1]))
    log_q = sum(_normal_logpdf(float(out.z[r, j]), float(out.mu[i, j]), float(out.logvar[i, j]))
                for j in range(out.z.shape[1]))
    return nll - log_p + log_q


def test_iwae_with_one_sample_is_the_single_sample_elbo(gen):
    x, out = _case(gen)
    cfg = tiny_config(model="iwae", iw_samples=1)
    terms = FAMILIES["iwae"].objective(out, x, 1.0, cfg, 1000)
    by_hand = sum(_single_sample_neg_elbo(x, out, i) for i in range(3)) / 3
    assert float(terms.loss) == pytest.approx(by_hand, rel=1e-5)
    assert float(terms.terms["iwae"]) / 3 == pytest.approx(by_hand, rel=1e-5)


def test_iwae_is_the_log_mean_of_the_importance_weights(gen):
    k, n = 4, 3
    x, out = _case(gen, n=n, k=k)
    terms = FAMILIES["iwae"].objective(out, x, 1.0, tiny_config(model="iwae", iw_samples=k), 1000)
    bound = 0.0
    for i in range(n):  # sample-major: image i's k-th code is row k·n + i
        log_w = [-_single_sample_neg_elbo(x, out, i, row=s * n + i) for s in range(k)]
        top = max(log_w)
        bound += -(top + math.log(sum(math.exp(v - top) for v in log_w) / k))
    assert float(terms.loss) == pytest.approx(bound / n, rel=1e-4)
    assert float(terms.recon_sum) == pytest.approx(float(reconstruction_nll(out.logits[:n], x).sum()), rel=1e-6)


def test_beta_tcvae_terms_sum_to_the_sampled_kl_at_unit_weights(gen):
    x, out = _case(gen, n=5, latent=3)
    cfg = tiny_config(model="beta-tcvae", alpha=1.0, gamma=1.0)
    terms = FAMILIES["beta-tcvae"].objective(out, x, 1.0, cfg, 50)
    by_hand = sum(_single_sample_neg_elbo(x, out, i) for i in range(5)) / 5
    assert float(terms.loss) == pytest.approx(by_hand, rel=1e-5)
    parts = sum(float(terms.terms[t]) for t in ("mi", "tc", "dwkl")) / 5
    nll = float(reconstruction_nll(out.logits, x).sum()) / 5
    assert parts == pytest.approx(by_hand - nll, abs=1e-3)


def test_beta_tcvae_estimates_q_z_by_minibatch_weighted_sampling(gen):
    n, big_n = 2, 10
    x, out = _case(gen, n=n, latent=1)
    cfg = tiny_config(model="beta-tcvae", alpha=2.0, gamma=3.0)
    terms = FAMILIES["beta-tcvae"].objective(out, x, 5.0, cfg, big_n)
    z, mu, lv = out.z[:, 0].tolist(), out.mu[:, 0].tolist(), out.logvar[:, 0].tolist()
    mi = tc = dwkl = 0.0
    for i in range(n):
        log_qzx = _normal_logpdf(z[i], mu[i], lv[i])
        log_qz = math.log(sum(math.exp(_normal_logpdf(z[i], mu[m], lv[m])) for m in range(n)) / (big_n * n))
        # one dimension: the product of marginals is q(z) itself, so TC is 0 and the rest is MI and KL to the prior
        mi += log_qzx - log_qz
        dwkl += log_qz - _normal_logpdf(z[i], 0.0, 0.0)
    assert float(terms.terms["mi"]) == pytest.approx(mi, rel=1e-4)
    assert float(terms.terms["tc"]) == pytest.approx(tc, abs=1e-4)
    assert float(terms.terms["dwkl"]) == pytest.approx(dwkl, rel=1e-4)
    nll = float(reconstruction_nll(out.logits, x).sum())
    assert float(terms.loss) == pytest.approx((nll + 2.0 * mi + 5.0 * tc + 3.0 * dwkl) / n, rel=1e-4)


def test_k_samples_are_drawn_per_image_sample_major(gen):
    cfg = tiny_config(latent=4)
    model = ConvVAE.from_config(cfg).eval()
    x = torch.rand(3, 3, 32, 32, generator=gen)
    far_apart = torch.tensor([[0.0] * 4, [100.0] * 4, [200.0] * 4])  # image i's posterior sits at 100·i, σ 0.01
    model.encode = lambda images: (far_apart, torch.full((3, 4), -9.2))
    out = model(x, torch.Generator().manual_seed(0), samples=5)
    assert out.z.shape == (15, 4) and out.logits.shape == (15, 3, 32, 32) and out.mu.shape == (3, 4)
    codes = out.z.view(5, 3, 4)  # sample-major: row s·N + i is image i's s-th code
    for i in range(3):
        assert (codes[:, i] - 100.0 * i).abs().max() < 0.1
    assert codes[:, 0].std(0).min() > 1e-3  # and K different draws of it


def test_iwae_decodes_k_codes_an_image_in_the_memory_estimate():
    vae, iwae = tiny_config(), tiny_config(model="iwae", iw_samples=5)
    one, five = training_bytes(vae), training_bytes(tiny_config(model="iwae", iw_samples=1))
    assert one == five and training_bytes(iwae) > 2 * one


def test_free_bits_belong_to_the_beta_vae():
    from vaetui.errors import ConfigError

    with pytest.raises(ConfigError, match="--model vae"):
        tiny_config(model="iwae", free_bits=0.5)


def test_factorvae_is_the_beta_vae_plus_gamma_times_the_critics_log_odds(gen):
    x, out = _case(gen, n=4, latent=3)
    logits = torch.randn(4, 2, generator=gen)
    out = ModelOutput(out.logits, out.mu, out.logvar, out.z, {"critic_logits": logits})
    cfg = tiny_config(model="factorvae", gamma=7.0)
    terms = FAMILIES["factorvae"].objective(out, x, 0.5, cfg, 100)
    nll = float(reconstruction_nll(out.logits, x).sum())
    kl = sum(0.5 * (m * m + math.exp(v) - 1 - v) for m, v in zip(out.mu.flatten().tolist(), out.logvar.flatten().tolist()))
    tc = float((logits[:, 0] - logits[:, 1]).sum())
    assert float(terms.loss) == pytest.approx((nll + 0.5 * kl + 7.0 * tc) / 4, rel=1e-5)
    assert float(terms.terms["tc"]) == pytest.approx(tc, rel=1e-5)
    assert float(terms.kl_sum) == pytest.approx(kl, rel=1e-5)


def test_the_factorvae_shuffle_keeps_each_dimensions_values_and_breaks_their_pairing():
    from vaetui.models.factorvae import shuffle_dimensions

    z = torch.arange(200.0).view(100, 2)
    z[:, 1] = z[:, 0]  # perfectly correlated dimensions
    s = shuffle_dimensions(z, torch.Generator().manual_seed(0))
    for j in range(2):
        assert torch.equal(s[:, j].sort().values, z[:, j].sort().values)
    assert (s[:, 0] == s[:, 1]).float().mean() < 0.1


def test_the_factorvae_critic_finds_total_correlation_where_there_is_some(gen):
    """The density-ratio trick: trained on codes against their shuffle, the critic's mean log-odds is large for
    dependent dimensions and near 0 for independent ones (whose shuffle is the same distribution)."""
    from vaetui.models.factorvae import FactorVAE

    def estimate(dependent: bool) -> float:
        torch.manual_seed(0)
        model = FactorVAE(image_size=(16, 16), hidden=2, latent=2)
        opt = torch.optim.Adam(model.critic.parameters(), lr=3e-3, betas=FAMILIES["factorvae"].aux_betas)
        g = torch.Generator().manual_seed(1)
        for _ in range(300):
            a = torch.randn(128, 1, generator=g)
            z = torch.cat([a, a + 0.1 * torch.randn(128, 1, generator=g) if dependent else
                           torch.randn(128, 1, generator=g)], 1)
            loss = model.critic_loss(z, g)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            a = torch.randn(2000, 1, generator=g)
            z = torch.cat([a, a + 0.1 * torch.randn(2000, 1, generator=g) if dependent else
                           torch.randn(2000, 1, generator=g)], 1)
            logits = model.critic(z)
        return float((logits[:, 0] - logits[:, 1]).mean())

    # the true TC of the dependent pair: I(a; a + 0.1ε) = ½ log(1 + 1/0.01) ≈ 2.3 nats
    assert estimate(True) > 1.0
    assert abs(estimate(False)) < 0.3


def test_the_vampprior_is_the_mean_of_its_pseudo_inputs_posteriors(gen):
    from vaetui.models.vamp import VampVAE

    z = torch.randn(5, 2, generator=gen)
    means = torch.randn(3, 2, generator=gen)
    logvars = 0.3 * torch.randn(3, 2, generator=gen)
    got = VampVAE.mixture_log_density(z, means, logvars)
    for i in range(5):
        dens = [math.exp(sum(_normal_logpdf(float(z[i, j]), float(means[k, j]), float(logvars[k, j])) for j in range(2)))
                for k in range(3)]
        assert float(got[i]) == pytest.approx(math.log(sum(dens) / 3), rel=1e-5)


def test_vamp_objective_is_recon_plus_beta_times_log_q_minus_log_p(gen):
    x, out = _case(gen, n=3, latent=2)
    log_pz = torch.randn(3, generator=gen)
    out = ModelOutput(out.logits, out.mu, out.logvar, out.z, {"log_pz": log_pz})
    terms = FAMILIES["vamp"].objective(out, x, 0.3, tiny_config(model="vamp"), 100)
    by_hand = 0.0
    for i in range(3):
        nll = float(reconstruction_nll(out.logits[i:i + 1], x[i:i + 1]))
        log_q = sum(_normal_logpdf(float(out.z[i, j]), float(out.mu[i, j]), float(out.logvar[i, j])) for j in range(2))
        by_hand += nll + 0.3 * (log_q - float(log_pz[i]))
    assert float(terms.loss) == pytest.approx(by_hand / 3, rel=1e-5)


def test_a_vamp_models_prior_samples_come_from_its_pseudo_inputs():
    from vaetui.models.vamp import VampVAE

    torch.manual_seed(0)
    model = VampVAE(image_size=(16, 16), hidden=2, latent=3, pseudo_inputs=2).eval()
    centres = torch.tensor([[10.0, 0.0, 0.0], [-10.0, 0.0, 0.0]])
    model.components = lambda: (centres, torch.full((2, 3), -6.0))  # σ 0.05 around two far-apart centres
    z = model.prior_sample(400, torch.Generator().manual_seed(0))
    near = torch.cdist(z, centres).min(1)
    assert near.values.max() < 0.5  # every code is one of the two posteriors' draws
    assert 0.35 < (near.indices == 0).float().mean() < 0.65  # picked uniformly
    assert float(model.kl(centres[:1], torch.full((1, 3), -6.0), centres[:1])) == pytest.approx(
        float(-math.log(0.5) + 0), abs=1e-3)  # q is one of the two equal components: KL at its mean is log 2


@torch.no_grad()
def test_the_hierarchys_kl_is_each_levels_closed_form(gen):
    from torch.distributions import Normal, kl_divergence

    from vaetui.models.hvae import HierarchicalVAE, gaussian_kl

    a, b = torch.randn(2, 5, generator=gen), torch.randn(2, 5, generator=gen)
    la, lb = 0.5 * torch.randn(2, 5, generator=gen), 0.5 * torch.randn(2, 5, generator=gen)
    expected = kl_divergence(Normal(a, (0.5 * la).exp()), Normal(b, (0.5 * lb).exp()))
    assert torch.allclose(gaussian_kl(a, la, b, lb), expected, atol=1e-6)

    torch.manual_seed(0)
    model = HierarchicalVAE(image_size=(32, 32), hidden=4, latent=3).eval()
    for p in model.parameters():  # away from the zero-initialised start, so every path carries something
        p.data.add_(0.05 * torch.randn(p.shape, generator=gen))
    x = torch.rand(2, 3, 32, 32, generator=gen)
    out = model(x, torch.Generator().manual_seed(1))
    z2, z1 = model._split(out.z)
    mu2, lv2 = out.mu[:, :3], out.logvar[:, :3]
    top = sum(0.5 * (m * m + math.exp(v) - 1 - v) for m, v in zip(mu2.flatten().tolist(), lv2.flatten().tolist()))
    _, mu_p, lv_p = model._to_low(z2)
    low = float(gaussian_kl(out.mu[:, 3:], out.logvar[:, 3:], mu_p.flatten(1), lv_p.flatten(1)).sum())
    assert float(out.extra["kl_top"].sum()) == pytest.approx(top, rel=1e-5)
    assert float(out.extra["kl_low"].sum()) == pytest.approx(low, rel=1e-5)
    assert torch.allclose(model.decode_logits(out.z), out.logits, atol=1e-5)  # a code decodes as the forward did
    # log p(z) is the top's standard normal and the lower level's top-down prior, by hand
    by_hand = [sum(_normal_logpdf(float(z2[i, j]), 0.0, 0.0) for j in range(3)) +
               sum(_normal_logpdf(float(a), float(m), float(v)) for a, m, v in
                   zip(z1[i].flatten(), mu_p[i].flatten(), lv_p[i].flatten())) for i in range(2)]
    assert model.log_prior(out.z).tolist() == pytest.approx(by_hand, rel=1e-5)


def test_a_hierarchys_prior_samples_are_drawn_top_down(gen):
    from vaetui.models.hvae import HierarchicalVAE

    torch.manual_seed(0)
    model = HierarchicalVAE(image_size=(32, 32), hidden=4, latent=2).eval()
    shift = torch.zeros(2 * 4, 1, 1)
    shift[:4] = 5.0  # p(z1 | z2): mean 5 + whatever z2 adds, σ e^-2
    model.prior_low.bias.data = shift.flatten()
    model.prior_low.bias.data[4:] = -4.0
    z = model.prior_sample(500, torch.Generator().manual_seed(0))
    z2, z1 = model._split(z)
    assert abs(float(z2.mean())) < 0.1 and abs(float(z2.std()) - 1) < 0.1  # the top: N(0, I)
    assert abs(float(z1.mean()) - 5.0) < 0.2 and float(z1.std()) < 0.5  # the lower level: from its prior


def test_the_vq_quantiser_picks_the_nearest_code_and_passes_the_gradient_straight_through(gen):
    from vaetui.models.vqvae import Quantiser

    q = Quantiser(4, 2).eval()
    q.embedding.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]))
    z_e = torch.tensor([0.9, 0.1, 0.2, 0.8]).view(1, 2, 1, 2)
    # the map (1, D=2, h=1, w=2): position 0 holds (0.9, 0.2), position 1 holds (0.1, 0.8)
    z_e.requires_grad_(True)
    z_st, idx, commitment, perplexity, usage = q(z_e)
    assert idx.tolist() == [[[1, 2]]]  # (0.9, 0.2) is nearest (1, 0); (0.1, 0.8) nearest (0, 1)
    assert torch.allclose(z_st, torch.tensor([1.0, 0.0, 0.0, 1.0]).view(1, 2, 1, 2))
    by_hand = (0.9 - 1) ** 2 + (0.2 - 0) ** 2 + (0.1 - 0) ** 2 + (0.8 - 1) ** 2
    assert float(commitment[0].detach()) == pytest.approx(by_hand, rel=1e-6)
    assert float(perplexity) == pytest.approx(2.0, rel=1e-5) and float(usage) == 0.5  # two codes, equally
    w = torch.randn(z_st.shape, generator=gen)
    (z_st * w).sum().backward()
    assert torch.equal(z_e.grad, w)  # straight through: d(z_q)/d(z_e) taken as the identity


def test_the_vq_codebook_learns_by_moving_averages_and_restarts_dead_codes(gen):
    from vaetui.models.vqvae import DECAY, Quantiser

    q = Quantiser(3, 1).train()
    q.embedding.copy_(torch.tensor([[0.0], [10.0], [100.0]]))
    q.sums.copy_(q.embedding)
    q.counts.copy_(torch.tensor([1.0, 1.0, 0.0101]))
    z_e = torch.tensor([1.0, 2.0, 9.0, 11.0]).view(1, 1, 2, 2)
    q(z_e, torch.Generator().manual_seed(0))
    counts = [DECAY * 1 + (1 - DECAY) * 2, DECAY * 1 + (1 - DECAY) * 2, DECAY * 0.0101]
    sums = [DECAY * 0 + (1 - DECAY) * 3.0, DECAY * 10 + (1 - DECAY) * 20.0]
    total = sum(counts)
    smooth = [(c + 1e-5) / (total + 3e-5) * total for c in counts[:2]]
    assert q.embedding[:2, 0].tolist() == pytest.approx([sums[0] / smooth[0], sums[1] / smooth[1]], rel=1e-5)
    assert float(q.embedding[2, 0]) in (1.0, 2.0, 9.0, 11.0) and float(q.counts[2]) == 1.0  # dead: restarted


def test_the_pixelcnn_prior_sees_only_the_codes_before_each_position(gen):
    from vaetui.models.vqvae import PixelCNNPrior

    torch.manual_seed(0)
    prior = PixelCNNPrior(8, channels=8, layers=3).eval()
    idx = torch.randint(8, (1, 4, 5), generator=gen)
    with torch.no_grad():
        base = prior(idx)
        for i in range(4):
            for j in range(5):
                other = idx.clone()
                other[0, i, j] = (idx[0, i, j] + 1) % 8
                moved = (prior(other) - base).abs().amax(1)[0] > 0
                assert not any(moved[a, b] for a in range(4) for b in range(5) if (a, b) <= (i, j)), (i, j)
                if j + 1 < 5:
                    assert moved[i, j + 1]  # and the next position does see it
