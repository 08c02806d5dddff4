"""Build the packaged read-only `demo` run (vaetui/demo/demo/), reproducibly.

    python scripts/make_demo.py            # trains (about 10 minutes on 2 CPU cores), then packages

It runs exactly:
    vaetui train --preset faces64 --name demo --epochs 6 --precision bf16 --threads 2 --runs-dir BUILD
then keeps config.json, metrics.jsonl, the last 8 image snapshots and ckpt-best.pt with
the model weights only (no optimiser state), so the package stays small (< 8 MB).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from vaetui.runs import Run, atomic_write_bytes

TARGET = Path(__file__).resolve().parents[1] / "vaetui" / "demo" / "demo"
COMMAND = ["train", "--preset", "faces64", "--name", "demo", "--epochs", "6", "--precision", "bf16", "--threads", "2"]


def package(src: Path, dst: Path = TARGET, keep_snapshots: int = 8) -> None:
    """Copy a trained run into the package, slimmed to what exploring needs."""
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
    (dst / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    for rel in keep:
        shutil.copy(src / rel, dst / rel)
    slim = {k: state[k] for k in ("format", "config", "model", "step", "epoch", "best_valid")}
    import io

    buf = io.BytesIO()
    torch.save(slim, buf)
    atomic_write_bytes(dst / "ckpt-best.pt", buf.getvalue())
    size = sum(p.stat().st_size for p in dst.rglob("*") if p.is_file())
    print(f"packaged {path.name} (step {state['step']}) into {dst}: {size / 1e6:.1f} MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--from-run", help="package an already trained run folder instead of training")
    args = ap.parse_args()
    if args.from_run:
        package(Path(args.from_run))
        return
    build = Path(tempfile.mkdtemp(prefix="vaetui-demo-"))
    subprocess.run([sys.executable, "-m", "vaetui", *COMMAND, "--runs-dir", str(build)], check=True)
    package(build / "demo")


if __name__ == "__main__":
    main()
