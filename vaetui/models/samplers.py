"""Where a generated face's code comes from: the prior N(0, I), or an ex-post Gaussian mixture fitted to the
aggregate posterior of the training images (Ghosh et al. 2020, "From Variational to Deterministic Autoencoders"):
a VAE's prior and its aggregate posterior differ, and codes drawn where the encoder actually puts images decode to
better faces. The mixture has diagonal covariances and is fitted by EM; it is stored as JSON, never pickled."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vaetui.errors import FitError


VAMP_DATA_IMAGES = 32  # a run without pseudo-inputs: the VampPrior of its first training images' posteriors


def posterior_mixture(means: torch.Tensor, logvars: torch.Tensor) -> "GaussianMixture":
    """The equal-weight mixture of K diagonal Gaussian posteriors (the VampPrior of their inputs)."""
    k = means.shape[0]
    return GaussianMixture(torch.full((k,), 1.0 / k, dtype=torch.float64), means.detach().double().cpu(),
                           logvars.detach().double().exp().cpu())


@dataclass(frozen=True)
class GaussianMixture:
    """weights (K,), means (K, D), variances (K, D): a mixture of K diagonal Gaussians."""

    weights: torch.Tensor
    means: torch.Tensor
    variances: torch.Tensor

    def sample(self, n: int, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
        """n codes: a component by its weight, then its mean plus T·σ noise (T scales the spread, as for the prior)."""
        component = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[1], generator=generator, dtype=self.means.dtype)
        return (self.means[component] + temperature * eps * self.variances[component].sqrt()).float()

    def log_density(self, codes: torch.Tensor) -> torch.Tensor:
        """log p(z) of each code under the mixture."""
        return torch.logsumexp(_component_log_density(codes.to(self.means.dtype), self), 1)

    def to_json(self) -> dict:
        return {"weights": self.weights.tolist(), "means": self.means.tolist(), "variances": self.variances.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> "GaussianMixture":
        """The mixture a file holds; FitError when it is not a well-formed one (a damaged or foreign file)."""
        try:
            w, m, v = (torch.tensor(data[k], dtype=torch.float64) for k in ("weights", "means", "variances"))
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise FitError(f"not a mixture ({type(exc).__name__})") from None
        ok = (w.dim() == 1 and m.dim() == 2 and m.shape == v.shape and m.shape[0] == w.shape[0] > 0
              and bool(torch.isfinite(m).all()) and bool((v > 0).all()) and bool((w >= 0).all())
              and abs(float(w.sum()) - 1) < 1e-6)
        if not ok:
            raise FitError("not a mixture (shapes, weights or variances out of range)")
        return cls(w, m, v)


def _component_log_density(x: torch.Tensor, g: GaussianMixture) -> torch.Tensor:
    """(N, K): log w_k + log N(x_n; μ_k, diag σ²_k)."""
    d = x.shape[1]
    diff = x.unsqueeze(1) - g.means.unsqueeze(0)
    quad = (diff.pow(2) / g.variances.unsqueeze(0)).sum(2)
    return g.weights.log().unsqueeze(0) - 0.5 * (d * math.log(2 * math.pi) + g.variances.log().sum(1) + quad)


def fit_gmm(codes: torch.Tensor, components: int = 10, iterations: int = 200, seed: int = 0,
            floor: float = 1e-4) -> GaussianMixture:
    """EM for a diagonal Gaussian mixture on (N, D) codes, from K codes picked at random (seeded); variances are
    floored so a component on a few identical codes stays a density. Stops when the mean log-likelihood gains less
    than 1e-7 nats a code."""
    x = codes.detach().double().cpu()
    n, d = x.shape
    k = max(1, min(components, n))
    gen = torch.Generator().manual_seed(seed)
    spread = x.var(0, unbiased=False).clamp_min(floor) if n > 1 else torch.ones(d, dtype=x.dtype)
    g = GaussianMixture(torch.full((k,), 1.0 / k, dtype=x.dtype), x[torch.randperm(n, generator=gen)[:k]].clone(),
                        spread.expand(k, d).clone())
    last = -math.inf
    for _ in range(iterations):
        log_r = _component_log_density(x, g)
        ll = torch.logsumexp(log_r, 1)
        resp = (log_r - ll.unsqueeze(1)).exp()
        mass = resp.sum(0).clamp_min(1e-12)
        means = resp.T @ x / mass.unsqueeze(1)
        variances = (resp.T @ x.pow(2) / mass.unsqueeze(1) - means.pow(2)).clamp_min(floor)
        g = GaussianMixture(mass / n, means, variances)
        mean_ll = float(ll.mean())
        if mean_ll - last < 1e-7:
            break
        last = mean_ll
    return g
