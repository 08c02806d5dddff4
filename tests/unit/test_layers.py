"""The package's layers and its import graph: the import-linter contracts in pyproject.toml, and no cycle between
modules, imports inside functions included (grimp reads every import statement, wherever it stands)."""

from __future__ import annotations

from pathlib import Path

import grimp
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]


def _cycles(graph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, found, counter = {}, {}, set(), [], [], [0]
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start) & modules)))]
        index[start] = low[start] = counter[0]; counter[0] += 1; stack.append(start); on.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]; counter[0] += 1; stack.append(child); on.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child) & modules))))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop(); on.discard(member); component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_between_modules():
    graph = grimp.build_graph("vaetui")
    modules = {m for m in graph.modules if m.startswith("vaetui")}
    assert _cycles(graph, modules) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = grimp.ImportGraph()
    for m in ("p.a", "p.b", "p.c", "p.d"):
        graph.add_module(m)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    graph.add_import(importer="p.c", imported="p.a")  # a -> b -> c -> a
    graph.add_import(importer="p.c", imported="p.d")
    assert _cycles(graph, {"p.a", "p.b", "p.c", "p.d"}) == [["p.a", "p.b", "p.c"]]


def _lint(config: Path) -> int:
    return lint_imports(config_filename=str(config), no_cache=True, no_logo=True)


def test_the_layer_contracts_are_kept(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert _lint(ROOT / "pyproject.toml") == 0


def test_the_contract_breaks_when_the_layers_are_upside_down(monkeypatch, tmp_path):
    """The runner is seen to fail: the same contract with its layers in reverse order is broken everywhere."""
    text = (ROOT / "pyproject.toml").read_text()
    start = text.index("layers = [")
    end = text.index("]", start)
    lines = text[start:end].splitlines()
    upside_down = "\n".join([lines[0], *reversed(lines[1:])]) + "\n"
    (tmp_path / "pyproject.toml").write_text(text[:start] + upside_down + text[end:])
    monkeypatch.chdir(ROOT)
    assert _lint(tmp_path / "pyproject.toml") == 1
