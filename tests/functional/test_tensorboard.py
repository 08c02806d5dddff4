"""vaetui export tensorboard, read back with TensorBoard's own reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vaetui.cli import main

from fake_runs import make_finished_run

from tensorboard.backend.event_processing import event_accumulator  # the test extra has it (README's test command)


def read(folder):
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_scalars_and_snapshots_read_back_as_logged(tmp_path, capsys):
    path = make_finished_run(tmp_path / "runs", name="r", terms=("tc",))
    log = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    for _ in range(2):  # twice: the second export replaces the first
        assert main(["export", "tensorboard", "r", "--runs-dir", str(tmp_path / "runs"), "--out",
                     str(tmp_path / "tb")]) == 0
    assert len(list((tmp_path / "tb" / "r").glob("events.out.tfevents.*"))) == 1
    acc = read(tmp_path / "tb" / "r")
    steps = [e for e in log if e["type"] == "step"]
    loss = acc.Scalars("train/loss")
    assert [s.step for s in loss] == [e["step"] for e in steps]
    assert [s.value for s in loss] == pytest.approx([e["loss"] for e in steps], rel=1e-6)  # float32 in the file
    assert [s.wall_time for s in loss] == pytest.approx([e["time"] for e in steps])
    assert [s.value for s in acc.Scalars("train/tc")] == pytest.approx([e["terms"]["tc"] for e in steps], rel=1e-6)
    epochs = [e for e in log if e["type"] == "epoch"]
    assert [(s.step, s.value) for s in acc.Scalars("epoch/valid_loss")] == \
        [(e["step"], pytest.approx(e["valid_loss"], rel=1e-6)) for e in epochs]
    images = acc.Images("snapshots")
    shots = [e for e in log if e["type"] == "images"]
    assert [i.step for i in images] == [e["step"] for e in shots]
    import io

    first = np.asarray(Image.open(io.BytesIO(images[0].encoded_image_string)).convert("RGB"))
    assert np.array_equal(first, np.asarray(Image.open(path / shots[0]["path"]).convert("RGB")))


def test_a_missing_run_is_one_line_and_nothing_is_made(tmp_path, capsys):
    make_finished_run(tmp_path / "runs", name="r")
    code = main(["export", "tensorboard", "r", "nope", "--runs-dir", str(tmp_path / "runs"), "--out",
                 str(tmp_path / "tb")])
    assert code == 2 and "no run named" in capsys.readouterr().err and not (tmp_path / "tb").exists()


def test_without_tensorboard_it_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    import sys

    make_finished_run(tmp_path / "runs", name="r")
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the package were not installed
    code = main(["export", "tensorboard", "r", "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "tb")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'vaetui[tensorboard]'" in err and err.count("\n") == 1
