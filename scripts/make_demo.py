"""Build the packaged read-only `demo` run (vaetui/demo/demo/) and its pictures in docs/, reproducibly.

    python scripts/make_demo.py                       # trains (about 30 minutes on 2 quiet CPU cores), then packages
    python scripts/make_demo.py --from-run DIR        # package an already trained run folder

It runs exactly:
    vaetui train --preset faces64 --name demo-build --epochs 12 --dataset-size 60000 --precision bf16 --threads 2
    vaetui eval demo-build --samples
then keeps config.json, metrics.jsonl, the last 8 image snapshots, the eval and ckpt-best.pt
with the model weights only (no optimiser state), so the package stays small (< 10 MB),
and writes docs/demo-samples.png, docs/demo-interpolation.png and docs/demo-traversal.png
with the explore screens' headless twins.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from vaetui.runs import Run, atomic_write_bytes

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "vaetui" / "demo" / "demo"
BUILD_NAME = "demo-build"  # "demo" is the packaged run's name, taken in every run store
COMMAND = ["train", "--preset", "faces64", "--name", BUILD_NAME, "--epochs", "12", "--dataset-size", "60000",
           "--precision", "bf16", "--threads", "2"]
PICTURES = {
    "demo-samples.png": ["sample", "demo", "--n", "32", "--seed", "0"],
    "demo-interpolation.png": ["interpolate", "demo", "--steps", "11", "--pairs", "3", "--seed", "0"],
    "demo-traversal.png": ["latent", "demo", "--dims", "5"],
}


def vaetui(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "vaetui", *args], check=True)


def package(src: Path, dst: Path = TARGET, keep_snapshots: int = 8) -> None:
    """Copy a trained run into the package under the name demo, slimmed to what exploring needs."""
    run = Run(src)
    state, path, _ = run.load_checkpoint("best")
    if dst.exists():
        shutil.rmtree(dst)
    (dst / "snapshots").mkdir(parents=True)
    shutil.copy(src / "config.json", dst / "config.json")
    events = [json.loads(line) for line in (src / "metrics.jsonl").read_text().splitlines()]
    snaps = [e for e in events if e["type"] == "images"][-keep_snapshots:]
    keep = {e["path"] for e in snaps}
    events = [e for e in events if e["type"] != "images" or e["path"] in keep]
    for e in events:
        if e["type"] == "checkpoint":
            e["path"] = Path(e["path"]).name
        if e["type"] == "started":
            e["run"] = "demo"
    (dst / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    for rel in keep:
        shutil.copy(src / rel, dst / rel)
    for result in sorted((src / "eval").glob("*.json")):  # the numbers the screens show beside the demo
        data = json.loads(result.read_text())
        data["protocol"]["run"] = "demo"
        (dst / "eval").mkdir(exist_ok=True)
        (dst / "eval" / result.name).write_text(json.dumps(data, indent=2))
    slim = {k: state[k] for k in ("format", "config", "model", "step", "epoch", "best_valid")}
    buf = io.BytesIO()
    torch.save(slim, buf)
    atomic_write_bytes(dst / "ckpt-best.pt", buf.getvalue())
    size = sum(p.stat().st_size for p in dst.rglob("*") if p.is_file())
    print(f"packaged {path.name} (step {state['step']}) into {dst}: {size / 1e6:.1f} MB")


def pictures(out: Path = ROOT / "docs") -> None:
    """The demo's samples, an interpolation strip and a traversal, drawn by the headless twins."""
    for name, args in PICTURES.items():
        vaetui(*args, "--out", str(out / name))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--from-run", help="package an already trained run folder instead of training")
    args = ap.parse_args()
    if args.from_run:
        src = Path(args.from_run)
    else:
        build = Path(tempfile.mkdtemp(prefix="vaetui-demo-"))
        vaetui(*COMMAND, "--runs-dir", str(build))
        src = build / BUILD_NAME
    if not any((src / "eval").glob("*.json")):
        vaetui("eval", src.name, "--runs-dir", str(src.parent), "--samples")
    package(src)
    pictures()


if __name__ == "__main__":
    main()
