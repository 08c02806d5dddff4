import json

import pytest

from vaetui.config.presets import PRESETS, preset
from vaetui.config.fields import parse_size
from vaetui.config.settings import RunConfig
from vaetui.config.resolve import load_config_file, with_overrides
from vaetui.errors import ConfigError


def test_presets_are_valid_except_missing_celeba_root():
    for name, cfg in PRESETS.items():
        if cfg.data.source == "celeba":
            with pytest.raises(ConfigError, match="data.root"):
                cfg.validate()
            with_overrides(cfg, {"data_root": "/somewhere"}).validate()
        else:
            cfg.validate()


def test_seed_preset_is_the_assignment():
    cfg = preset("seed")
    assert cfg.data.size == (218, 178) and cfg.data.source == "celeba"
    assert (cfg.model.hidden, cfg.model.latent, cfg.model.likelihood) == (32, 100, "bernoulli")
    assert (cfg.train.beta, cfg.train.lr, cfg.train.batch_size, cfg.train.epochs) == (0.3, 1e-4, 64, 50)
    assert cfg.data.dataset_size == 30000
    assert preset("seed-l3").model.latent == 3


@pytest.mark.parametrize("name", list(PRESETS))
def test_json_round_trip(name):
    cfg = PRESETS[name]
    again = RunConfig.from_json(cfg.to_json())
    assert again == cfg
    assert json.loads(again.to_json()) == json.loads(cfg.to_json())


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"latent": 0}, "model.latent"),
        ({"beta": -1.0}, "train.beta"),
        ({"lr": 0.0}, "train.lr"),
        ({"precision": "fp8"}, "train.precision"),
        ({"data": "imagenet"}, "data.source"),
        ({"size": "8x8"}, "data.size"),
        ({"batch_size": 0}, "train.batch_size"),
        ({"dataset_size": 10, "batch_size": 64}, "data.dataset_size"),
    ],
)
def test_validation_names_the_field(overrides, field):
    with pytest.raises(ConfigError) as info:
        with_overrides(preset("tiny"), overrides).validate()
    assert info.value.field == field
    assert field in str(info.value)


def test_unknown_preset_lists_choices():
    with pytest.raises(ConfigError, match="faces64"):
        preset("nope")


def test_parse_size():
    assert parse_size("218x178") == (218, 178)
    assert parse_size("64") == (64, 64)
    assert parse_size([3, 4]) == (3, 4)
    with pytest.raises(ConfigError):
        parse_size("axb")


def test_config_files_toml_and_json(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('latent = 7\n[train]\nbeta = 0.5\n[data]\nsource = "synthetic"\nsize = "48x40"\n')
    flat = load_config_file(toml)
    cfg = with_overrides(preset("tiny"), flat).validate()
    assert (cfg.model.latent, cfg.train.beta, cfg.data.size) == (7, 0.5, (48, 40))
    js = tmp_path / "run.json"
    js.write_text(json.dumps({"batch-size": 16, "epochs": 3}))
    cfg = with_overrides(preset("tiny"), load_config_file(js)).validate()
    assert (cfg.train.batch_size, cfg.train.epochs) == (16, 3)
    bad = tmp_path / "bad.toml"
    bad.write_text("latent = \n")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config_file(bad)
    with pytest.raises(ConfigError, match="unknown setting"):
        with_overrides(preset("tiny"), {"lattent": 3})
