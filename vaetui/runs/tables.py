"""Tables to publish: runs (or groups of runs that differ only in their seed) as CSV, Markdown, LaTeX or JSON.

A row is a run: its settings, its best validation loss, and the numbers of its newest `vaetui eval` on the test
split. With `group_by="seed"` the runs whose configs are equal but for the seed (and for what does not change
the training: threads, device, how often it logs or saves) make one row, each number as mean ± sample standard
deviation (n − 1) with n. Every number names its protocol (split, N, k, checkpoint) in a footnote, so a table
pasted in a report says how it was measured.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from vaetui.errors import ConfigError

FORMATS = ("csv", "md", "latex", "json")
# What a seed group ignores besides the seed: settings that do not change what is trained.
NOT_THE_EXPERIMENT = ("seed", "threads", "device", "compile", "checkpoint_every", "image_every", "keep_last",
                      "log_every")


@dataclass(frozen=True)
class RunRow:
    """What a table knows of one run."""

    name: str
    config: dict  # config.json, parsed
    best_valid: float | None
    epochs_done: int
    step: int
    status: str
    evaluation: dict | None  # the newest test-split eval, or None


@dataclass(frozen=True)
class Column:
    key: str  # the --columns word
    header: str
    get: Callable[[RunRow], Any]
    digits: int = -1  # decimals of a number (-1: not a number)
    protocol: str = ""  # "valid", "eval", "samples", "disentangle": which footnote says how it was measured
    count: bool = False  # a whole number for one run (a group's mean keeps its decimals)

    @property
    def numeric(self) -> bool:
        return self.digits >= 0


def _ev(*path: str) -> Callable[[RunRow], Any]:
    def get(r: RunRow):
        v: Any = r.evaluation
        for k in path:
            if not isinstance(v, dict) or k not in v:
                return None
            v = v[k]
        return v

    return get


def _cfg(section: str, key: str) -> Callable[[RunRow], Any]:
    return lambda r: r.config.get(section, {}).get(key)


COLUMNS = {c.key: c for c in (
    Column("run", "run", lambda r: r.name),
    Column("model", "model", lambda r: r.config["model"].get("family", "vae")),
    Column("preset", "preset", lambda r: r.config.get("preset")),
    Column("data", "data", _cfg("data", "source")),
    Column("size", "size", lambda r: "x".join(map(str, r.config["data"]["size"]))),
    Column("latent", "latent", _cfg("model", "latent")),
    Column("beta", "β", _cfg("train", "beta")),
    Column("lr", "lr", _cfg("train", "lr")),
    Column("seed", "seed", _cfg("train", "seed")),
    Column("status", "status", lambda r: r.status),
    Column("epochs", "epochs", lambda r: r.epochs_done, 1, count=True),
    Column("steps", "steps", lambda r: r.step, 1, count=True),
    Column("best_valid", "best valid", lambda r: r.best_valid, 1, "valid"),
    Column("neg_elbo", "−ELBO", _ev("per_image", "neg_elbo"), 1, "eval"),
    Column("iwae", "IWAE", _ev("per_image", "iwae_nll"), 1, "eval"),
    Column("recon", "recon", _ev("per_image", "recon"), 1, "eval"),
    Column("kl", "KL", _ev("per_image", "kl"), 2, "eval"),
    Column("bits_per_dim", "bits/dim", _ev("per_dim", "neg_elbo_bits"), 4, "eval"),
    Column("psnr", "PSNR", _ev("psnr"), 2, "eval"),
    Column("ssim", "SSIM", _ev("ssim"), 3, "eval"),
    Column("active_units", "active", _ev("active_units"), 1, "eval", count=True),
    Column("mig", "MIG", _ev("disentanglement", "mig"), 3, "disentangle"),
    Column("dci", "DCI", _ev("disentanglement", "dci_disentanglement"), 3, "disentangle"),
    Column("sap", "SAP", _ev("disentanglement", "sap"), 3, "disentangle"),
    Column("fd_attr", "FD-attr", _ev("samples", "attr", "fd"), 2, "samples"),
    Column("kid", "KID", _ev("samples", "attr", "kid"), 4, "samples"),
    Column("precision", "precision", _ev("samples", "attr", "precision"), 3, "samples"),
    Column("recall", "recall", _ev("samples", "attr", "recall"), 3, "samples"),
)}
DEFAULT_COLUMNS = ("run", "model", "latent", "beta", "seed", "epochs", "best_valid", "neg_elbo", "iwae", "psnr",
                   "ssim", "active_units", "mig", "fd_attr", "precision", "recall")


def rows_of(store, names: list[str]) -> list[RunRow]:
    """What a table knows of each run: config, best validation, progress, its newest test-split eval (of the
    prior's samples, not another sampler's). A missing run is an error before anything is written."""
    rows = []
    for name in names:
        run = store.open(name)
        info = run.info(store.summaries)
        evals = [r for r in run.evals(split="test") if "per_image" in r
                 and r["protocol"].get("sampler", "prior") == "prior"]
        rows.append(RunRow(run.name, json.loads(run.config_path.read_text()), info.best_valid, info.epochs_done,
                           info.step, str(info.status), evals[0] if evals else None))
    return rows


def parse_columns(text: str | None) -> tuple[str, ...] | None:
    """--columns a,b,c (or spaces): the words checked; None: the default (without columns no run has)."""
    if text is None:
        return None
    words = tuple(w for w in text.replace(",", " ").split() if w)
    unknown = [w for w in words if w not in COLUMNS]
    if unknown or not words:
        raise ConfigError("--columns", f"unknown column {', '.join(unknown) or '(none given)'}: choose from {', '.join(COLUMNS)}")
    return words


def experiment_key(config: dict) -> str:
    """A config without what a seed group ignores: runs with equal keys differ only in their seed."""
    cut = {section: ({k: v for k, v in values.items() if k not in NOT_THE_EXPERIMENT or section != "train"}
                     if isinstance(values, dict) else values) for section, values in config.items()}
    return json.dumps(cut, sort_keys=True)


@dataclass(frozen=True)
class Cell:
    """One number of a table: a run's value (n = 1, std None), or a group's mean ± std over n runs."""

    mean: float | None
    std: float | None = None
    n: int = 1


def aggregate(values: Sequence[float | None]) -> Cell:
    """Mean and sample standard deviation (n − 1) of the values a group has (a missing one is not counted)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return Cell(None, None, 0)
    mean = math.fsum(xs) / len(xs)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return Cell(mean, std, len(xs))


@dataclass
class Table:
    columns: list[Column]
    rows: list[dict[str, Any]]  # key -> str (settings) or Cell (numbers)
    notes: dict[str, str]  # protocol -> footnote text
    grouped: bool


def _label(names: list[str]) -> str:
    """A group's name: the runs' common stem (vaetui train --seeds: name-s0, name-s1 -> name), else the first with
    how many more."""
    import re

    stems = {re.sub(r"-s\d+$", "", n) for n in names}
    if len(stems) == 1 and all(re.search(r"-s\d+$", n) for n in names):
        return stems.pop()
    return names[0] + (f" +{len(names) - 1}" if len(names) > 1 else "")


def _protocol_notes(rows: list[RunRow]) -> dict[str, str]:
    """Each protocol used, said once (a table whose runs were measured differently says each way)."""
    def each(describe) -> str:
        seen = []
        for r in rows:
            text = describe(r)
            if text and text not in seen:
                seen.append(text)
        return "; ".join(seen)

    def evaluated(r):
        p = (r.evaluation or {}).get("protocol")
        return p and (f"{p['split']} split, first N = {p['count']} images, IWAE k = {p['k']}, "
                      f"{p['checkpoint'].removeprefix('ckpt-').removesuffix('.pt')} checkpoint, seed {p['seed']}")

    def samples(r):
        s = (r.evaluation or {}).get("samples")
        sampler = ((r.evaluation or {}).get("protocol") or {}).get("sampler", "prior")
        return s and (f"{s['attr']['count']} samples from the {sampler} against as many {r.evaluation['protocol']['split']}"
                      f" images, in the attribute network's features (precision/recall k = {s['attr']['pr_k']})")

    def disentangle(r):
        d = (r.evaluation or {}).get("disentanglement")
        return d and f"{d['count']} {r.evaluation['protocol']['split']} images against their {d['kind']}"

    def valid(r):
        size = r.config["train"].get("valid_size")
        return (f"validation split, first {size} images, loss per image at the run's final β, best epoch"
                if r.best_valid is not None else "")

    notes = {"valid": each(valid), "eval": each(evaluated), "samples": each(samples), "disentangle": each(disentangle)}
    return {k: v for k, v in notes.items() if v}


def build(rows: list[RunRow], columns: Sequence[str] | None = None, group_by: str | None = None) -> Table:
    """The table of these runs (grouped by seed when asked); default columns drop those no run has."""
    chosen = [COLUMNS[k] for k in (columns or DEFAULT_COLUMNS)]
    if columns is None:
        chosen = [c for c in chosen if any(c.get(r) is not None for r in rows) or c.key == "run"]
    if group_by == "seed":
        chosen = [c for c in chosen if c.key != "seed"]
        groups: dict[str, list[RunRow]] = {}
        for r in rows:
            groups.setdefault(experiment_key(r.config), []).append(r)
        out = []
        for members in groups.values():
            row: dict[str, Any] = {}
            for c in chosen:
                if c.key == "run":
                    row["run"] = _label([m.name for m in members])
                elif c.numeric:
                    row[c.key] = aggregate([c.get(m) for m in members])
                else:
                    vals = {json.dumps(c.get(m)): c.get(m) for m in members}
                    row[c.key] = next(iter(vals.values())) if len(vals) == 1 else "mixed"
            row["seeds"] = ",".join(str(m.config["train"].get("seed")) for m in members)
            row["n"] = len(members)
            row["members"] = [m.name for m in members]
            out.append(row)
    elif group_by is not None:
        raise ConfigError("--group-by", f"{group_by}: only seed")
    else:
        out = [{c.key: (Cell(c.get(r)) if c.numeric and c.get(r) is not None else
                        Cell(None, None, 0) if c.numeric else c.get(r)) for c in chosen} for r in rows]
    used = {c.protocol for c in chosen if c.protocol}
    return Table(chosen, out, {k: v for k, v in _protocol_notes(rows).items() if k in used}, group_by == "seed")


def _text(v) -> str:
    return "–" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


MARKS = {"valid": "a", "eval": "b", "samples": "c", "disentangle": "d"}


def _number(cell: Cell, column: Column, pm: str) -> str:
    if cell.mean is None:
        return "–"
    digits = 0 if column.count and cell.std is None and float(cell.mean).is_integer() else column.digits
    text = f"{cell.mean:.{digits}f}"
    if cell.std is not None:
        text += f"{pm}{cell.std:.{digits}f}"
    return text


def cells(table: Table, pm: str = " ± ") -> tuple[list[str], list[list[str]]]:
    head = [c.header for c in table.columns] + (["n", "seeds"] if table.grouped else [])
    body = []
    for row in table.rows:
        cells = [_number(row[c.key], c, pm) if c.numeric else _text(row[c.key]) for c in table.columns]
        if table.grouped:
            cells += [str(row["n"]), row["seeds"]]
        body.append(cells)
    return head, body


def _footnotes(table: Table) -> list[tuple[str, str]]:
    return [(MARKS[k], v) for k, v in table.notes.items()]


def _marked(table: Table, head: list[str], style: Callable[[str, str], str]) -> list[str]:
    return [style(h, MARKS[c.protocol]) if i < len(table.columns) and (c := table.columns[i]).protocol in table.notes
            else h for i, h in enumerate(head)]


def to_csv(table: Table) -> str:
    """Machine-readable: a number's mean, std and n in columns of their own (std empty for n = 1); no footnotes
    (they are in the JSON)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = []
    for c in table.columns:
        head += [c.key] if not c.numeric or not table.grouped else [f"{c.key}_mean", f"{c.key}_std", f"{c.key}_n"]
    w.writerow(head + (["n", "seeds"] if table.grouped else []))
    for row in table.rows:
        cells = []
        for c in table.columns:
            v = row[c.key]
            if not c.numeric:
                cells.append(_text(v))
            elif table.grouped:
                cells += ["" if v.mean is None else repr(v.mean), "" if v.std is None else repr(v.std), v.n]
            else:
                cells.append("" if v.mean is None else repr(v.mean))
        w.writerow(cells + ([row["n"], row["seeds"]] if table.grouped else []))
    return buf.getvalue()


def to_markdown(table: Table) -> str:
    head, body = cells(table, " ± ")
    head = _marked(table, head, lambda h, m: f"{h}<sup>{m}</sup>")
    right = [c.numeric for c in table.columns] + ([True, False] if table.grouped else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    if table.grouped:
        lines.append("\nmean ± sample standard deviation (n − 1) over the n runs that differ only in their seed.")
    lines += [""] + [f"<sup>{m}</sup> {text}." for m, text in _footnotes(table)]
    return "\n".join(lines).rstrip() + "\n"


def _tex(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("$", r"\$"),
                 ("β", r"$\beta$"), ("−", "$-$"), ("–", "--")):
        text = text.replace(a, b)
    return text


def to_latex(table: Table) -> str:
    """A booktabs tabular with its footnotes beneath, ready for \\input (needs \\usepackage{booktabs})."""
    head, body = cells(table, " \x00 ")
    head = _marked(table, [_tex(h) for h in head], lambda h, m: f"{h}$^{m}$")
    align = "".join("r" if c.numeric else "l" for c in table.columns) + ("rl" if table.grouped else "")
    lines = [r"\begin{tabular}{" + align + "}", r"\toprule", " & ".join(head) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex(c).replace(" \x00 ", r" $\pm$ ") for c in cells) + r" \\" for cells in body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    notes = ([r"mean $\pm$ sample standard deviation ($n-1$) over the $n$ runs that differ only in their seed."]
             if table.grouped else []) + [f"$^{m}$ {_tex(text)}." for m, text in _footnotes(table)]
    if notes:
        lines += [r"\par\smallskip", r"{\footnotesize " + r" \\ ".join(notes) + "}"]
    return "\n".join(lines) + "\n"


def to_json(table: Table) -> str:
    rows = []
    for row in table.rows:
        out = {}
        for c in table.columns:
            v = row[c.key]
            out[c.key] = ({"mean": v.mean, "std": v.std, "n": v.n} if table.grouped else v.mean) if c.numeric else v
        if table.grouped:
            out["n"], out["seeds"] = row["n"], [int(s) if s.isdigit() else s for s in row["seeds"].split(",")]
        rows.append(out)
    protocols = {c.key: table.notes[c.protocol] for c in table.columns if c.protocol in table.notes}
    return json.dumps({"grouped_by": "seed" if table.grouped else None, "rows": rows, "protocols": protocols},
                      indent=2) + "\n"


WRITERS = {"csv": to_csv, "md": to_markdown, "latex": to_latex, "json": to_json}
