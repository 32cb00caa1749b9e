"""The layering, read from the source with ``ast`` (nothing is imported):

- no module-level import cycle among novalite's modules (imports inside functions and under
  ``if TYPE_CHECKING:`` do not run at import time and are not counted);
- ``novalite.compute`` does not import ``novalite.scheduler`` at all;
- route modules (``compute_api`` modules exposing ``router``) do not import sqlalchemy: the SQL
  is below them, in ``services``;
- nothing below the HTTP layer (services, domain, scheduler, conductor, compute, virt, db,
  messaging) imports it (``api``, ``compute_api``, FastAPI, Starlette);
- the domain imports only the domain and ``errors`` (no SQLAlchemy).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import novalite

ROOT = Path(novalite.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ["novalite", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST, *, runtime_only: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements under ``node``; with ``runtime_only`` only those that run when the
    module is imported (not inside functions, not under ``if TYPE_CHECKING:``)."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
        return
    children: list[ast.AST] = list(ast.iter_child_nodes(node))
    if runtime_only:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            children = list(node.orelse)
    for child in children:
        yield from _imports(child, runtime_only=runtime_only)


def _imported(module: str, *, runtime_only: bool) -> set[str]:
    """The dotted names ``module`` imports: ``import m`` gives m, ``from m import x`` gives m and m.x
    (m.x is a module or only a name in m; the graph keeps what is a module)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in _imports(ast.parse(path.read_text()), runtime_only=runtime_only):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{anchor}.{base}" if base else anchor
        out.add(base)
        out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        edges = set()
        for name in _imported(module, runtime_only=True):
            # importing a.b.c runs a.b.c and the packages above it
            parts = name.split(".")
            edges.update(p for i in range(2, len(parts) + 1) if (p := ".".join(parts[:i])) in MODULES)
        # a module's own packages are imported before it (its package's __init__ may import it)
        edges -= {module, *(module.rsplit(".", i)[0] for i in range(1, module.count(".") + 1))}
        graph[module] = edges
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_level_import_cycle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "module-level import cycle: " + " -> ".join(cycle or [])


def test_compute_does_not_import_the_scheduler() -> None:
    offenders = {
        f"{module} imports {name}"
        for module in MODULES
        if module == "novalite.compute" or module.startswith("novalite.compute.")
        for name in _imported(module, runtime_only=False)
        if name == "novalite.scheduler" or name.startswith("novalite.scheduler.")
    }
    assert not offenders, sorted(offenders)


def _route_modules() -> list[str]:
    def has_router(path: Path) -> bool:
        return any(
            isinstance(node, ast.Assign | ast.AnnAssign)
            and any(
                isinstance(t, ast.Name) and t.id == "router"
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            )
            for node in ast.parse(path.read_text()).body
        )

    return sorted(
        module
        for module, path in MODULES.items()
        if module.startswith("novalite.compute_api.") and module.count(".") == 2 and has_router(path)
    )


def test_route_modules_do_not_import_sqlalchemy() -> None:
    routes = _route_modules()
    assert "novalite.compute_api.servers" in routes
    offenders = {
        module
        for module in routes
        for name in _imported(module, runtime_only=False)
        if name == "sqlalchemy" or name.startswith("sqlalchemy.")
    }
    assert not offenders, f"route modules importing sqlalchemy: {sorted(offenders)}"


def _in(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_nothing_below_the_http_layer_imports_it() -> None:
    """The service layer and what it stands on (domain, scheduler, conductor, compute, virt, db,
    messaging) are called by the routes, never the other way round: a conductor or compute agent
    on another machine runs without the HTTP layer."""
    below = ("services", "domain", "scheduler", "conductor", "compute", "virt", "db", "messaging")
    offenders = {
        f"{module} imports {name}"
        for module in MODULES
        if _in(module, *(f"novalite.{p}" for p in below))
        for name in _imported(module, runtime_only=False)
        if _in(name, "novalite.api", "novalite.compute_api", "fastapi", "starlette")
    }
    assert not offenders, sorted(offenders)


def test_the_domain_imports_only_the_domain_and_errors() -> None:
    offenders = {
        f"{module} imports {name}"
        for module in MODULES
        if _in(module, "novalite.domain")
        for name in _imported(module, runtime_only=False)
        if _in(name, "novalite")
        and not _in(name, "novalite.domain", "novalite.errors")
        or _in(name, "sqlalchemy")
    }
    assert not offenders, sorted(offenders)
