"""torchrun + DistributedDataParallel on CPU (gloo): same losses as one process, checkpoints load anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from vaetui.runs.checkpoint import load_model
from vaetui.runs.store import RunStore

ARGS = ["train", "--preset", "tiny", "--dataset-size", "128", "--batch-size", "16", "--threads", "1",
        "--log-format", "json"]
# A rank that dies of a signal (an abort inside gloo, say) prints where its Python threads stood.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}


def torchrun(nproc: int, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "vaetui",
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)


def why(proc: subprocess.CompletedProcess) -> str:
    """What a failed launch said: the ranks' own words come first in stderr, torchrun's summary of the failure last."""
    err = proc.stderr
    return err if len(err) <= 6000 else err[:4000] + "\n[...]\n" + err[-2000:]


def epochs(stdout: str) -> list[dict]:
    return [e for e in map(json.loads, (l for l in stdout.splitlines() if l.startswith("{"))) if e["type"] == "epoch"]


def test_two_gloo_processes_match_one_and_resume_with_one(tmp_path):
    runs = str(tmp_path)
    two = torchrun(2, *ARGS, "--runs-dir", runs, "--name", "two")
    assert two.returncode == 0, why(two)
    one = subprocess.run([sys.executable, "-m", "vaetui", *ARGS, "--runs-dir", runs, "--name", "one"],
                         capture_output=True, text=True, env=ENV)
    assert one.returncode == 0, why(one)
    e2, e1 = epochs(two.stdout), epochs(one.stdout)
    assert len(e2) == len(e1) == 2
    # Same global batch and data order; what differs is the reparameterisation noise (per rank) and
    # BatchNorm statistics (per rank on CPU). Stated tolerance: 1% of the loss.
    for a, b in zip(e2, e1):
        for key in ("train_loss", "valid_loss"):
            assert abs(a[key] - b[key]) <= 0.01 * b[key], (key, a[key], b[key])
    # Rank 0 alone wrote the run: one log, each step once.
    store = RunStore(tmp_path, include_demo=False)
    steps = [e["step"] for e in store.open("two").read_events()[0] if e["type"] == "step"]
    assert steps == sorted(set(steps)) and steps[-1] == 16
    # The checkpoint loads in a single process...
    model, config, path, _ = load_model(store.open("two"), "latest")
    assert path.name == "ckpt-latest.pt" and model.latent == config.model.latent
    # ...and a run started on 2 processes resumes on 1 (and the other way round).
    half = torchrun(2, *ARGS, "--runs-dir", runs, "--name", "half", "--max-steps", "6")
    assert half.returncode == 0, why(half)
    resumed = subprocess.run([sys.executable, "-m", "vaetui", *ARGS, "--runs-dir", runs, "--resume", "half",
                              "--max-steps", "10"], capture_output=True, text=True, env=ENV)
    assert resumed.returncode == 0, why(resumed)
    assert '"resumed": true' in resumed.stdout and '"reason": "max_steps"' in resumed.stdout
    again = torchrun(2, *ARGS, "--runs-dir", runs, "--resume", "half", "--max-steps", "12")
    assert again.returncode == 0, why(again)
    assert json.loads([l for l in again.stdout.splitlines() if '"finished"' in l][-1])["step"] == 12


def test_batch_must_split_over_processes(tmp_path):
    out = torchrun(2, *ARGS, "--batch-size", "15", "--runs-dir", str(tmp_path), "--name", "odd")
    assert out.returncode != 0
    assert "does not split evenly over 2 processes" in out.stdout + out.stderr


NODE = r"""
import os, sys
from pathlib import Path
node = Path(sys.argv[1]) / f"node{os.environ['RANK']}"  # each rank on its own disk: no shared filesystem
node.mkdir(parents=True, exist_ok=True)
os.chdir(node)
from vaetui.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_ranks_need_no_shared_filesystem(tmp_path):
    """Rank 1 never sees the run folder: rank 0 hands out the config and the checkpoint (issue "Trust", 8)."""
    script = tmp_path / "node.py"
    script.write_text(NODE)

    def launch(*args):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(script),
               str(tmp_path), *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)

    first = launch(*ARGS, "--runs-dir", "runs", "--name", "apart", "--max-steps", "6")
    assert first.returncode == 0, why(first)
    assert (tmp_path / "node0" / "runs" / "apart" / "ckpt-latest.pt").exists()
    assert not (tmp_path / "node1" / "runs").exists()  # rank 1 wrote nothing, read nothing
    resumed = launch(*ARGS, "--runs-dir", "runs", "--resume", "apart", "--max-steps", "10")
    assert resumed.returncode == 0, why(resumed)
    finished = [json.loads(l) for l in resumed.stdout.splitlines() if l.startswith("{")]
    started = next(e for e in finished if e["type"] == "started")
    assert started["resumed"] and started["step"] == 6 and finished[-1]["step"] == 10


def test_a_rank_that_cannot_read_the_data_stops_every_rank_with_its_reason(tmp_path):
    """Data missing on one node: every rank stops, and the message names the rank and the requirement."""
    from fakes import make_messy_folder

    script = tmp_path / "node.py"
    script.write_text(NODE)
    make_messy_folder(tmp_path / "node0" / "faces", n=40)  # only rank 0's disk has the images
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(script),
           str(tmp_path), "train", "--preset", "tiny", "--data", "folder", "--data-root", "faces", "--batch-size", "8",
           "--size", "32", "--threads", "1", "--runs-dir", "runs", "--name", "nodata", "--log-format", "json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env={**ENV, "VAETUI_CACHE_DIR": str(tmp_path / "cache")})
    assert out.returncode != 0
    said = [line for line in out.stderr.splitlines() if line.startswith("vaetui: error:")]
    assert len(said) == 1 and "rank 1: image folder faces does not exist" in said[0] and "each node needs it" in said[0]
    assert "/vaetui/" not in out.stderr  # torchrun reports the failed child; vaetui itself raised no traceback
