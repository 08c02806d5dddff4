"""Shared fixtures: keep torch to one thread so the suite behaves on 2 cores; each test is marked by the folder it
is in (unit, functional, ui, e2e), so `pytest -m unit` runs the fast part."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import atexit
import shutil
import tempfile
from pathlib import Path

# The tests (and the programs they start) keep run summaries in a cache of their own, not the user's,
# removed when the session ends.
os.environ["VAETUI_CACHE_DIR"] = tempfile.mkdtemp(prefix="vaetui-test-cache-")
atexit.register(shutil.rmtree, os.environ["VAETUI_CACHE_DIR"], ignore_errors=True)

import pytest
import torch

torch.set_num_threads(1)


KINDS = ("unit", "functional", "ui", "e2e")


def pytest_collection_modifyitems(config, items):
    """Mark each test with its folder's kind: tests/unit/... -> unit, and so on."""
    root = Path(__file__).resolve().parent
    for item in items:
        kind = Path(item.path).resolve().relative_to(root).parts[0]
        if kind not in KINDS:
            raise pytest.UsageError(f"{item.nodeid}: a test lives in one of tests/{{{','.join(KINDS)}}}/")
        item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture
def gen():
    """A seeded CPU generator."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture(autouse=True)
def no_trainer_outlives_its_test(monkeypatch):
    """A trainer the TUI starts lives in a session of its own, on purpose: one a failed test leaves is killed."""
    import vaetui.train.process as launch

    started = []
    real = launch.spawn_trainer

    def spawn(*args, **kwargs):
        proc = real(*args, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(launch, "spawn_trainer", spawn)
    yield
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
