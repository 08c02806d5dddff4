"""Every bad value a person can type is one line saying what to do, a non-zero exit, no traceback, no file.

Run in-process (main()) for speed; a traceback would surface as an exception and fail the test.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vaetui.cli import main
from vaetui.runs.store import RunStore

from helpers import tiny_config, train

OUT = "{tmp}/out/picture.png"
R = ["--runs-dir", "{runs}"]

BAD = [
    # model
    (["model", "--size", "8"], "[16, 1024]"),
    (["model", "--latent", "0"], "--latent"),
    (["model", "--hidden", "abc"], "must be an integer"),
    (["model", "--preset", "nope"], "invalid choice"),
    # data
    (["data", "preview", "--data", "celeba", "--out", OUT], "--data-root is required"),
    (["data", "preview", "--data", "folder", "--data-root", "{tmp}/missing", "--out", OUT], "does not exist"),
    (["data", "preview", "--n", "0", "--out", OUT], "--n: must be in [1, 1024]"),
    (["data", "preview", "--n", "100000", "--out", OUT], "--n: must be in [1, 1024]"),
    (["data", "preview", "--cols", "0", "--out", OUT], "--cols"),
    (["data", "preview", "--seed", "-1", "--out", OUT], "--seed"),
    (["data", "preview", "--out", "{tmp}/out/grid.txt"], "use a file name ending in .png"),
    (["data", "preview", "--size", "64x", "--out", OUT], "must be HxW"),
    (["data", "preview", "--split", "nope", "--out", OUT], "invalid choice"),
    (["data", "blend", "--index", "0", "999999999", "--out", OUT], "out of range"),
    (["data", "blend", "--alpha-step", "0", "--out", OUT], "--alpha-step"),
    (["data", "blend", "--alpha-from", "2", "--alpha-to", "1", "--out", OUT], "swap them"),
    (["data", "blend", "--alpha-from", "nan", "--out", OUT], "finite number"),
    (["data", "blend", "--alpha-step", "0.0001", "--out", OUT], "use a larger step"),
    (["data", "info", "--data", "celeba", "--data-root", "{tmp}/missing"], "does not exist"),
    # train
    (["train", "--epochs", "0", *R], "--epochs: must be in [1, 100000]"),
    (["train", "--bogus", "1", *R], "unrecognized arguments: --bogus 1; see vaetui train --help"),
    (["sweep", "show", "x", "--nope", *R], "see vaetui sweep --help"),
    (["train", "--beta", "-1", *R], "--beta"),
    (["train", "--beta", "nan", *R], "--beta"),
    (["train", "--lr", "0", *R], "--lr"),
    (["train", "--batch-size", "0", *R], "--batch-size"),
    (["train", "--latent", "abc", *R], "must be an integer"),
    (["train", "--preset", "nope", *R], "invalid choice"),
    (["train", "--config", "{tmp}/missing.toml", *R], "no such file"),
    (["train", "--config", "{tmp}/malformed.toml", *R], "cannot parse"),
    (["train", "--config", "{tmp}/typo.toml", *R], "did you mean latent"),
    (["train", "--config", "{tmp}/misplaced.toml", *R], "beta belongs in [train]"),
    (["train", "--resume", "missing", *R], "no run named"),
    (["train", "--resume", "demo", *R], "read-only"),
    (["train", "--resume", "tiny", "--latent", "4", *R], "drop --latent"),
    (["train", "--batch-size", "65536", "--size", "1024", "--dataset-size", "100000", *R], "use --batch-size"),
    (["train", "--name", "../x", *R], "invalid run name"),
    (["train", "--precision", "fp16", "--device", "cpu", *R], "fp16 needs CUDA"),
    (["train", "--dataset-size", "10", "--batch-size", "64", *R], "smaller than one batch"),
    (["train", "--name", "tiny", *R], "already exists"),
    # the explore twins
    (["sample", "missing", *R, "--out", OUT], "no run named"),
    (["sample", "tiny", *R, "--n", "0", "--out", OUT], "--n"),
    (["sample", "tiny", *R, "--n", "5000", "--out", OUT], "--n: must be in [1, 1024]"),
    (["sample", "tiny", *R, "--temperature", "0", "--out", OUT], "--temperature"),
    (["sample", "tiny", *R, "--temperature", "-1", "--out", OUT], "--temperature"),
    (["sample", "tiny", *R, "--temperature", "nan", "--out", OUT], "--temperature"),
    (["sample", "tiny", *R, "--checkpoint", "epoch-99", "--out", OUT], "has no checkpoint ckpt-epoch-99.pt"),
    (["sample", "tiny", *R, "--checkpoint", "nonsense", "--out", OUT], "use best, latest, epoch-N"),
    (["sample", "tiny", *R, "--out", "{tmp}/out/x.gif"], "use a file name ending in"),
    (["sample", "fresh", *R, "--out", OUT], "has no checkpoint yet"),
    (["sample", "tiny", "--runs-dir", "{tmp}/nowhere", "--out", OUT], "no folder"),
    (["reconstruct", "tiny", *R, "--start", "999999", "--out", OUT], "out of range"),
    (["reconstruct", "tiny", *R, "--n", "0", "--out", OUT], "--n"),
    (["reconstruct", "tiny", *R, "--compare", "missing", "--out", OUT], "no run named"),
    (["reconstruct", "tiny", *R, "--split", "nope", "--out", OUT], "invalid choice"),
    (["interpolate", "tiny", *R, "--steps", "1", "--out", OUT], "--steps: must be in [2, 201]"),
    (["interpolate", "tiny", *R, "--from", "3", "--out", OUT], "go together"),
    (["interpolate", "tiny", *R, "--from", "0", "--to", "99999", "--out", OUT], "out of range"),
    (["interpolate", "tiny", *R, "--pairs", "0", "--out", OUT], "--pairs"),
    (["interpolate", "tiny", *R, "--extrapolate", "-1", "--out", OUT], "--extrapolate"),
    (["interpolate", "tiny", *R, "--mode", "cubic", "--out", OUT], "invalid choice"),
    (["interpolate", "tiny", *R, "--steps", "201", "--pairs", "32", "--out", OUT], "use fewer --steps or --pairs"),
    # eval and plot
    (["eval", "tiny", *R, "--n", "0"], "--n"),
    (["eval", "tiny", *R, "--k", "0"], "--k"),
    (["eval", "demo", "--checkpoint", "latest"], "has no checkpoint ckpt-latest.pt"),
    (["eval", "tiny", *R, "--split", "all"], "invalid choice"),
    (["plot", "missing", *R, "--out", OUT], "no run named"),
    (["plot", "tiny", *R, "--out", "{tmp}/out/curves.txt"], "use a file name ending in .png"),
    (["plot", "fresh", *R, "--out", OUT], "has no metrics yet"),
    (["latent", "tiny", *R, "--image", "100000", "--out", OUT], "--image 100000 is out of range"),
    (["latent", "tiny", *R, "--amount", "9", "--out", OUT], "--amount"),
    (["plot", "--rd", "fresh", *R, "--out", OUT], "has no validation epoch yet"),
    (["plot", "--rd", "--steps", "tiny", *R, "--out", OUT], "drop --steps"),
    (["plot", "--rd", "--smooth", "0.9", "tiny", *R, "--out", OUT], "drop --steps/--log-y/--smooth"),
    (["plot", "--smooth", "1", "tiny", *R, "--out", OUT], "--smooth: must be a finite number in [0, 0.999]"),
    (["plot", "--x", "minutes", "tiny", *R, "--out", OUT], "invalid choice"),
    (["plot", "--kl-dims", "tiny", "fresh", *R, "--out", OUT], "--kl-dims draws one run alone"),
    (["plot", "--kl-dims", "fresh", *R, "--out", OUT], "has logged no KL per dimension"),
    (["export", "runs", "tiny", "--columns", "run,nope", *R], "unknown column nope: choose from"),
    (["export", "runs", "missing", *R], "no run named"),
    (["export", "runs", "tiny", "--format", "xls", *R], "invalid choice"),
    (["export", "study", "nope", *R], "nope"),
    (["train", "--seeds", "0", *R], "--seeds"),
    (["train", "--seeds", "2", "--resume", "tiny", *R], "--seeds starts new runs"),
    (["monitor", "tiny", "--quiet-after", "0", *R], "--quiet-after"),
    (["--quiet-after", "x"], "--quiet-after"),
    # the run store, the TUI
    (["runs", "--runs-dir", "{tmp}/nowhere"], "no folder"),
    (["monitor", "missing", *R], "no run named"),
    (["--threads", "0"], "--threads"),
    (["nope"], "invalid choice"),
]


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    runs = tmp / "runs"
    store = RunStore(runs, include_demo=False)
    train(store, "tiny", tiny_config(epochs=1))
    store.create(tiny_config(), "fresh")
    (tmp / "malformed.toml").write_text("latent = \n")
    (tmp / "typo.toml").write_text("[model]\nlatnet = 3\n")
    (tmp / "misplaced.toml").write_text("[model]\nbeta = 0.5\n")
    return tmp


@pytest.mark.parametrize("args, says", BAD, ids=[" ".join(a[:3]) for a, _ in BAD])
def test_a_bad_invocation_is_one_line_and_non_zero(place, args, says, capsys, monkeypatch):
    monkeypatch.setenv("VAETUI_CACHE_DIR", str(place / "cache"))
    monkeypatch.chdir(place)
    argv = [a.format(tmp=place, runs=place / "runs") for a in args]
    before = {p for p in place.rglob("*")}
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    assert code not in (0, None), (argv, out, err)
    assert out == "" and err.count("\n") == 1, (argv, out, err)
    assert says in err, (argv, err)
    assert "Traceback" not in err
    made = {p for p in place.rglob("*")} - before
    assert not [p for p in made if p.suffix in (".png", ".gif", ".txt", ".pt", ".json")], made
    assert not (place / "out").exists() and not (place / "runs" / "x").exists()


def test_there_are_at_least_forty_cases():
    assert len(BAD) >= 40 and len({a[0] for a, _ in BAD}) >= 10  # every sub-command is covered


def test_a_bad_invocation_from_a_real_process_is_one_line(place):
    """The same through the installed entry point (argparse's exit path and the shell's view of it)."""
    out = subprocess.run([sys.executable, "-m", "vaetui", "sample", "tiny", "--runs-dir", str(place / "runs"),
                          "--temperature", "-1", "--out", str(place / "x.png")], capture_output=True, text=True,
                         env={**os.environ, "VAETUI_CACHE_DIR": str(place / "cache")})
    assert out.returncode == 2 and out.stdout == "" and out.stderr.count("\n") == 1
    assert "--temperature" in out.stderr and not (place / "x.png").exists()


def test_a_new_run_whose_data_fails_leaves_no_run_behind(tmp_path):
    """A missing folder is said before the run exists; a folder none of whose images decode fails in the trainer,
    and the new run it made (no checkpoint, no step) is removed, not listed as `failed`."""
    from fakes import corrupt_files

    runs = tmp_path / "runs"
    assert main(["train", "--data", "folder", "--data-root", str(tmp_path / "missing"), "--runs-dir", str(runs),
                 "--name", "m"]) == 2
    assert not (runs / "m").exists()
    junk = tmp_path / "junk"
    junk.mkdir()
    for k in range(40):
        for name, data in corrupt_files().items():
            (junk / f"{k}-{name}").write_bytes(data)
    out = subprocess.run([sys.executable, "-m", "vaetui", "train", "--data", "folder", "--data-root", str(junk),
                          "--size", "32", "--batch-size", "8", "--runs-dir", str(runs), "--name", "j", "--threads", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "could be read" in out.stderr.strip().splitlines()[-1], out.stderr
    assert not (runs / "j").exists()
    assert [i.name for i in RunStore(runs, include_demo=False).infos()] == []
