"""The IWAE bound with the k samples batched through the decoder equals the bound of k separate passes, and an
evaluation in bf16 stays within its sampling error of fp32 (SSIM kept out of bf16)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaetui.metrics import likelihood
from vaetui.models.losses import reconstruction_nll

from helpers import tiny_config


def reference_iwae(model, x, k, seed):
    """k separate decoder passes, each sample's weight written out (the textbook estimator)."""
    gen = torch.Generator().manual_seed(seed)
    mu, logvar = model.encode(x)
    eps = torch.randn((k, *mu.shape), generator=gen)
    ws = []
    for j in range(k):
        z = mu + torch.exp(0.5 * logvar) * eps[j]
        log_px = -reconstruction_nll(model.decode_logits(z), x, "bernoulli")
        log_pz = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(1)
        log_q = (-0.5 * eps[j].pow(2) - 0.5 * math.log(2 * math.pi) - 0.5 * logvar).sum(1)
        ws.append(log_px + log_pz - log_q)
    return -(torch.logsumexp(torch.stack(ws), 0) - math.log(k))


@pytest.mark.parametrize("chunk", [7, 128])  # a chunk that splits an image's samples, and one that does not
def test_batched_samples_give_the_textbook_bound(monkeypatch, chunk):
    from vaetui.models.families import family_of

    cfg = tiny_config()
    torch.manual_seed(0)
    model = family_of(cfg).build(cfg).eval()
    x = torch.rand(5, 3, 32, 32)
    monkeypatch.setattr(likelihood, "IWAE_CHUNK", chunk)
    with torch.no_grad():
        got = likelihood.iwae_nll(model, x, 6, "bernoulli", torch.Generator().manual_seed(3))
        want = reference_iwae(model, x, 6, 3)
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-3)


def test_an_evaluation_in_bf16_stays_near_fp32(tmp_path):
    from vaetui.data import open_split
    from vaetui.runs.store import RunStore

    from helpers import train

    run, _ = train(RunStore(tmp_path, include_demo=False), "e", tiny_config(epochs=2))
    from vaetui.runs.checkpoint import open_model

    loaded = open_model(run, "best")
    split = open_split(loaded.config.data, "test")
    a = likelihood.evaluate(loaded.model, loaded.config, split, 64, 8, 0, precision="fp32")
    b = likelihood.evaluate(loaded.model, loaded.config, split, 64, 8, 0, precision="bf16")
    assert abs(a["per_image"]["neg_elbo"] - b["per_image"]["neg_elbo"]) < 1e-3 * a["per_image"]["neg_elbo"]
    assert abs(a["psnr"] - b["psnr"]) < 0.05 and abs(a["ssim"] - b["ssim"]) < 0.005  # SSIM in fp32: no cancellation
    assert np.isfinite(b["per_image"]["iwae_nll"])
