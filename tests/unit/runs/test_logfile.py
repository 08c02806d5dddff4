"""metrics.jsonl, the file, piece by piece: repair of a torn tail, truncation after a step, the first line that
names a log, the bulk line scanner, the follower's reads. Written against bench/mutation.py's survivors in
vaetui/logfile.py."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from vaetui.runs.logfile import HEAD_BYTES, EventLog, LogFollower, head_of, line_kind, parse_lines, scan_lines


def lines_of(path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


@pytest.mark.parametrize("tail", [b"", b'{"type":"st', b"x" * 70000, b"\n\n"])
def test_repair_trims_exactly_the_torn_tail(tmp_path, tail):
    path = tmp_path / "metrics.jsonl"
    whole = b"".join(json.dumps({"type": "step", "step": k}).encode() + b"\n" for k in range(1, 4))
    path.write_bytes(whole + tail)
    torn = bool(tail) and not tail.endswith(b"\n")
    assert EventLog(path).repair() is torn
    assert path.read_bytes() == (whole if torn else whole + tail)
    assert EventLog(path).repair() is False  # a whole log is left as it is


def test_repair_of_a_log_with_no_whole_line_empties_it_and_of_none_does_nothing(tmp_path):
    path = tmp_path / "metrics.jsonl"
    assert EventLog(path).repair() is False and not path.exists()
    path.write_bytes(b"y" * 70000)  # one torn line longer than a read block
    assert EventLog(path).repair() is True and path.read_bytes() == b""


def test_the_first_append_trims_a_torn_tail_then_writes_one_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"type":"step","step":1}\n{"type":"st')
    log = EventLog(path)
    log.append({"type": "step", "step": 2, "loss": float("nan")})
    log.append({"type": "step", "step": 3})
    assert lines_of(path) == [b'{"type":"step","step":1}\n', b'{"type":"step","step":2,"loss":NaN}\n',
                              b'{"type":"step","step":3}\n']


def test_truncate_after_keeps_started_events_and_whole_lines_up_to_the_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    events = [{"type": "started", "step": 0}, {"type": "step", "step": 1}, {"type": "step", "step": 2},
              {"type": "started", "step": 2}, {"type": "step", "step": 3}, {"type": "warning", "step": 4}]
    path.write_bytes(b"".join(json.dumps(e).encode() + b"\n" for e in events) + b"not json\n" + b'{"type":"st')
    EventLog(path).truncate_after(2)
    kept = [json.loads(line) for line in lines_of(path)]
    assert kept[0]["type"] == "log" and kept[0]["generation"] == 1 and kept[0]["time"] > 0
    assert kept[1:] == events[:4]
    EventLog(path).truncate_after(5)  # nothing past step 5: left as it is, no new generation
    assert json.loads(lines_of(path)[0])["generation"] == 1
    EventLog(path).truncate_after(0)
    kept = [json.loads(line) for line in lines_of(path)]
    assert kept[0]["generation"] == 2 and [e["type"] for e in kept[1:]] == ["started", "started"]
    EventLog(tmp_path / "missing.jsonl").truncate_after(3)  # no log: nothing to do
    assert not (tmp_path / "missing.jsonl").exists()


def test_head_of_is_the_first_whole_line(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"")
    with open(path, "rb") as fh:
        assert head_of(fh) == ""
    path.write_bytes(b'{"a":1')  # no whole line yet
    with open(path, "rb") as fh:
        assert head_of(fh) == ""
    path.write_bytes(b'{"a":1}\n{"b":2}\n')
    with open(path, "rb") as fh:
        first = head_of(fh)
    path.write_bytes(b'{"a":1}\n{"c":3}\n')
    with open(path, "rb") as fh:
        assert head_of(fh) == first and len(first) == 16  # only the first line counts
    path.write_bytes(b'{"a":2}\n{"b":2}\n')
    with open(path, "rb") as fh:
        assert head_of(fh) != first
    path.write_bytes(b"z" * (HEAD_BYTES + 10) + b"\n")  # a first line longer than what is read of it
    with open(path, "rb") as fh:
        assert head_of(fh) == ""


def test_the_follower_reads_whole_lines_once_and_starts_again_on_a_new_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    follower = LogFollower(path)
    assert follower.read_bytes() == (b"", False) and follower.size() == 0
    path.write_bytes(b'{"step":1}\n{"step":2')
    assert follower.read_bytes() == (b'{"step":1}\n', False) and follower.offset == 11
    assert follower.read_bytes() == (b"", False)
    with open(path, "ab") as fh:
        fh.write(b'}\n{"step":3}\n')
    data, reset = follower.read_bytes(limit=12)  # a limit stops at the last whole line within it
    assert (data, reset) == (b'{"step":2}\n', False)
    assert follower.read()[0] == [{"step": 3}]
    os.unlink(path)
    assert follower.read_bytes() == (b"", True) and follower.offset == 0  # gone: start again
    path.write_bytes(b'{"step":9}\n')
    assert follower.read() == ([{"step": 9}], False)
    path.write_bytes(b'{"s":1}\n')  # shorter than what was read: read again from the start
    assert follower.read() == ([{"s": 1}], True)
    assert follower.size() == 8


def test_line_kind_and_parse_lines():
    assert line_kind(b'{"type":"step","step":1}') == "step"
    assert line_kind(b'{"type": "epoch", "step": 1}') == "epoch"
    assert line_kind(b'{"step":1,"type":"step"}') is None and line_kind(b'{"type":"unterminated') is None
    assert parse_lines(b'{"a":1}\n[1]\nnot json\n\n{"b":NaN}\n')[0] == {"a": 1}
    assert len(parse_lines(b'{"a":1}\n[1]\nnot json\n\n{"b":NaN}\n')) == 2


def test_scan_lines_finds_every_line_and_which_are_steps():
    data = (b'{"type":"step","step":1}\n{"type": "step", "step": 2}\n{"type":"epoch","step":2}\n'
            b'{"type":"started"}\n{"type": "stx"}\n\n')
    starts, ends, is_step = scan_lines(data)
    assert [data[s:e] for s, e in zip(starts, ends)] == data.split(b"\n")[:-1]
    assert is_step.tolist() == [True, True, False, False, False, False]
    starts, ends, is_step = scan_lines(b'no newline at all')
    assert len(starts) == len(ends) == len(is_step) == 0 and is_step.dtype == np.bool_
    starts, ends, is_step = scan_lines(b'{"type":"s\n')  # a line too short to hold a type: not a step
    assert is_step.tolist() == [False]
