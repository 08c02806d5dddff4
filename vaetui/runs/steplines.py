"""Step lines of metrics.jsonl read fast: the numbers a curve needs without parsing the whole line, and the parts
(a family's terms, KL per dimension) read whole where a line has them. The fold (vaetui.runs.history) calls these
for every step line of a long log."""

from __future__ import annotations

import json


def step_point(line: bytes) -> tuple[int, float, float, float, float] | None:
    """(step, loss, recon, kl, time) of a step line: split for the compact lines vaetui writes (7x cheaper than
    json.loads), json for any other."""
    parts = line.split(b",", 10)
    if len(parts) == 11 and parts[7].startswith(b'"loss":') and parts[9].startswith(b'"kl":') and \
            parts[2].startswith(b'"time":'):
        try:
            return (int(parts[1][7:]), float(parts[7][7:]), float(parts[8][8:]), float(parts[9][5:]),
                    float(parts[2][7:]))
        except ValueError:
            pass
    try:
        d = json.loads(line)
        return int(d["step"]), float(d["loss"]), float(d["recon"]), float(d["kl"]), float(d.get("time", 0.0))
    except (ValueError, KeyError, TypeError):
        return None


def step_dims(line: bytes) -> list[float]:
    """A step line's KL per dimension ([] when it has none)."""
    try:
        return [float(v) for v in json.loads(line).get("kl_dims") or []]
    except (ValueError, TypeError, AttributeError):
        return []


def step_terms(line: bytes) -> dict[str, float]:
    """A step line's family terms ({} when it has none or they are not numbers)."""
    try:
        terms = json.loads(line).get("terms") or {}
        return {str(k): float(v) for k, v in terms.items()}
    except (ValueError, TypeError, AttributeError):
        return {}
