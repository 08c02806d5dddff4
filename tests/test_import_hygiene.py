"""Domain modules never import the UI: checked in a fresh interpreter."""

import subprocess
import sys

DOMAIN = ["vaetui.config", "vaetui.model", "vaetui.losses", "vaetui.data", "vaetui.data.synthetic",
          "vaetui.explore", "vaetui.imaging", "vaetui.errors"]


def test_domain_modules_do_not_import_textual():
    code = (
        "import importlib, sys\n"
        f"for m in {DOMAIN!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'textual_image') or m.startswith('vaetui.ui'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"UI modules imported by domain code: {out.stdout}"


def test_cli_help_does_not_import_torch():
    code = "import sys\nfrom vaetui.cli import build_parser\nbuild_parser()\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
