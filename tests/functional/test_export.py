"""vaetui export: tables checked against hand-computed mean ± std, each format; vaetui train --seeds makes a group."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from vaetui.cli import main
from vaetui.runs.store import RunStore

from helpers import tiny_config

# PSNR of the three seeds of one experiment, and their mean and sample std worked by hand:
# mean (20 + 22 + 27) / 3 = 23; deviations -3, -1, 4; sum of squares 26; / (n - 1) = 13; std sqrt(13)
PSNR = {0: 20.0, 1: 22.0, 2: 27.0}
STD = 3.605551275463989  # sqrt(13)
VALID = {0: 100.0, 1: 110.0, 2: 120.0}  # mean 110, std 10


def fake_eval(run, psnr: float, count: int = 1000):
    run.save_eval({"protocol": {"run": run.name, "checkpoint": "ckpt-best.pt", "split": "test", "count": count,
                                "k": 64, "seed": 0},
                   "per_image": {"neg_elbo": psnr * 100, "recon": psnr * 90, "kl": psnr * 10, "iwae_nll": psnr * 99},
                   "psnr": psnr, "ssim": 0.5, "active_units": 3, "latent": 4})


def fake_epoch(run, valid: float):
    run.metrics_path.write_text(json.dumps({"type": "epoch", "step": 8, "time": 1.0, "epoch": 1, "train_loss": valid,
                                            "valid_loss": valid, "train_recon": valid, "train_kl": 1.0,
                                            "best": True}) + "\n")


@pytest.fixture
def runs(tmp_path):
    store = RunStore(tmp_path, include_demo=False)
    for seed in PSNR:
        run = store.create(tiny_config(seed=seed), f"exp-s{seed}")
        fake_eval(run, PSNR[seed])
        fake_epoch(run, VALID[seed])
    other = store.create(tiny_config(beta=4.0, threads=1), "other")  # another β: a group of its own
    fake_eval(other, 30.0, count=500)
    return tmp_path


def export(runs, capsys, *args) -> str:
    capsys.readouterr()
    assert main(["export", "runs", "--runs-dir", str(runs), *args]) == 0
    return capsys.readouterr().out


def test_csv_groups_runs_that_differ_only_in_their_seed(runs, capsys):
    rows = list(csv.DictReader(io.StringIO(export(runs, capsys, "--format", "csv", "--group-by", "seed"))))
    assert [r["run"] for r in rows] == ["exp", "other"]
    exp, other = rows
    assert float(exp["psnr_mean"]) == pytest.approx(23.0) and float(exp["psnr_std"]) == pytest.approx(STD)
    assert exp["psnr_n"] == "3" and exp["n"] == "3" and exp["seeds"] == "0,1,2"
    assert float(exp["best_valid_mean"]) == pytest.approx(110.0) and float(exp["best_valid_std"]) == pytest.approx(10)
    assert other["psnr_mean"] == "30.0" and other["psnr_std"] == "" and other["n"] == "1"


def test_markdown_and_latex_say_mean_std_and_each_protocol(runs, capsys):
    md = export(runs, capsys, "--format", "md", "--group-by", "seed", "--columns", "run,beta,psnr,best_valid")
    assert "| exp | 1 | 23.00 ± 3.61 | 110.0 ± 10.0 | 3 | 0,1,2 |" in md
    assert "| other | 4 | 30.00 | – | 1 | 0 |" in md
    # two protocols were used (N 1000 for exp, 500 for other): the footnote says both
    assert "first N = 1000 images, IWAE k = 64, best checkpoint" in md and "first N = 500 images" in md
    assert "PSNR<sup>b</sup>" in md and "mean ± sample standard deviation (n − 1)" in md
    tex = export(runs, capsys, "--format", "latex", "--group-by", "seed", "--columns", "run,beta,psnr")
    assert r"\toprule" in tex and r"exp & 1 & 23.00 $\pm$ 3.61 & 3 & 0,1,2 \\" in tex
    assert r"$\beta$" in tex and r"PSNR$^b$" in tex


def test_json_keeps_numbers_whole_and_rows_ungrouped_by_default(runs, capsys):
    data = json.loads(export(runs, capsys, "--format", "json", "--columns", "run,seed,psnr"))
    assert data["grouped_by"] is None
    assert [(r["run"], r["seed"], r["psnr"]) for r in data["rows"]] == \
        [("exp-s0", 0, 20.0), ("exp-s1", 1, 22.0), ("exp-s2", 2, 27.0), ("other", 0, 30.0)]
    assert "test split" in data["protocols"]["psnr"]
    grouped = json.loads(export(runs, capsys, "--format", "json", "--group-by", "seed", "--columns", "run,psnr"))
    assert grouped["rows"][0]["psnr"] == {"mean": pytest.approx(23.0), "std": pytest.approx(STD), "n": 3}
    assert grouped["rows"][0]["seeds"] == [0, 1, 2]


def test_train_seeds_makes_a_group_export_finds(tmp_path, capsys):
    r = ["--runs-dir", str(tmp_path)]
    assert main(["train", "--preset", "tiny", "--seeds", "2", "--max-steps", "2", "--name", "g", "--threads", "1",
                 "--dataset-size", "64", "--batch-size", "16", "--log-format", "json", *r]) == 0
    store = RunStore(tmp_path, include_demo=False)
    assert [store.open(n).config().train.seed for n in ("g-s0", "g-s1")] == [0, 1]
    rows = list(csv.DictReader(io.StringIO(export(tmp_path, capsys, "--format", "csv", "--group-by", "seed",
                                                  "--columns", "run,steps"))))
    assert [(row["run"], row["n"], row["steps_mean"]) for row in rows] == [("g", "2", "2.0")]
    assert not math.isnan(float(rows[0]["steps_mean"]))


def test_the_runs_list_groups_by_seed_with_the_same_numbers(runs):
    import asyncio
    import time

    from vaetui.ui.app import make_app
    from vaetui.ui.screens.groups import GroupsScreen

    async def scenario():
        app = make_app(runs_dir=runs, include_demo=False)
        async with app.run_test(size=(160, 30)) as pilot:
            deadline = time.monotonic() + 30
            while not app.screen.infos and time.monotonic() < deadline:
                await pilot.pause(0.05)
            await pilot.press("G")
            while not (isinstance(app.screen, GroupsScreen) and app.screen.groups) and time.monotonic() < deadline:
                await pilot.pause(0.05)
            grid = app.screen.query_one("#groups")
            head = [str(c.label) for c in grid.columns.values()]
            rows = [[str(c) for c in grid.get_row_at(k)] for k in range(grid.row_count)]
            return head, rows

    head, rows = asyncio.run(scenario())
    exp = dict(zip(head, rows[0]))
    assert exp["run"] == "exp" and exp["n"] == "3" and exp["seeds"] == "0,1,2"
    assert exp["PSNR"] == "23.00 ± 3.61" and exp["best valid"] == "110.0 ± 10.0"  # the hand-worked numbers above
    assert dict(zip(head, rows[1]))["run"] == "other"
