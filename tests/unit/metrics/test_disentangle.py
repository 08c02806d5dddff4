"""MIG, DCI and SAP on constructed codes whose answer follows from the definitions."""

import math

import numpy as np
import pytest

from vaetui.metrics import disentangle as d

N, K = 4000, 8


@pytest.fixture
def factors():
    return np.random.default_rng(0).random((N, K))


def hadamard(k):
    h = np.array([[1.0]])
    while len(h) < k:
        h = np.block([[h, h], [h, -h]])
    return h / math.sqrt(k)


def test_a_code_that_copies_the_factors_scores_one(factors):
    r = d.scores(3 * factors - 1, factors, range(K))  # an affine copy, one dimension per factor
    assert r["mig"] > 0.95 and r["sap"] > 0.95
    assert r["dci_disentanglement"] > 0.95 and r["dci_completeness"] > 0.95 and r["dci_informativeness"] > 0.95
    # a monotone non-linear copy holds the same information: MIG (binned) does not care
    assert d.mig(np.exp(factors * 4), factors)[0] > 0.95


def test_an_even_rotation_scores_zero_but_keeps_the_information(factors):
    r = d.scores((factors - 0.5) @ hadamard(K), factors, range(K))  # every code mixes every factor equally
    assert r["mig"] < 0.05 and r["sap"] < 0.05
    assert r["dci_disentanglement"] < 0.05 and r["dci_completeness"] < 0.05
    assert r["dci_informativeness"] > 0.95  # the factors are a linear function of the code


def test_a_random_rotation_scores_low(factors):
    rng = np.random.default_rng(1)
    f = rng.random((N, 16))
    q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    r = d.scores((f - 0.5) @ q, f, range(16))
    assert r["mig"] < 0.1 and r["dci_disentanglement"] < 0.25 and r["sap"] < 0.25
    assert r["dci_informativeness"] > 0.95


def test_pure_noise_holds_nothing(factors):
    noise = np.random.default_rng(2).standard_normal((N, 10))
    r = d.scores(noise, factors, range(K))
    assert r["mig"] < 0.02 and r["sap"] < 0.02 and r["dci_informativeness"] < 0.02


def test_a_duplicated_factor_loses_mig_but_keeps_informativeness(factors):
    codes = np.hstack([factors[:, :1], factors])  # factor 0 in two dimensions
    r = d.scores(codes, factors, range(K))
    per = r["mig_per_factor"]
    assert per[0] < 0.05 and min(per[1:]) > 0.95
    assert r["mig"] == pytest.approx((K - 1) / K, abs=0.03)
    assert r["dci_informativeness"] > 0.95 and r["dci_disentanglement"] > 0.95
    assert r["dci_completeness"] < 0.97  # factor 0's importance is split over two codes


def test_extra_noise_dimensions_do_not_hurt_a_copy(factors):
    codes = np.hstack([factors, np.random.default_rng(3).standard_normal((N, 5))])
    r = d.scores(codes, factors, range(K))
    assert r["mig"] > 0.95 and r["dci_disentanglement"] > 0.95


def test_binary_attributes_as_a_proxy():
    rng = np.random.default_rng(4)
    attrs = (rng.random((N, 4)) < 0.3).astype(float)
    attrs = np.hstack([attrs, np.ones((N, 1))])  # an attribute no image lacks has no entropy: left out
    r = d.scores(attrs[:, :4] + 0.01 * rng.standard_normal((N, 4)), attrs, list("abcde"), kind="attributes")
    assert r["mig"] > 0.9 and math.isnan(r["mig_per_factor"][4])
    assert "attribute proxy" in d.summary_line(r)


def test_mutual_information_and_entropy_by_hand():
    a = np.array([[0], [0], [1], [1]])
    assert d.entropy(a[:, 0]) == pytest.approx(math.log(2))
    assert d.mutual_information(a, a)[0, 0] == pytest.approx(math.log(2))
    b = np.array([[0], [1], [0], [1]])  # independent of a
    assert d.mutual_information(a, b)[0, 0] == pytest.approx(0.0, abs=1e-12)
    binned = d.discretise(np.arange(100.0)[:, None], bins=4)[:, 0]
    assert np.bincount(binned).tolist() == [25, 25, 25, 25]


def test_tied_values_share_a_bin_and_a_code_scores_as_its_negation():
    """Equal-frequency bins split tied values in sample order: a perfect code of a 30-level factor scored 0.996 and
    its negation 0.867. Both are perfect codes: both score 1."""
    import numpy as np

    from vaetui.metrics.disentangle import discretise, mig

    rng = np.random.default_rng(0)
    factor = rng.integers(0, 30, size=(3000, 1)).astype(float)
    assert mig(factor, factor)[0] == pytest.approx(1.0)
    assert mig(-factor, factor)[0] == pytest.approx(1.0)
    bins = discretise(factor)[:, 0]
    for value in range(30):  # every copy of a value in one bin
        assert len(set(bins[factor[:, 0] == value])) == 1
    assert len(set(bins)) > 15  # and still about equal-frequency bins, not one
