"""The trainer lock, piece by piece: who holds it, how long another host's heartbeat has stood still, what is said.

(Written against bench/mutation.py's survivors: each test here kills mutants of vaetui/locks.py that the
end-to-end lock tests let through.)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

import vaetui.disk.locks as locks

HERE = socket.gethostname()


@pytest.fixture
def clock(monkeypatch):
    now = {"t": 5000.0}
    monkeypatch.setattr(locks, "_now", lambda: now["t"])
    return now


def record(path, **fields) -> None:
    path.write_text(json.dumps(fields))


def test_no_file_no_holder_and_a_held_lock_names_this_process(tmp_path):
    path = tmp_path / "lock"
    assert locks.holder(path) is None
    lock = locks.RunLock(path)
    assert lock.acquire() is None and lock.held
    h = locks.holder(path)
    assert h == locks.Holder(os.getpid(), HERE, True, None)
    saved = json.loads(path.read_text())
    assert saved["pid"] == os.getpid() and saved["host"] == HERE and saved["heartbeat"] == saved["time"]
    assert isinstance(saved["heartbeat"], float) and abs(saved["heartbeat"] - time.time()) < 60  # a real beat
    assert lock._thread.daemon  # the heartbeat never keeps a finished process alive
    assert len(path.read_bytes()) == locks.RECORD_BYTES
    with pytest.raises(locks.HeldElsewhere, match="this process already trains this run"):
        lock.acquire()
    lock.release()
    assert not lock.held and not path.exists() and locks.holder(path) is None
    lock.release()  # twice is harmless


def test_a_dead_holder_here_is_not_alive_and_is_taken_over_by_name(tmp_path):
    path = tmp_path / "lock"
    record(path, pid=4242, host=HERE, time=1.0, heartbeat=2.0)
    assert locks.holder(path) == locks.Holder(4242, HERE, False, None)
    lock = locks.RunLock(path)
    assert lock.acquire() == "took over the lock left by pid 4242, which is no longer running"
    lock.release()


def test_a_live_holder_in_another_process_is_alive_and_refuses(tmp_path):
    path = tmp_path / "lock"
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; from vaetui.disk.locks import RunLock; "
                              "RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)", str(path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        h = locks.holder(path, wait=True)
        assert h.alive and h.pid == child.pid and h.host == HERE
        with pytest.raises(locks.HeldElsewhere, match=rf"^pid {child.pid} on {HERE}$"):
            locks.RunLock(path).acquire()
    finally:
        child.kill()
        child.wait()
    assert not locks.holder(path).alive  # the kernel freed the flock with the process


def test_another_host_s_heartbeat_is_timed_by_this_host_s_clock(tmp_path, clock):
    path = tmp_path / "lock"
    record(path, pid=7, host="node-b", time=0, heartbeat=10.0)
    assert locks.holder(path) == locks.Holder(7, "node-b", True, 0.0)
    clock["t"] += locks.STALE_AFTER_S - 1
    h = locks.holder(path)
    assert h.alive and h.age == pytest.approx(locks.STALE_AFTER_S - 1)
    clock["t"] += 1
    assert locks.holder(path) == locks.Holder(7, "node-b", False, locks.STALE_AFTER_S)
    record(path, pid=7, host="node-b", time=0, heartbeat=30.0)  # it beats again: alive, timed afresh
    assert locks.holder(path) == locks.Holder(7, "node-b", True, 0.0)
    record(path, pid=8, host="node-b", time=0, heartbeat=30.0)  # another holder with the same beat: afresh too
    assert locks.holder(path).age == 0.0


def test_what_this_host_saw_is_kept_for_the_next_process(tmp_path, clock):
    path, other = tmp_path / "lock", tmp_path / "other-lock"
    record(path, pid=7, host="node-b", heartbeat=1.0)
    record(other, pid=9, host="node-c", heartbeat=1.0)
    assert locks.silence(path, locks._read_json(path)) == 0.0
    assert locks.silence(other, locks._read_json(other)) == 0.0
    book = json.loads((locks_cache() / "heartbeats.json").read_text())
    assert book[os.path.realpath(path)] == ["node-b:7:1.0", 5000.0]
    assert book[os.path.realpath(other)] == ["node-c:9:1.0", 5000.0]
    clock["t"] += 45
    assert locks.silence(path, locks._read_json(path)) == 45.0  # read back from the book
    clock["t"] += 31 * 86400  # a month on: old notes are dropped when a new one is written
    record(path, pid=7, host="node-b", heartbeat=2.0)
    assert locks.silence(path, locks._read_json(path)) == 0.0
    book = json.loads((locks_cache() / "heartbeats.json").read_text())
    assert list(book) == [os.path.realpath(path)]


def test_a_damaged_book_of_heartbeats_is_started_again(tmp_path, clock):
    path = tmp_path / "lock"
    record(path, pid=7, host="node-b", heartbeat=1.0)
    (locks_cache() / "heartbeats.json").parent.mkdir(parents=True, exist_ok=True)
    for damage in ("[1, 2]", "{not json", json.dumps({os.path.realpath(path): ["node-b:7:1.0", "x"]})):
        (locks_cache() / "heartbeats.json").write_text(damage)
        assert locks.silence(path, locks._read_json(path)) == 0.0


def locks_cache():
    from vaetui.disk.files import cache_dir

    return cache_dir()


@pytest.mark.parametrize("text, parsed", [
    ('{"pid": 3, "host": "h", "heartbeat": 1.5}', {"pid": 3, "host": "h", "heartbeat": 1.5}),
    ('{"pid": 3.0, "host": "h", "time": 2}', {"pid": 3, "host": "h", "heartbeat": 2.0}),  # old files: time
    ('{"pid": true, "host": ["h"], "heartbeat": "soon"}', {"pid": -1, "host": "?", "heartbeat": None}),
    ('{"pid": NaN, "heartbeat": Infinity}', {"pid": -1, "host": "?", "heartbeat": None}),
    ("[3]", {}), ("{torn", {}), ("", None), ("null", None),
])
def test_the_record_is_read_whatever_the_file_holds(tmp_path, text, parsed):
    path = tmp_path / "lock"
    path.write_text(text)
    assert locks._read_json(path) == parsed


@pytest.mark.parametrize("seconds, text", [(None, "?"), (-5, "0s"), (0, "0s"), (59.9, "59s"), (60, "1m00s"),
                                           (3599, "59m59s"), (3600, "1h00m"), (7325, "2h02m")])
def test_ages_are_written_for_people(seconds, text):
    assert locks._age(seconds) == text


def test_a_holder_is_described_with_its_heartbeat_only_when_elsewhere():
    assert locks.Holder(5, HERE, True, 3.0).describe() == f"pid 5 on {HERE}"
    assert locks.Holder().describe() == "pid ? on ?"
    assert locks.Holder(5, "node-b", True, None).describe() == "pid 5 on node-b"
    assert locks.Holder(5, "node-b", True, 75.0).describe() == (
        "pid 5 on node-b (its heartbeat unchanged for 1m15s as seen here; a holder silent for 2m00s is taken to be "
        "gone)")


def test_file_lock_blocks_a_second_holder_until_the_first_leaves(tmp_path):
    path = tmp_path / "sub" / "claim.lock"
    with locks.file_lock(path):
        assert path.exists()
        assert locks.try_lock(path) is None  # held: not to be had
    fd = locks.try_lock(path)
    assert fd is not None
    os.close(fd)
    assert locks.try_lock(tmp_path / "missing") is None


def test_a_lock_file_removed_between_open_and_flock_is_made_again_and_held(tmp_path, monkeypatch):
    """The holder before released (and removed) the file between our open and our flock: holding the removed
    inode would let the next taker make a new file and hold it too."""
    path = tmp_path / "lock"
    path.write_text("")
    real_open = os.open
    calls = {"n": 0}

    def vanishing_open(p, flags, *mode):
        fd = real_open(p, flags, *mode)
        calls["n"] += 1
        if calls["n"] == 1:
            os.unlink(p)
        return fd

    monkeypatch.setattr(locks.os, "open", vanishing_open)
    lock = locks.RunLock(path)
    assert lock.acquire() is None
    monkeypatch.setattr(locks.os, "open", real_open)
    assert calls["n"] == 2 and os.path.samestat(os.fstat(lock._fd), os.stat(path))  # the file at the path
    assert locks.try_lock(path) is None
    lock.release()


def test_a_taker_that_has_not_written_its_name_yet_is_waited_for(tmp_path):
    """A lock held by a taker whose record is still empty: holder(wait=True) gives it a moment to write it."""
    import fcntl
    import threading

    path = tmp_path / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert locks.holder(path) == locks.Holder(-1, "?", True, None)  # held, nameless
        writer = threading.Timer(0.1, lambda: os.pwrite(fd, json.dumps({"pid": 77, "host": HERE}).encode(), 0))
        writer.start()
        assert locks.holder(path, wait=True).pid == 77
        writer.join()
        with pytest.raises(locks.HeldElsewhere, match=f"^pid 77 on {HERE}$"):
            locks.RunLock(path).acquire()
    finally:
        os.close(fd)
