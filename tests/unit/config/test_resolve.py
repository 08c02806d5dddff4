"""vaetui.config.resolve.resolve: preset, then each layer of overrides in order, then the resume rule, validated once."""

import pytest

from vaetui.config.presets import DEFAULT_PRESET, PRESETS
from vaetui.config.resolve import resolve
from vaetui.errors import ConfigError


def test_nothing_named_is_the_default_preset():
    assert resolve() == PRESETS[DEFAULT_PRESET]


def test_each_layer_overrides_the_one_before_and_none_is_not_given():
    cfg = resolve("tiny", {"latent": 4, "beta": 2.0}, {"latent": 6, "beta": None}, {"lr": 0.01})
    assert (cfg.preset, cfg.model.latent, cfg.train.beta, cfg.train.lr) == ("tiny", 6, 2.0, 0.01)
    assert cfg.model.hidden == PRESETS["tiny"].model.hidden  # untouched settings keep the preset's


def test_the_preset_named_outright_wins_else_the_last_layer_that_names_one():
    assert resolve("tiny", {"preset": "seed"}).preset == "tiny"
    assert resolve(None, {"preset": "seed"}, {"preset": "tiny"}).preset == "tiny"
    assert resolve(None, {"preset": "seed-l3"}, {"latent": 7, "data": "synthetic"}).model.latent == 7


def test_the_result_is_validated():
    with pytest.raises(ConfigError, match="latent"):
        resolve("tiny", {"latent": 0})
    with pytest.raises(ConfigError, match="preset"):
        resolve("nope")


def test_a_resume_keeps_what_it_must_and_names_what_it_refuses():
    current = resolve("tiny", {"latent": 4})
    resumed = resolve(None, {"epochs": 9, "latent": None}, {"epochs": None}, current=current)
    assert resumed.train.epochs == 9 and resumed.model.latent == 4
    assert resolve(None, {"latent": 4}, current=current) == current  # the same value is no change
    with pytest.raises(ConfigError, match=r"drop --latent, --lr or start a new run"):
        resolve(None, {"latent": 8}, {"lr": 0.5}, current=current)
