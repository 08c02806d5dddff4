"""Explore a model: the headless twins write files, and the screens show the same pixels."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from vaetui.models import latent
from vaetui.runs.checkpoint import load_model
from vaetui.runs.store import RunStore
from vaetui.ui.app import make_app
from vaetui.ui.screens.explore import GenerateScreen, InterpolateScreen, LatentScreen, ReconstructScreen
from vaetui.sysstats import ProcessStats, Stats

from helpers import tiny_config, train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore-runs")
    train(RunStore(root, include_demo=False), "tiny", tiny_config(epochs=2))
    return root


def cli(*args):
    return subprocess.run([sys.executable, "-m", "vaetui", *args], capture_output=True, text=True)


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_path_helpers():
    assert latent.path_ts(11) == [round(k / 10, 10) for k in range(11)]
    ts = latent.path_ts(11, extrapolate=0.3)
    assert ts[0] == -0.3 and ts[-1] == 1.3 and len(ts) == 17
    z1, z2 = torch.randn(5), torch.randn(5)
    line = latent.lerp(z1, z2, [0.0, 1.0])
    assert torch.allclose(line[0], z2) and torch.allclose(line[1], z1)
    arc = latent.slerp(z1, z2, [0.0, 0.5, 1.0])
    assert torch.allclose(arc[0], z2, atol=1e-5) and torch.allclose(arc[2], z1, atol=1e-5)
    # Between unit vectors slerp stays on the sphere, lerp cuts inside it.
    u1, u2 = z1 / z1.norm(), z2 / z2.norm()
    assert abs(float(latent.slerp(u1, u2, [0.5])[0].norm()) - 1) < 1e-5
    assert float(latent.lerp(u1, u2, [0.5])[0].norm()) < 1


def test_twins_write_their_files(runs, tmp_path):
    d = str(runs)
    out = cli("sample", "tiny", "--runs-dir", d, "--n", "16", "--seed", "3", "--out", str(tmp_path / "s.png"))
    assert out.returncode == 0, out.stderr
    assert Image.open(tmp_path / "s.png").size == (8 * 34 + 2, 2 * 34 + 2)
    out = cli("reconstruct", "tiny", "--runs-dir", d, "--n", "6", "--out", str(tmp_path / "r.png"))
    assert out.returncode == 0 and "loss per image" in out.stdout
    arr = pixels(tmp_path / "r.png")
    assert arr.shape == (2 * 34 + 2, 6 * 34 + 2, 3)
    out = cli("interpolate", "tiny", "--runs-dir", d, "--steps", "5", "--extrapolate", "0.25", "--out", str(tmp_path / "i.png"))
    assert out.returncode == 0 and "|z|" in out.stdout
    assert Image.open(tmp_path / "i.png").size == (7 * 34 + 2, 3 * 34 + 2)  # 3 pairs, 5 steps + 1 each side
    out = cli("interpolate", "tiny", "--runs-dir", d, "--from", "0", "--to", "3", "--mode", "slerp",
              "--out", str(tmp_path / "i.gif"))
    assert out.returncode == 0, out.stderr
    gif = Image.open(tmp_path / "i.gif")
    assert gif.n_frames == 11 + 9  # played forward and back
    out = cli("sample", "nope", "--runs-dir", d, "--out", str(tmp_path / "x.png"))
    assert out.returncode != 0 and "no run named" in out.stderr and "Traceback" not in out.stderr


def test_interpolation_endpoints_are_the_reconstructions(runs):
    run = RunStore(runs, include_demo=False).open("tiny")
    model, config, _, _ = load_model(run)
    from vaetui.pictures.figures import interpolation, reconstructions

    fig = interpolation(model, config, steps=3, endpoints=(2, 5))
    rec = reconstructions(model, config, "test", n=6, start=0)
    first, last = np.asarray(fig.frames[0]), np.asarray(fig.frames[-1])
    tile = lambda img, k: np.asarray(img)[36:68, 2 + k * 34 : 34 + k * 34]  # second row: reconstructions
    assert np.abs(first.astype(int) - tile(rec.image, 5)).max() <= 1  # t = 0 is image J
    assert np.abs(last.astype(int) - tile(rec.image, 2)).max() <= 1  # t = 1 is image I


def test_screens_show_the_twins_pixels(runs, tmp_path, monkeypatch):
    """The real network's pictures on screen against the headless twin's file, on this host: tolerance 0 levels
    (one machine computes them alike; the snapshots of the screens use fake_runs.FixedPictures, since a real
    decoder's last bits differ between CPUs)."""
    monkeypatch.setattr(ProcessStats, "sample", lambda self: Stats(1.0, 1.0))
    for screen_cls, kwargs, size in [
        (GenerateScreen, {"seed": 4, "temperature": 0.7}, (100, 30)),
        (ReconstructScreen, {}, (100, 30)),
        (ReconstructScreen, {}, (200, 60)),  # a larger window: more bands, the same twin
        (LatentScreen, {}, (100, 30)),
        (LatentScreen, {}, (200, 60)),  # more traversal rows
    ]:
        async def scenario():
            app = make_app(runs_dir=runs, include_demo=False)
            async with app.run_test(size=size) as pilot:
                screen = screen_cls("tiny", **kwargs)
                app.push_screen(screen)
                deadline = time.monotonic() + 60
                while screen.figure is None and time.monotonic() < deadline:
                    await pilot.pause(0.05)
                return screen.figure.image, screen.headless()

        shown, twin = asyncio.run(scenario())
        out_file = tmp_path / f"{screen_cls.__name__}-{size[0]}.png"
        twin = twin[: twin.index("--out")] + ["--out", str(out_file), "--runs-dir", str(runs)]
        assert cli(*twin).returncode == 0
        assert np.array_equal(np.asarray(shown.convert("RGB")), pixels(out_file)), (screen_cls.__name__, twin)


def test_explore_screens_by_keyboard(runs, monkeypatch):
    monkeypatch.setattr(ProcessStats, "sample", lambda self: Stats(1.0, 1.0))

    async def scenario():
        app = make_app(runs_dir=runs, include_demo=False)
        async with app.run_test(size=(80, 24)) as pilot:

            async def settle(screen):
                deadline = time.monotonic() + 60
                while (screen.figure is None or app.workers._workers) and time.monotonic() < deadline:
                    await pilot.pause(0.05)

            await pilot.press("g")
            gen = app.screen
            assert isinstance(gen, GenerateScreen)
            await settle(gen)
            before = np.asarray(gen.figure.image)
            await pilot.press("space")
            await pilot.pause(0.1)
            await settle(gen)
            assert gen.seed == 1 and not np.array_equal(before, np.asarray(gen.figure.image))
            await pilot.press("i")
            inter = app.screen
            assert isinstance(inter, InterpolateScreen)
            await settle(inter)
            await pilot.press("right", "right")
            assert inter.frame == 2 and "t 0.2" in inter.info_text()
            await pilot.press("m")
            await settle(inter)
            assert inter.mode == "slerp"
            await pilot.press("r")  # app-level r is reconstruct only where the screen does not use r
            await pilot.press("u", "r")
            rec = app.screen
            assert isinstance(rec, ReconstructScreen)
            await settle(rec)
            await pilot.press("right")
            await pilot.pause(0.1)
            await settle(rec)
            assert rec.start == rec.n and rec.figure.info["indices"][0] == rec.n  # one page on: as many as the screen shows
            await pilot.press("c")
            await pilot.pause(0.1)
            await settle(rec)
            assert rec.checkpoint == "latest"

    asyncio.run(scenario())


def test_the_generate_screen_cycles_to_the_gmm_sampler_and_its_twin_draws_the_same(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(ProcessStats, "sample", lambda self: Stats(1.0, 1.0))

    async def scenario():
        app = make_app(runs_dir=runs, include_demo=False)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = GenerateScreen("tiny", seed=2)
            app.push_screen(screen)
            deadline = time.monotonic() + 60
            while screen.figure is None and time.monotonic() < deadline:
                await pilot.pause(0.05)
            prior = screen.figure.image
            await pilot.press("m")
            while (screen.figure.info.get("sampler") != "gmm" or screen.shown is None) and time.monotonic() < deadline:
                await pilot.pause(0.05)
            title = str(screen.query_one("#ex-title").render())
            return prior, screen.figure.image, screen.headless(), title

    prior, shown, twin, title = asyncio.run(scenario())
    assert "GMM" in title and "--sampler" in twin
    assert not np.array_equal(np.asarray(prior), np.asarray(shown))  # other codes, other faces
    kept = list((runs / "tiny" / "samplers").glob("gmm-*.json"))
    assert len(kept) == 1
    fitted_at = kept[0].stat().st_mtime_ns
    out_file = tmp_path / "gmm.png"
    twin = twin[: twin.index("--out")] + ["--out", str(out_file), "--runs-dir", str(runs)]
    assert cli(*twin).returncode == 0
    assert np.array_equal(np.asarray(shown.convert("RGB")), pixels(out_file))
    assert kept[0].stat().st_mtime_ns == fitted_at  # the twin read the fit the screen kept, not a new one


@pytest.mark.parametrize("family", ["factorvae", "vamp", "hvae", "vqvae"])
def test_every_familys_screens_show_their_twins_pixels(family, tmp_path, monkeypatch):
    """The screens of a family with its own network or prior (hierarchical, discrete, VampPrior, critic) against
    their twins; what a discrete code does not define is one line on its screen."""
    monkeypatch.setattr(ProcessStats, "sample", lambda self: Stats(1.0, 1.0))
    train(RunStore(tmp_path, include_demo=False), "f", tiny_config(model=family, max_steps=8, pseudo_inputs=4,
                                                                     codebook_size=16, prior_fraction=0.5))
    screens = [(GenerateScreen, {"seed": 3}, ()), (InterpolateScreen, {"seed": 1}, ()), (ReconstructScreen, {}, ()),
               (GenerateScreen, {"seed": 3}, ("m", "m") if family != "vqvae" else ())]  # the VampPrior sampler
    for screen_cls, kwargs, keys in screens:
        async def scenario():
            app = make_app(runs_dir=tmp_path, include_demo=False)
            async with app.run_test(size=(100, 30)) as pilot:
                screen = screen_cls("f", **kwargs)
                app.push_screen(screen)
                deadline = time.monotonic() + 60
                while screen.figure is None and time.monotonic() < deadline:
                    await pilot.pause(0.05)
                for key in keys:
                    before = screen.figure
                    await pilot.press(key)
                    while screen.figure is before and time.monotonic() < deadline:
                        await pilot.pause(0.05)
                return screen.figure, screen.headless()

        figure, twin = asyncio.run(scenario())
        if keys:
            assert figure.info["sampler"] == "vamp" and twin[twin.index("--sampler") + 1] == "vamp"
        out_file = tmp_path / f"{screen_cls.__name__}{len(keys)}.png"
        twin = twin[: twin.index("--out")] + ["--out", str(out_file), "--runs-dir", str(tmp_path)]
        done = cli(*twin)
        assert done.returncode == 0, done.stderr
        assert np.array_equal(np.asarray(figure.image.convert("RGB")), pixels(out_file)), (family, twin)
    if family == "vqvae":
        async def latent_screen():
            app = make_app(runs_dir=tmp_path, include_demo=False)
            async with app.run_test(size=(100, 30)) as pilot:
                screen = LatentScreen("f")
                app.push_screen(screen)
                deadline = time.monotonic() + 60

                def title() -> str:  # "" until the screen has composed
                    found = screen.query("#ex-title")
                    return str(found.first().render()) if found else ""

                while "not defined" not in title() and time.monotonic() < deadline:
                    await pilot.pause(0.05)
                return title()

        assert "not defined for a discrete code" in asyncio.run(latent_screen())
