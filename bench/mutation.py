"""Mutation score of the modules that keep data safe, each against the narrow tests that guard it (mutmut).

    python bench/mutation.py                    # every module below
    python bench/mutation.py locks logfile      # some of them
    python bench/mutation.py --list             # which tests guard which module

For each module: a copy of the project in a temporary folder (mutmut writes its mutants beside the code), a
[tool.mutmut] section naming the module and its tests, `mutmut run`, and the count of killed and surviving
mutants; `--keep` leaves the folder so `mutmut show NAME` there prints a survivor's diff. The tests chosen run
in-process (mutmut swaps mutants inside the test process; a `vaetui` subprocess would run the unmutated code).

Needs `pip install mutmut` (a development tool, not a dependency of vaetui). Minutes per module on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module -> the tests that guard it (pytest node ids or -k expressions on files), fast and in-process
GUARDS = {
    "disk/locks": ["tests/unit/disk/test_locks.py", "tests/functional/test_run_lock.py"],
    "runs/logfile": ["tests/unit/runs/test_logfile.py", "tests/unit/runs/test_log_identity.py",
                     "tests/unit/runs/test_history.py", "tests/functional/test_recovery.py",
                     "-k", "log or rewrit or torn or truncat or fsync or summary or refresh or history"],
    "train/control": ["tests/functional/test_control.py", "tests/unit/train/test_intents.py", "-k", "not headless"],
    "runs/checkpoint": ["tests/unit/runs/test_checkpoint.py", "tests/functional/test_run_store.py",
                        "tests/functional/test_recovery.py", "tests/functional/test_epoch_end_crashes.py", "-k",
                        "checkpoint or flipped or truncated_and_garbage or cuda_generator or damaged_latest"],
    "train/state": ["tests/functional/test_epoch_end_crashes.py", "tests/functional/test_engine.py", "-k",
                    "old_order or train_loss or identical_parameters or rolled_back"],
}


def run_module(module: str, keep: bool, tree: Path = ROOT) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"vaetui-mutation-{module.replace('/', '-')}-"))
    try:
        for part in ("vaetui", "tests"):
            shutil.copytree(tree / part, work / part, ignore=shutil.ignore_patterns("__pycache__", "__snapshots__"))
        files, select = _split(GUARDS[module])
        files = [f for f in files if (tree / f).exists()]  # an older tree (--tree) may lack a test file
        (work / "pyproject.toml").write_text(
            "[tool.mutmut]\n"
            'source_paths = ["vaetui"]\n'
            f'only_mutate = ["vaetui/{module}.py"]\n'
            f"pytest_add_cli_args_test_selection = {json.dumps(files)}\n"
            f"pytest_add_cli_args = {json.dumps(['-p', 'no:cacheprovider', '-q', *select])}\n"
            "[tool.pytest.ini_options]\n"
            'testpaths = ["tests"]\n')
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(work)}
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(os.cpu_count() or 1)],
                             cwd=work, env=env, capture_output=True, text=True)
        listing = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=work, env=env,
                                 capture_output=True, text=True).stdout
        counts: dict[str, int] = {}
        survivors = []
        for line in listing.splitlines():
            m = re.match(r"\s*(\S+): (.+)$", line)
            if m and m.group(1).startswith("vaetui"):
                counts[m.group(2).strip()] = counts.get(m.group(2).strip(), 0) + 1
                if m.group(2).strip() == "survived":
                    survivors.append(m.group(1))
        killed, survived = counts.get("killed", 0), counts.get("survived", 0)
        result = {"module": module, "killed": killed, "survived": survived, "other": {k: v for k, v in counts.items()
                  if k not in ("killed", "survived")}, "score": killed / max(killed + survived, 1),
                  "seconds": round(time.monotonic() - started), "survivors": survivors, "folder": str(work)}
        if not counts:
            result["error"] = (out.stdout + out.stderr)[-2000:]
        return result
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _split(args: list[str]) -> tuple[list[str], list[str]]:
    k = args.index("-k") if "-k" in args else len(args)
    return args[:k], args[k:]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("modules", nargs="*", choices=[[], *GUARDS], metavar="MODULE", help=", ".join(GUARDS))
    p.add_argument("--list", action="store_true", help="print which tests guard which module")
    p.add_argument("--keep", action="store_true", help="keep each module's folder (mutmut show NAME there)")
    p.add_argument("--tree", type=Path, default=ROOT, help="the project tree to measure (e.g. a `git worktree` of an "
                   "older commit, for a before/after comparison; default: this one)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.list:
        for module, guard in GUARDS.items():
            print(f"vaetui/{module}.py: {' '.join(guard)}")
        return 0
    import importlib.util

    if importlib.util.find_spec("mutmut") is None:
        print("bench/mutation.py needs mutmut: pip install mutmut", file=sys.stderr)
        return 2
    results = []
    for module in args.modules or list(GUARDS):
        r = run_module(module, args.keep, args.tree.resolve())
        results.append(r)
        if "error" in r:
            print(f"vaetui/{module}.py: mutmut reported nothing:\n{r['error']}", file=sys.stderr)
            continue
        print(f"vaetui/{module}.py: {r['killed']} killed, {r['survived']} survived, score {r['score']:.0%} "
              f"({r['seconds']} s{', ' + str(r['other']) if r['other'] else ''})", flush=True)
        by_function: dict[str, int] = {}
        for name in r["survivors"]:
            function = re.sub(r"__mutmut_\d+$", "", name.split(".", 2)[-1]).replace("\u01c1", ".").lstrip("x_.")
            by_function[function] = by_function.get(function, 0) + 1
        if by_function:
            print("  survivors by function: " + ", ".join(f"{f} {n}" for f, n in sorted(by_function.items())))
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
