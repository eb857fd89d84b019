"""The package's shape: no import cycles (lazy imports included), SQL only in the store modules, review actions
only through the action layer, short modules.

These read the source with ``ast``; nothing is imported, so a cycle that only bites at run time (an import
inside a function) is caught too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "copilot"
MAX_LINES = 500
# The modules that own tables. Everything else asks them. The queue's storage is one store in a few
# modules: the engine and its transactions (db), the schema (tables, migrations), the steps of a
# transaction (rows), the users, the reads, and ReviewQueue (store) that puts them together.
STORE_MODULES = {
    "copilot.queue.db",
    "copilot.queue.tables",
    "copilot.queue.migrations",
    "copilot.queue.rows",
    "copilot.queue.users",
    "copilot.queue.reads",
    "copilot.queue.store",
    "copilot.community.store",
    "copilot.incidents.tables",
    "copilot.incidents.store",
}
# SQL appears as SQLAlchemy Core calls or as text; either outside a store is a store bypassed.
_SQL_CALLS = {"select", "insert", "update", "delete", "text", "func", "and_", "or_"}
_SQL_TEXT = re.compile(r"^\s*(?:SELECT\s.+\sFROM\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|CREATE\s+TABLE\s|ALTER\s+TABLE\s|SELECT\s+\w+\()",
                       re.IGNORECASE | re.DOTALL)


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str, known: dict[str, Path]) -> bool:
    return known[name].name == "__init__.py"


def _resolve(current: str, node: ast.ImportFrom, known: dict[str, Path]) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    if not _is_package(current, known):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, known: dict[str, Path]) -> set[str]:
    """Every module of the package that ``name`` imports, at the top or inside a function.

    Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` as well, so those count too.
    """
    tree = ast.parse(known[name].read_text(encoding="utf-8"))
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, node, known)
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    found: set[str] = set()
    for target in targets:
        parts = target.split(".")
        for i in range(2, len(parts) + 1):  # every package on the way, but not the top-level 'copilot'
            candidate = ".".join(parts[:i])
            if candidate in known and candidate != name:
                found.add(candidate)
    return found


def import_cycles(known: dict[str, Path]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    graph = {name: imports_of(name, known) for name in known}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return components


def _in_store(name: str) -> bool:
    return any(name == s or name.startswith(s + ".") for s in STORE_MODULES)


def sql_outside_stores(known: dict[str, Path]) -> list[str]:
    """``file:line what`` for every SQLAlchemy query builder or SQL text outside the store modules."""
    found = []
    for name, path in known.items():
        if _in_store(name):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
                found.append(f"{rel}:{node.lineno} imports from {node.module}")
            elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sqlalchemy" for a in node.names):
                found.append(f"{rel}:{node.lineno} imports sqlalchemy")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _SQL_TEXT.match(node.value):
                found.append(f"{rel}:{node.lineno} SQL text {node.value.strip()[:40]!r}")
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in ("execute", "exec_driver_sql", "executemany")):
                found.append(f"{rel}:{node.lineno} runs .{node.func.attr}()")
    return sorted(found, key=_file_then_line)


# The entry points (CLI, web app, API) change queued items only through copilot.actions, so they all behave alike.
ENTRY_POINT_PACKAGES = ("copilot.cli", "copilot.ui", "copilot.api")
REVIEW_ACTIONS = {"approve", "edit", "reject", "reopen", "assign", "publish_approved"}


def _is_queue(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id in ("queue", "q")) or (
        isinstance(node, ast.Attribute) and node.attr == "queue")


def review_actions_outside_the_action_layer(known: dict[str, Path]) -> list[str]:
    """``file:line`` for every entry-point module calling a queue's review action instead of ``copilot.actions``."""
    found = []
    for name, path in known.items():
        if not name.startswith(ENTRY_POINT_PACKAGES):
            continue
        rel = path.relative_to(PACKAGE.parent)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in REVIEW_ACTIONS and _is_queue(node.func.value)):
                found.append(f"{rel}:{node.lineno} calls queue.{node.func.attr}()")
    return sorted(found, key=_file_then_line)


def _file_then_line(entry: str) -> tuple[str, int]:
    path, _, line = entry.split(" ", 1)[0].rpartition(":")
    return path, int(line)


def test_no_import_cycles() -> None:
    cycles = import_cycles(modules())
    assert not cycles, "import cycles inside copilot/ (lazy imports included):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_sql_only_in_store_modules() -> None:
    found = sql_outside_stores(modules())
    assert not found, "SQL outside the store modules (" + ", ".join(sorted(STORE_MODULES)) + "):\n" + "\n".join(found)


def test_entry_points_change_items_through_the_action_layer() -> None:
    found = review_actions_outside_the_action_layer(modules())
    assert not found, "review actions called on the queue instead of copilot.actions:\n" + "\n".join(found)


def test_no_module_over_the_line_limit() -> None:
    long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


# The checks themselves, on a package written for the purpose, so they cannot pass by finding nothing.
def _write(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, body in files.items():
        path = root / "copilot" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    base = root / "copilot"
    return {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
            for p in sorted(base.rglob("*.py"))}


@pytest.fixture()
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", tmp_path / "copilot")
    return lambda files: _write(tmp_path, files)


def test_a_lazy_import_cycle_is_found(fake_package) -> None:
    known = fake_package({
        "__init__.py": "",
        "a.py": "from copilot import b\n",
        "b.py": "def f():\n    from copilot.a import thing\n",
        "c.py": "import copilot.a\n",
    })
    assert import_cycles(known) == [["copilot.a", "copilot.b"]]


def test_a_cycle_through_a_package_init_and_a_relative_import_is_found(fake_package) -> None:
    known = fake_package({
        "__init__.py": "",
        "pkg/__init__.py": "",
        "pkg/inner.py": "from ..other import Y\n",
        "other.py": "from copilot.pkg.inner import X\n",
    })
    assert import_cycles(known) == [["copilot.other", "copilot.pkg.inner"]]
    # Importing copilot.pkg runs its __init__, which imports inner, which imports other.
    known = fake_package({"pkg/__init__.py": "from .inner import X\n", "other.py": "from copilot.pkg import X\n"})
    assert import_cycles(known) == [["copilot.other", "copilot.pkg", "copilot.pkg.inner"]]


def test_sql_outside_a_store_is_found(fake_package) -> None:
    known = fake_package({
        "__init__.py": "",
        "queue/__init__.py": "",
        "queue/store.py": "from sqlalchemy import select\nQ = 'SELECT 1'\n",
        "report.py": "import sqlalchemy as sa\n",
        "apply.py": "def f(conn):\n    conn.execute(q)\n    return 'select id from items'\n",
        "words.py": "HELP = 'Select a case, then update it.'\n",
    })
    assert sql_outside_stores(known) == [
        "copilot/apply.py:2 runs .execute()",
        "copilot/apply.py:3 SQL text 'select id from items'",
        "copilot/report.py:1 imports sqlalchemy",
    ]


def test_a_review_action_outside_the_action_layer_is_found(fake_package) -> None:
    known = fake_package({
        "__init__.py": "",
        "cli/__init__.py": "",
        "cli/queue_cmd.py": "def f(q, pipeline):\n    q.approve(1)\n    pipeline.queue.reject(2)\n    q.get(3)\n",
        "ui/handlers.py": "def f(pipeline):\n    pipeline.actions.approve(1)\n",
        "actions.py": "def f(queue):\n    queue.approve(1)\n",
    })
    assert review_actions_outside_the_action_layer(known) == [
        "copilot/cli/queue_cmd.py:2 calls queue.approve()",
        "copilot/cli/queue_cmd.py:3 calls queue.reject()",
    ]
