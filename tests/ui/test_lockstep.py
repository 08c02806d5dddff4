"""Lockstep comparison: each run's row is its single-run twin's picture, the screen shows the twin's pixels, and runs
that cannot be compared are refused in one line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from vaetui.pictures.lockstep import HEAT, heat
from vaetui.runs.store import RunStore
from vaetui.sysstats import ProcessStats, Stats

from helpers import tiny_config, train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lockstep")
    store = RunStore(root, include_demo=False)
    train(store, "a", tiny_config(epochs=2))
    train(store, "b", tiny_config(epochs=2, latent=6, seed=3))
    train(store, "big", tiny_config(epochs=1, size=(48, 48)))
    return root


def cli(root, *args):
    return subprocess.run([sys.executable, "-m", "vaetui", *args, "--runs-dir", str(root)], capture_output=True,
                          text=True)


def rows(path, n_rows):
    """A stack_rows picture cut back into its rows (each with its top padding)."""
    img = np.asarray(Image.open(path).convert("RGB"))
    step = (img.shape[0] - 2) // n_rows
    return [img[r * step:2 + (r + 1) * step] for r in range(n_rows)]


@pytest.mark.parametrize("show, twin, twin_rows, pick", [
    ("recon", ["reconstruct", "{run}", "--checkpoint", "best", "--n", "8"], 2, 1),
    ("samples", ["sample", "{run}", "--checkpoint", "best", "--n", "8", "--cols", "8", "--seed", "0"], 1, 0),
    ("interp", ["interpolate", "{run}", "--checkpoint", "best", "--steps", "8", "--pairs", "1", "--seed", "0"], 1, 0),
])
def test_each_runs_row_is_its_single_run_twin(runs, tmp_path, show, twin, twin_rows, pick):
    out = tmp_path / "lock.png"
    done = cli(runs, "compare", "a", "b", "--at", "best", "--show", show, "--out", str(out))
    assert done.returncode == 0, done.stderr
    originals = show == "recon"
    lock = rows(out, 2 + originals)
    for k, run in enumerate(("a", "b")):
        single = tmp_path / f"{run}.png"
        assert cli(runs, *[a.format(run=run) for a in twin], "--out", str(single)).returncode == 0
        mine = rows(single, twin_rows)
        assert np.array_equal(lock[originals + k], mine[pick]), (show, run)
        if originals:
            assert np.array_equal(lock[0], mine[0])  # the same test images for every run


def test_the_error_map_is_the_ramp_of_the_absolute_error():
    e = torch.tensor([[[0.0, 0.25, 1.0]]])
    colours = heat(e)[0, :, 0].T.tolist()
    assert colours == [list(HEAT[0]), list(HEAT[1]), list(HEAT[-1])]  # 0 black; a quarter the ramp's second colour


def test_snapshots_at_a_step_are_cut_from_each_runs_training_pictures(runs, tmp_path):
    out = tmp_path / "s.png"
    done = cli(runs, "compare", "a", "b", "--at", "step-5", "--show", "samples", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "a step 4" in done.stdout and "b step 4" in done.stdout  # the nearest snapshot each run kept
    snap = np.asarray(Image.open(runs / "a" / "snapshots" / "step-00000004.png").convert("RGB"))
    assert np.array_equal(rows(out, 2)[0], rows_of(snap, 3)[2])  # run a's samples row of its own snapshot


def rows_of(img, n_rows):
    step = (img.shape[0] - 2) // n_rows
    return [img[r * step:2 + (r + 1) * step] for r in range(n_rows)]


@pytest.mark.parametrize("args, says", [
    (["a"], "two to four different runs"),
    (["a", "a"], "two to four different runs"),
    (["a", "b", "big"], "different data or image sizes"),
    (["a", "b", "--at", "epoch-9"], "has no checkpoint ckpt-epoch-9.pt"),
    (["a", "b", "--at", "yesterday"], "--at yesterday: use best, latest, epoch-N or step-N"),
    (["a", "b", "--at", "step-5", "--show", "interp"], "--show interp needs a model"),
])
def test_what_cannot_be_compared_is_one_line(runs, tmp_path, args, says):
    done = cli(runs, "compare", *args, "--out", str(tmp_path / "x.png"))
    assert done.returncode == 2 and says in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "x.png").exists()


def test_the_screen_shows_the_twins_pixels_and_flips_one_run_in_place(runs, tmp_path, monkeypatch):
    from vaetui.ui.app import make_app
    from vaetui.ui.screens.explore import LockstepScreen

    monkeypatch.setattr(ProcessStats, "sample", lambda self: Stats(1.0, 1.0))

    async def scenario():
        app = make_app(runs_dir=runs, include_demo=False)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = LockstepScreen(["a", "b"])
            app.push_screen(screen)
            deadline = time.monotonic() + 60

            async def settled(before):
                while (screen.figure is before or screen.shown is None) and time.monotonic() < deadline:
                    await pilot.pause(0.05)

            await settled(None)
            seen = {"points": list(screen.points), "first": (screen.figure.image, screen.headless())}
            await pilot.press("e")  # the error map
            await settled(seen["first"][0] and screen.figure if screen.show == "recon" else None)
            while screen.figure.info["show"] != "error" and time.monotonic() < deadline:
                await pilot.pause(0.05)
            seen["error"] = (screen.figure.image, screen.headless())
            shown_before = screen.shown
            await pilot.press("f")  # run a alone, in the place the rows share
            while screen.shown is shown_before and time.monotonic() < deadline:
                await pilot.pause(0.05)
            seen["flipped"] = screen.shown
            return seen

    seen = asyncio.run(scenario())
    assert seen["points"] == ["epoch-1", "epoch-2", "best", "latest"]
    for key in ("first", "error"):
        image, twin = seen[key]
        out = tmp_path / f"{key}.png"
        twin = twin[: twin.index("--out")] + ["--out", str(out)]
        assert cli(runs, *twin).returncode == 0
        assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(Image.open(out).convert("RGB"))), key
    full = np.asarray(seen["error"][0].convert("RGB"))
    flipped = np.asarray(seen["flipped"].convert("RGB"))
    three = rows_of(full, 3)
    assert np.array_equal(rows_of(flipped, 2)[0], three[0]) and np.array_equal(rows_of(flipped, 2)[1], three[1])
