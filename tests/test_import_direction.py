"""Imports go one way: infrastructure never reaches into features, route modules never into each
other, the app never into ``workers/`` (the processes), and no modules depend on each other
round a loop.

Every module under ``app/`` is parsed with ``ast`` and every import is read, those inside
functions included (an import deferred into a function is still a dependency; it only hides
a cycle). A rule is a function from one import to a problem or None; adding a rule is one
line in ``RULES``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"

#: Packages and modules of ``app`` that infrastructure may use: itself, the models, the
#: extension objects and the configuration. Everything else at the top of ``app`` is a feature.
INFRASTRUCTURE = {"app.core", "app.models", "app.extensions", "app.config"}


@dataclass(frozen=True)
class Import:
    """One import statement's target, as seen from the module that holds it."""

    module: str  # the importing module, dotted (``app.issues.routes``)
    path: Path  # its file
    line: int
    target: str  # the imported module, dotted and absolute (``app.projects.services``)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a ``from … import`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(path: Path) -> Iterator[Import]:
    """Every import in the file, at any depth; ``from pkg import name`` counts as ``pkg.name``
    too, since ``name`` may be a module (``from app.issues import routes``)."""
    module = module_name(path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path, node)
            yield Import(module, path, node.lineno, base)
            for alias in node.names:
                if alias.name != "*":
                    yield Import(module, path, node.lineno, f"{base}.{alias.name}")


def app_imports() -> list[Import]:
    return [found for path in sorted(APP.rglob("*.py")) for found in imports_of(path)]


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def is_routes_module(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last == "routes" or last.endswith("_routes")


def core_imports_a_feature(found: Import) -> str | None:
    """``app/core`` is infrastructure: it may not import a feature package, even inside a function."""
    if not _within(found.module, "app.core") or not _within(found.target, "app"):
        return None
    if found.target == "app" or any(_within(found.target, allowed) for allowed in INFRASTRUCTURE):
        return None
    return "app/core imports a feature"


def routes_import_routes(found: Import) -> str | None:
    """A route module never imports another: what two blueprints share lives in a non-route module."""
    if is_routes_module(found.module) and is_routes_module(found.target) and found.target != found.module:
        return "a route module imports another route module"
    return None


def imports_of_package(package: str) -> Callable[[Import], str | None]:
    """A rule refusing any import of ``package`` from ``app`` (e.g. ``imports_of_package("workers")``)."""

    def rule(found: Import) -> str | None:
        return f"app imports {package}" if _within(found.target, package) else None

    rule.__doc__ = f"app never imports {package}."
    return rule


RULES: list[Callable[[Import], str | None]] = [
    core_imports_a_feature,
    routes_import_routes,
    imports_of_package("workers"),  # workers/ runs the app's jobs; the app never reaches back
]


def problems(imports: list[Import], rules=RULES) -> list[str]:
    """One line per import statement and problem, naming the first target that has it."""
    found: dict[tuple[str, str], str] = {}
    for item in imports:
        for rule in rules:
            if (problem := rule(item)) is not None:
                where = f"{item.path.relative_to(ROOT)}:{item.line}"
                found.setdefault((where, problem), item.target)
    return sorted(f"{where}: {problem} ({target})" for (where, problem), target in found.items())


def import_cycles(imports: list[Import]) -> list[list[str]]:
    """Groups of modules that import each other, directly or round a loop (imports inside
    functions included). ``from pkg import mod`` counts as an import of ``pkg.mod`` only, and a
    package's ``__init__`` and its own modules (a blueprint and its routes) are not a loop."""
    modules = {item.module for item in imports}
    statements: dict[tuple[str, int], set[str]] = {}
    for item in imports:
        if item.target in modules:
            statements.setdefault((item.module, item.line), set()).add(item.target)
    graph: dict[str, set[str]] = {}
    for (module, _), targets in statements.items():
        for target in targets:
            if any(other.startswith(target + ".") for other in targets):
                continue  # the package of a module named in the same statement
            if target == module or target.startswith(module + ".") or module.startswith(target + "."):
                continue
            graph.setdefault(module, set()).add(target)
    return _strongly_connected(graph)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the groups of more than one node that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return sorted(groups)


def test_imports_go_one_way():
    """No module of app/ breaks an import-direction rule (imports inside functions included)."""
    assert problems(app_imports()) == []


def test_no_modules_import_each_other():
    """No two modules of app/ depend on each other, even through imports inside functions."""
    assert import_cycles(app_imports()) == []


def test_the_rules_catch_what_they_forbid(tmp_path, monkeypatch):
    """Imports that break each rule are reported, nested in a function or not, relative or absolute."""
    package = tmp_path / "app"
    (package / "core").mkdir(parents=True)
    (package / "issues").mkdir()
    (package / "core" / "cache.py").write_text(
        "from app.models import Issue\n"
        "from app.extensions import db\n"
        "def viewer():\n"
        "    from app.auth.identity import signed_in\n"
    )
    (package / "issues" / "routes.py").write_text(
        "from app.issues import queries\nfrom app.projects.routes import project_or_404\n"
    )
    (package / "issues" / "board_routes.py").write_text("from . import routes\nimport workers.mail\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    found = [i for path in sorted(package.rglob("*.py")) for i in imports_of(path)]
    assert problems(found) == [
        "app/core/cache.py:4: app/core imports a feature (app.auth.identity)",
        "app/issues/board_routes.py:1: a route module imports another route module (app.issues.routes)",
        "app/issues/board_routes.py:2: app imports workers (workers.mail)",
        "app/issues/routes.py:2: a route module imports another route module (app.projects.routes)",
    ]


def test_the_cycle_check_catches_a_loop(tmp_path, monkeypatch):
    """A loop of three modules through a function's import is reported; a blueprint and its routes are not."""
    package = tmp_path / "app"
    (package / "core").mkdir(parents=True)
    (package / "auth").mkdir()
    (package / "orgs").mkdir()
    (package / "core" / "cache.py").write_text("def page():\n    from app.auth import identity\n")
    (package / "auth" / "identity.py").write_text("from app.orgs import services\n")
    (package / "orgs" / "services.py").write_text("from app.core import cache\n")
    (package / "orgs" / "__init__.py").write_text("bp = None\nfrom app.orgs import routes\n")
    (package / "orgs" / "routes.py").write_text("from app.orgs import bp\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    found = [i for path in sorted(package.rglob("*.py")) for i in imports_of(path)]
    assert import_cycles(found) == [["app.auth.identity", "app.core.cache", "app.orgs.services"]]
