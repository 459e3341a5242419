"""The layer rules hold: the import-linter contracts in pyproject.toml, no import circle between any
two modules, and no private name imported from another module.

A broken rule fails `make test`, not only `make lint`: an import that crosses a layer, closes a
circle or reaches into another module's private names is a design change to discuss, not a detail.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Mapping

import grimp

from conftest import ROOT

SRC = ROOT / "src"


def strongly_connected(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The groups of two or more nodes that all reach one another (Tarjan), sorted: each is a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(groups)


def private_imports(source: str, module: str) -> list[str]:
    """``from supportlens.x import _name`` and ``x._name`` (``x`` a supportlens module imported
    here) in ``source``: the private names ``module`` takes from another module of ours."""
    tree = ast.parse(source)
    found: list[str] = []
    imported: dict[str, str] = {}  # local name -> the supportlens module or name it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "supportlens":
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") and node.module != module:
                    found.append(f"{module}:{node.lineno}: from {node.module} import {alias.name}")
                imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "supportlens":
                    imported[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and node.value.id in imported
        ):
            found.append(f"{module}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_import_linter_contracts_hold():
    """In a process of its own: import-linter's CLI reconfigures logging with
    ``disable_existing_loggers``, which silenced MLflow's loggers for every later test."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, "
            "no_cache=True, no_logo=True))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_import_circle_between_modules():
    """Module by module, a package's ``__init__`` included (import-linter's acyclic contract
    compares siblings, so a package importing its own child that imports it back needs this)."""
    graph = grimp.build_graph("supportlens", cache_dir=None)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    assert strongly_connected(edges) == []


def test_the_circle_finder_finds_circles():
    edges = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": ["e"], "f": ["g"], "g": ["f"]}
    assert strongly_connected(edges) == [["a", "b", "c"], ["f", "g"]]
    assert strongly_connected({"a": ["b"], "b": []}) == []


def test_no_private_name_is_imported_from_another_module():
    """A name that starts with ``_`` is its module's own; one another module needs is public."""
    found = []
    for path in sorted((SRC / "supportlens").rglob("*.py")):
        module = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        found += private_imports(path.read_text(encoding="utf-8"), module)
    assert found == []


def test_the_private_name_check_finds_them():
    source = (
        "from supportlens.corpus.dataset import _listing, load_coded\n"
        "from supportlens.inference import predict\n"
        "from supportlens.models import distil\n"
        "predict._rows(1)\n"
        "distil.__name__\n"
    )
    assert private_imports(source, "supportlens.x") == [
        "supportlens.x:1: from supportlens.corpus.dataset import _listing",
        "supportlens.x:4: predict._rows",
    ]
