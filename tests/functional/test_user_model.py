"""A user's own model (--model file.py:Class, entry points vaetui.models): docs/models.md's example trains, resumes
bit-exactly and is explored; a class off the protocol is one line; a file is run only when its user named it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vaetui.cli import main
from vaetui.runs.store import RunStore

DOCS = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def docs_example() -> str:
    """The complete example of docs/models.md (the first python block after 'Your own model')."""
    text = DOCS.read_text()
    return re.search(r"```python\n(.*?)```", text[text.index("## Your own model"):], re.S).group(1)


@pytest.fixture
def own(tmp_path, monkeypatch):
    monkeypatch.setenv("VAETUI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlp.py").write_text(docs_example())
    return tmp_path


def _train(*args) -> int:
    return main(["train", "--preset", "tiny", "--dataset-size", "64", "--batch-size", "16", "--valid-size", "16",
                 "--threads", "1", "--log-format", "json", "--runs-dir", "runs", "--log-every", "2",
                 "--checkpoint-every", "3", *args])


def test_the_docs_example_trains_resumes_exactly_and_is_explored(own, capsys):
    assert len(docs_example().splitlines()) <= 40
    assert _train("--model", "mlp.py:MLPVAE", "--epochs", "3", "--name", "whole", "--lr", "3e-3") == 0
    assert _train("--model", "mlp.py:MLPVAE", "--epochs", "3", "--name", "half", "--lr", "3e-3",
                  "--max-steps", "5") == 0
    assert main(["train", "--resume", "half", "--max-steps", "12", "--runs-dir", "runs", "--threads", "1",
                 "--log-format", "json"]) == 0
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    store = RunStore(own / "runs", include_demo=False)
    whole, half = store.open("whole"), store.open("half")
    assert whole.config().model.family == f"{own / 'mlp.py'}:MLPVAE"  # stored absolute: opens from any folder
    steps = [e for e in logged if e["type"] == "step"]
    assert steps[-1]["loss"] < steps[0]["loss"]  # it learns
    a = whole.load_checkpoint("latest", fallback=False)[0]  # weights_only, CRC-checked
    b = half.load_checkpoint("latest", fallback=False)[0]
    assert a["step"] == b["step"] == 12 and set(a["model"]) == {
        "encoder.1.weight", "encoder.1.bias", "to_mu.weight", "to_mu.bias", "to_logvar.weight", "to_logvar.bias",
        "decoder.0.weight", "decoder.0.bias", "decoder.2.weight", "decoder.2.bias"}
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    os.chdir(own / "runs")  # another folder: the run still finds its model
    for args in (["sample", "whole", "--n", "4", "--sampler", "gmm", "--out", "s.png"],
                 ["interpolate", "whole", "--steps", "3", "--out", "i.png"],
                 ["reconstruct", "whole", "--n", "4", "--out", "r.png"],
                 ["latent", "whole", "--out", "l.png"]):
        assert main([*args, "--runs-dir", "."]) == 0, args
        assert (own / "runs" / args[-1]).stat().st_size > 0


def test_a_class_off_the_protocol_is_one_line(own, capsys):
    (own / "bad.py").write_text("from torch import nn\n\nclass Half(nn.Module):\n    def __init__(self, config):\n"
                                "        super().__init__()\n\n    def encode(self, x):\n        return x, x\n\n"
                                "class NoSize(nn.Module):\n    def __init__(self, config):\n        super().__init__()\n"
                                "    def encode(self, x):\n        return x, x\n    def decode_logits(self, z):\n"
                                "        return z\n\nclass NotAModule:\n    pass\n\nraise_later = 1\n")
    (own / "broken.py").write_text("import not_a_module_anywhere\n")
    cases = {"bad.py:Half": "lacks decode_logits()", "bad.py:NoSize": "sets no latent, image_size",
             "bad.py:NotAModule": "is not a torch nn.Module class", "bad.py:Missing": "defines no Missing",
             "nowhere.py:X": "there is no file", "broken.py:X": "importing broken.py failed: ModuleNotFoundError"}
    for ref, said in cases.items():
        assert _train("--model", ref, "--max-steps", "2") == 2, ref
        err = capsys.readouterr().err.strip()
        assert said in err and len(err.splitlines()) == 1, err
    assert not (own / "runs").exists() or not any((own / "runs").iterdir())  # no run folder for a refused model


def test_a_file_runs_only_when_its_user_named_it(own, capsys):
    assert _train("--model", "mlp.py:MLPVAE", "--max-steps", "4", "--name", "m") == 0
    capsys.readouterr()
    (own / "config" / "trusted-models.json").unlink()  # a run copied from another machine: never named here
    assert main(["sample", "m", "--runs-dir", "runs", "--out", "s.png"]) == 2
    err = capsys.readouterr().err
    assert "has not trained with it" in err and "--trust" in err and not (own / "s.png").exists()
    assert main(["model", "--preset", "tiny", "--model", "mlp.py:MLPVAE", "--trust"]) == 0
    assert main(["sample", "m", "--runs-dir", "runs", "--out", "s.png"]) == 0
    with open(own / "mlp.py", "a") as fh:
        fh.write("print('a change')\n")
    capsys.readouterr()
    assert main(["sample", "m", "--runs-dir", "runs", "--out", "s.png"]) == 2
    assert "it changed since" in capsys.readouterr().err


def test_an_installed_packages_model_is_found_by_its_entry_point(own):
    site = own / "site"
    (site / "mypkg").mkdir(parents=True)
    # a plain nn.Module (no LatentModel): it gets the protocol's defaults, its own forward is not what vaetui calls
    plain = docs_example().replace("(LatentModel)", "(nn.Module)").replace(
        "from vaetui.models.protocol import LatentModel\n", "")
    plain += "\n    def forward(self, x):\n        raise AssertionError('not the protocol')\n"
    assert "LatentModel" not in plain
    (site / "mypkg" / "__init__.py").write_text(plain)
    info = site / "mypkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mypkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[vaetui.models]\nmlp = mypkg:MLPVAE\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    out = subprocess.run([sys.executable, "-m", "vaetui", "train", "--preset", "tiny", "--model", "mlp", "--max-steps",
                          "4", "--runs-dir", "runs", "--name", "ep", "--threads", "1", "--log-format", "json"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert RunStore(own / "runs", include_demo=False).open("ep").config().model.family == "mlp"
    out = subprocess.run([sys.executable, "-m", "vaetui", "model", "--preset", "tiny", "--model", "mlp"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "MLPVAE" in out.stdout, out.stderr
    out = subprocess.run([sys.executable, "-m", "vaetui", "sample", "ep", "--runs-dir", "runs", "--out", "s.png"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0 and (own / "s.png").stat().st_size > 0, out.stderr


def test_a_study_compares_the_users_model_with_a_family(own):
    (own / "space.toml").write_text('preset = "tiny"\ndataset_size = 32\nbatch_size = 16\nvalid_size = 16\n'
                                    'epochs = 1\nimage_every = 1000\n[sweep]\nmodel = ["vae", "mlp.py:MLPVAE"]\n')
    assert main(["sweep", "space.toml", "--study", "mine", "--runs-dir", "runs", "--pruner", "none"]) == 0
    store = RunStore(own / "runs", include_demo=False)
    families = sorted(store.open(f"mine-t00{i}").config().model.family for i in range(2))
    assert families == [f"{own / 'mlp.py'}:MLPVAE", "vae"]
    assert main(["sweep", "show", "mine", "--runs-dir", "runs"]) == 0
