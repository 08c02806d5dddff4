"""Layers kept by a test: no module outside vaetui/ui/ (and the TUI launcher) may import textual, textual_image
or rich.live. One case per module, each imported alone in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vaetui"
FORBIDDEN = ("textual", "textual_image", "rich.live")
# The TUI's own layer, and the one CLI module that starts it (inside a function).
ALLOWED = ("vaetui.ui", "vaetui.cli.runs")


def modules() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        if name.endswith("__main__"):
            continue
        found.append(name)
    return found


DOMAIN = [m for m in modules() if not m.startswith(ALLOWED)]


def test_every_domain_module_is_checked():
    for must in ("vaetui.train.engine", "vaetui.runs.store", "vaetui.runs.history", "vaetui.pictures.figures",
                 "vaetui.metrics.likelihood", "vaetui.runs.events", "vaetui.train.distributed", "vaetui.data.cache",
                 "vaetui.runs.checkpoint", "vaetui.cli.train"):
        assert must in DOMAIN


@pytest.mark.parametrize("module", DOMAIN)
def test_domain_module_does_not_import_the_ui(module):
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN[:2]!r} or m == 'rich.live'"
        " or m.startswith('vaetui.ui'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"{module} pulls in the UI: {out.stdout.strip()}"


def test_cli_help_does_not_import_torch():
    code = "import sys\nfrom vaetui.cli import build_parser\nbuild_parser()\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_app_starts_without_torch():
    """Importing torch takes ~1.7 s: the TUI's first frame must not wait for it, nor for what only pictures
    (PIL, numpy) or the explore screens need (~60 ms of a ~600 ms first frame on a slow host)."""
    code = ("import sys\nfrom vaetui.ui.app import make_app\nfrom vaetui.ui.screens.runs import RunsScreen\n"
            "app = make_app(include_demo=False)\n"
            "print(','.join(m for m in ('torch', 'numpy', 'PIL', 'vaetui.ui.screens.explore') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
