import pytest
import subprocess
import sys

from PIL import Image

from vaetui.cli import main
from vaetui.models.vae import ConvVAE, parameter_count


def run(*args):
    return subprocess.run([sys.executable, "-m", "vaetui", *args], capture_output=True, text=True)


def test_version_and_help():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("vaetui ")
    out = run("--help")
    assert out.returncode == 0 and "model" in out.stdout and "data" in out.stdout


def test_model_prints_seed_parameter_count(capsys):
    assert main(["model", "--preset", "seed"]) == 0
    out = capsys.readouterr().out
    count = parameter_count(ConvVAE((218, 178), hidden=32, latent=100))
    assert f"parameters: {count:,}" in out
    assert "(0, 2)" in out and "32x218x178" in out


def test_model_with_overrides(capsys):
    assert main(["model", "--preset", "tiny", "--latent", "5", "--size", "48x40"]) == 0
    out = capsys.readouterr().out
    assert f"parameters: {parameter_count(ConvVAE((48, 40), hidden=8, latent=5)):,}" in out


def test_model_names_a_familys_own_parameters(capsys):
    assert main(["model", "--preset", "tiny", "--model", "vamp", "--latent", "5"]) == 0
    out = capsys.readouterr().out
    pseudo = 32 * 3 * 32 * 32  # the default K pseudo-inputs, each an image of the preset's size
    assert "Tomczak & Welling 2018" in out and f"{pseudo:,} parameters" in out
    assert f"parameters: {parameter_count(ConvVAE((32, 32), hidden=8, latent=5)) + pseudo:,}" in out
    assert main(["model", "--preset", "tiny", "--model", "factorvae"]) == 0
    out = capsys.readouterr().out
    assert "Kim & Mnih 2018" in out and "critic" in out and "trains tc" in out


def test_data_preview_writes_grid(tmp_path):
    out = tmp_path / "grid.png"
    assert main(["data", "preview", "--size", "32", "--out", str(out)]) == 0
    img = Image.open(out)
    # 8 columns x 4 rows of 32x32 with 2-pixel gutters.
    assert img.size == (8 * 34 + 2, 4 * 34 + 2)
    import numpy as np

    assert len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)) > 100


def test_data_blend_strip_endpoints_are_the_images(tmp_path):
    out = tmp_path / "blend.png"
    assert main(["data", "blend", "--size", "32", "--index", "1", "2", "--out", str(out)]) == 0
    img = Image.open(out)
    assert img.size == (6 * 34 + 2, 34 + 2)
    from vaetui.data.synthetic import SyntheticFaces
    import numpy as np

    x = SyntheticFaces((32, 32)).images([1, 2]).permute(0, 2, 3, 1).numpy()
    arr = np.asarray(img.convert("RGB"))
    first = arr[2:34, 2:34]  # alpha = 0: all X2
    last = arr[2:34, 2 + 5 * 34 : 34 + 5 * 34]  # alpha = 1: all X1
    assert np.abs(first.astype(int) - x[1]).max() <= 1
    assert np.abs(last.astype(int) - x[0]).max() <= 1


def test_user_errors_are_one_line_and_nonzero(tmp_path):
    out = run("data", "preview", "--data", "celeba", "--out", str(tmp_path / "x.png"))
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1 and "data-root" in out.stderr and "Traceback" not in out.stderr
    out = run("model", "--size", "8")
    assert out.returncode != 0 and "[16, 1024]" in out.stderr and "Traceback" not in out.stderr
    out = run("data", "blend", "--size", "32", "--index", "0", "999999999", "--out", str(tmp_path / "b.png"))
    assert out.returncode != 0 and "out of range" in out.stderr


def test_an_option_before_the_command_is_the_command_s(tmp_path, capsys, monkeypatch):
    """`vaetui --runs-dir D runs` lists D (it used to be read into the TUI's settings and dropped: ./checkpoints)."""
    from fake_runs import make_finished_run

    make_finished_run(tmp_path / "store", "over-there")
    monkeypatch.chdir(tmp_path)
    assert main(["--runs-dir", str(tmp_path / "store"), "runs"]) == 0
    assert "over-there" in capsys.readouterr().out
    # given again after the command, the command's own wins
    (tmp_path / "other").mkdir()
    assert main(["--runs-dir", str(tmp_path / "store"), "runs", "--runs-dir", str(tmp_path / "other")]) == 0
    assert "over-there" not in capsys.readouterr().out
    # and a missing folder is refused as the command refuses it
    with pytest.raises(SystemExit) as exc:
        main(["--runs-dir", str(tmp_path / "nope"), "runs"])
    assert exc.value.code == 2 and "no folder" in capsys.readouterr().err
