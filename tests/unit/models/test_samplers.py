"""vaetui.models.samplers: the ex-post GMM recovers a mixture it is fitted to, samples it, and reads back only a
well-formed file."""

import math

import pytest
import torch

from vaetui.errors import FitError
from vaetui.models.samplers import GaussianMixture, fit_gmm


def _two_blobs(n=3000, seed=0):
    g = torch.Generator().manual_seed(seed)
    which = torch.rand(n, generator=g) < 0.3  # 30% in the first blob
    centres = torch.where(which.unsqueeze(1), torch.tensor([-4.0, 2.0]), torch.tensor([3.0, -1.0]))
    scales = torch.where(which.unsqueeze(1), torch.tensor([0.5, 1.0]), torch.tensor([1.5, 0.3]))
    return centres + scales * torch.randn(n, 2, generator=g)


def test_em_recovers_the_mixture_it_is_fitted_to():
    g = fit_gmm(_two_blobs(), components=2, seed=1)
    order = torch.argsort(g.means[:, 0])
    assert g.weights[order].tolist() == pytest.approx([0.3, 0.7], abs=0.03)
    assert g.means[order].tolist() == [pytest.approx([-4.0, 2.0], abs=0.1), pytest.approx([3.0, -1.0], abs=0.1)]
    assert g.variances[order].sqrt().tolist() == [pytest.approx([0.5, 1.0], abs=0.08),
                                                  pytest.approx([1.5, 0.3], abs=0.08)]


def test_more_components_never_fit_worse_and_the_fit_beats_one_gaussian():
    codes = _two_blobs()
    one, two = fit_gmm(codes, components=1), fit_gmm(codes, components=2, seed=1)
    gaussian = -0.5 * (math.log(2 * math.pi) + codes.var(0, unbiased=False).log() + 1).sum()  # its mean log density
    assert float(one.log_density(codes).mean()) == pytest.approx(float(gaussian), abs=1e-6)
    assert float(two.log_density(codes).mean()) > float(one.log_density(codes).mean()) + 0.5


def test_samples_follow_the_mixture_and_the_temperature():
    g = GaussianMixture(torch.tensor([0.25, 0.75], dtype=torch.float64), torch.tensor([[-10.0], [10.0]]).double(),
                        torch.tensor([[1.0], [4.0]]).double())
    z = g.sample(20000, torch.Generator().manual_seed(0))
    left = z[z[:, 0] < 0, 0]
    assert len(left) / 20000 == pytest.approx(0.25, abs=0.01)
    assert float(left.std()) == pytest.approx(1.0, abs=0.05) and float(z[z[:, 0] > 0, 0].std()) == pytest.approx(2.0, abs=0.05)
    cold = g.sample(20000, torch.Generator().manual_seed(0), temperature=0.5)
    assert float(cold[cold[:, 0] < 0, 0].std()) == pytest.approx(0.5, abs=0.03)
    again = g.sample(20000, torch.Generator().manual_seed(0))
    assert torch.equal(z, again)  # a seed draws the same faces on every machine


@pytest.mark.parametrize("data", [{}, {"weights": [1.0], "means": [[0.0]]}, {"weights": [0.5, 0.6], "means": [[0], [1]],
                                  "variances": [[1], [1]]}, {"weights": [1.0], "means": [[0.0]], "variances": [[0.0]]},
                                  {"weights": [1.0], "means": [[float("nan")]], "variances": [[1.0]]},
                                  {"weights": [1.0], "means": [[0.0, 1.0]], "variances": [[1.0]]}, {"weights": "x"}])
def test_a_damaged_file_is_not_a_mixture(data):
    with pytest.raises(FitError):
        GaussianMixture.from_json(data)


def test_a_mixture_round_trips_through_json():
    g = fit_gmm(_two_blobs(500), components=3)
    back = GaussianMixture.from_json(g.to_json())
    assert torch.equal(back.means, g.means) and torch.equal(back.variances, g.variances)
