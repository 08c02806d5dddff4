"""KL controls: the cyclical schedule, free bits, and the posterior-collapse alert."""

import math

import pytest
import torch

from vaetui.config.settings import ConfigError
from vaetui.config.resolve import with_overrides
from vaetui.runs.events import EvalEvent, WarningEvent
from vaetui.models.losses import beta_at, reconstruction_nll, schedule_beta, vae_loss
from vaetui.train.observe import collapse_message
from vaetui.runs.store import RunStore

from helpers import tiny_config, train


def test_cyclical_schedule_follows_fu_et_al():
    # 100 steps, 4 cycles of 25, rising over the first half (12.5 steps) of each, then held.
    b = lambda t: beta_at(t, 2.0, 0, cycles=4, ratio=0.5, total_steps=100)  # noqa: E731
    assert b(0) == 0.0
    assert b(5) == pytest.approx(2.0 * 5 / 12.5)
    assert b(12.5) == pytest.approx(2.0) and b(20) == pytest.approx(2.0)
    assert b(25) == 0.0 and b(30) == pytest.approx(2.0 * 5 / 12.5)  # the second cycle starts again from 0
    assert b(99) == pytest.approx(2.0)


def test_schedule_multiplies_warmup_and_cycles_and_defaults_to_constant():
    assert beta_at(50, 0.3, 0) == 0.3
    assert beta_at(50, 0.3, 100) == pytest.approx(0.15)
    assert beta_at(5, 1.0, 10, cycles=2, ratio=1.0, total_steps=20) == pytest.approx(0.5 * 0.5)
    tc = tiny_config(kl_cycles=2, kl_ratio=0.25).train
    assert schedule_beta(0, tc, 16) == 0.0 and schedule_beta(2, tc, 16) == pytest.approx(tc.beta)


def test_free_bits_floor_each_dimension_and_report_the_true_kl():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 8, 8)
    logits = torch.randn(4, 3, 8, 8)
    mu = torch.zeros(4, 3)
    mu[:, 0] = 2.0  # dimension 0 carries 2 nats per image; dims 1 and 2 carry none
    mu.requires_grad_(True)
    logvar = torch.zeros(4, 3, requires_grad=True)
    t = vae_loss(logits, x, mu, logvar, beta=1.0, free_bits=0.5)
    recon = reconstruction_nll(logits, x).mean()
    assert float(t.loss.detach()) == pytest.approx(float(recon) + 2.0 + 0.5 + 0.5, rel=1e-5)
    assert float(t.kl_sum) / 4 == pytest.approx(2.0)  # reported: the true KL
    t.loss.backward()
    assert mu.grad[:, 1:].abs().max() == 0  # below the floor: no pressure toward the prior
    assert mu.grad[:, 0].abs().min() > 0
    plain = vae_loss(logits, x, mu.detach(), logvar.detach(), beta=1.0)
    assert float(plain.loss) == pytest.approx(float(recon) + 2.0, rel=1e-5)


def test_kl_settings_are_validated_and_reach_flags():
    with pytest.raises(ConfigError, match="kl_ratio"):
        tiny_config(kl_ratio=0.0)
    with pytest.raises(ConfigError, match="free_bits"):
        tiny_config(free_bits=-1.0)
    cfg = with_overrides(tiny_config(), {"free_bits": 0.25, "kl_cycles": 3})
    assert cfg.train.free_bits == 0.25 and cfg.train.kl_cycles == 3


def _validation(active, kl_dims, kl=1.0):
    return {"active_units": active, "kl_per_dim": kl_dims, "kl": kl}


def test_collapse_message_by_its_definition():
    assert collapse_message(_validation(8, [1.0] * 8), 1) is None
    msg = collapse_message(_validation(0, [0.001] * 8, 0.008), 3)
    assert msg and "epoch 3" in msg and "0/8 units active" in msg and "8/8 dims" in msg
    # 100 dims, 9 active (< 10%): collapse even though KL is spread
    assert collapse_message(_validation(9, [0.5] * 100), 1)
    assert collapse_message(_validation(10, [0.5] * 100), 1) is None
    # 95 of 100 dims under 0.01 nats: collapse even with enough "active" μ variance
    assert collapse_message(_validation(50, [0.001] * 95 + [1.0] * 5), 1)


def test_a_collapsing_run_warns_once_and_free_bits_keep_kl(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    _, events = train(store, "collapse", tiny_config(beta=200.0, epochs=3, lr=3e-3))
    warnings = [e for e in events if isinstance(e, WarningEvent) and "posterior collapse" in e.message]
    assert len(warnings) == 1
    evals = [e for e in events if isinstance(e, EvalEvent)]
    assert evals[-1].active_units is not None and evals[-1].active_units <= 1
    _, kept = train(store, "floored", tiny_config(beta=200.0, epochs=3, lr=3e-3, free_bits=0.5))
    kept_kl = [e for e in kept if isinstance(e, EvalEvent)][-1].kl
    assert kept_kl > 4 * evals[-1].kl + 0.5  # with a floor of 0.5 nats per dim the code keeps information
    assert math.isfinite(kept_kl)
