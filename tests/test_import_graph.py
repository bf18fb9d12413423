"""The packages' import graph: one-way arrows, no cycles (issue 26).

Every module of the project's packages is parsed with ``ast`` (nothing is imported or
executed), and every ``import`` statement, at module level or inside a function, becomes an
edge ``importer -> imported module``. ``from pkg import name`` points at ``pkg.name`` when
that is a module, else at ``pkg``. Implicit edges to parent packages (``import a.b`` also runs
``a/__init__.py``) are not drawn: Python initializes a parent before its child, so they
cannot form a harmful cycle. Imports under ``if TYPE_CHECKING:`` never run: they count for
the layering rules (a type is a dependency too) but not for cycles.

The rules (the project's guide: imports go one way; robolearn/ may import everything else):

* no cycle between modules: every strongly connected component has one module;
* ``sims`` and ``teachers`` import nothing from ``robolearn``, ``benchmarks`` or each other;
* ``firmware_export`` and ``hardware`` import nothing from ``robolearn`` or ``benchmarks``;
* ``firmware_export`` imports nothing from ``hardware`` (``hardware`` may use ``firmware_export``):
  neither in Python, nor by a C ``#include`` of a header under ``hardware/``, nor by building
  a path into ``hardware/``;
* ``robolearn`` imports nothing from ``benchmarks``, with one exception: ``robolearn.cli``
  calls the benchmarks' plain functions for ``robolearn bench ...``, with imports inside
  its command functions, so that ``import robolearn.cli`` loads no benchmark;
* no module imports a private name (``_name``) or a private module of another top-level
  package.

Known violations that are being fixed elsewhere are listed in ``ALLOWLIST`` with the reason.
An allowlisted edge that no longer exists fails the test: remove it from the list.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("robolearn", "sims", "teachers", "firmware_export", "hardware", "benchmarks")

# (importer, imported): edges that break a rule today and are being removed by other work.
# Each line says why it is here. When the fix lands, the test says which lines to delete.
ALLOWLIST: dict[tuple[str, str], str] = {}
# C files under firmware_export/ that #include a header found under hardware/ (file, header).
C_INCLUDE_ALLOWLIST: dict[tuple[str, str], str] = {}
# Python modules under firmware_export/ that build a file path into hardware/ (module).
PATH_ALLOWLIST: dict[str, str] = {}


@dataclass(frozen=True)
class Edge:
    src: str            # importing module
    dst: str            # imported module (or, for a private name, "module._name")
    line: int
    kind: str           # "module" (runs on import), "function" (runs when called), "type" (TYPE_CHECKING)
    private: bool = False  # the import names a private module or name

    def where(self) -> str:
        return f"{self.src} -> {self.dst} ({module_path(self.src)}:{self.line}, {self.kind}-level)"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_files() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            if "__pycache__" not in p.parts:
                out[module_name(p)] = p
    return out


MODULES = module_files()


def module_path(mod: str) -> str:
    p = MODULES.get(mod)
    return str(p.relative_to(ROOT)) if p else mod


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _known_prefix(dotted: str) -> str | None:
    """The longest prefix of ``dotted`` that is one of the project's modules."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        cand = ".".join(parts[:k])
        if cand in MODULES:
            return cand
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement with its kind: module, function or type (under TYPE_CHECKING)."""
    def walk(node: ast.AST, kind: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, kind
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from walk(child, "type" if kind == "type" else "function")
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from walk(ast.Module(body=[stmt], type_ignores=[]), "type")
                for stmt in child.orelse:
                    yield from walk(ast.Module(body=[stmt], type_ignores=[]), kind)
            else:
                yield from walk(child, kind)
    yield from walk(tree, "module")


def edges_of(mod: str, path: Path) -> list[Edge]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out: list[Edge] = []
    for node, kind in _imports(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                dst = _known_prefix(alias.name)
                if dst is not None:
                    priv = any(_is_private(p) for p in alias.name.split("."))
                    out.append(Edge(mod, dst, node.lineno, kind, priv))
            continue
        if node.level:
            base = mod.split(".") if is_pkg else mod.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            if sub in MODULES:
                out.append(Edge(mod, sub, node.lineno, kind, any(_is_private(p) for p in sub.split("."))))
                continue
            dst = _known_prefix(target)
            if dst is None:
                continue
            priv_mod = any(_is_private(p) for p in target.split("."))
            if _is_private(alias.name):
                out.append(Edge(mod, f"{dst}.{alias.name}", node.lineno, kind, True))
            else:
                out.append(Edge(mod, dst, node.lineno, kind, priv_mod))
    return out


def all_edges() -> list[Edge]:
    return [e for mod, path in MODULES.items() for e in edges_of(mod, path) if e.dst != mod]


EDGES = all_edges()


def top(mod: str) -> str:
    return mod.split(".")[0]


def _target_module(e: Edge) -> str:
    """The imported module itself (a private-name edge ``m._x`` points into ``m``)."""
    return e.dst if e.dst in MODULES else e.dst.rsplit(".", 1)[0]


def _allowed(e: Edge) -> bool:
    return (e.src, e.dst) in ALLOWLIST


def _fmt(es: Iterable[Edge]) -> str:
    return "\n  ".join(e.where() for e in es)


# ------------------------------------------------------------------------------- the rules
def layering_violations(edges: list[Edge]) -> list[tuple[Edge, str]]:
    bad: list[tuple[Edge, str]] = []
    for e in edges:
        s, d = top(e.src), top(_target_module(e))
        if s == d:
            continue
        if s in ("sims", "teachers") and d in ("robolearn", "benchmarks", "sims", "teachers"):
            bad.append((e, f"{s}/ imports nothing from robolearn/, benchmarks/, sims/ or teachers/"))
        elif s in ("firmware_export", "hardware") and d in ("robolearn", "benchmarks"):
            bad.append((e, f"{s}/ imports nothing from robolearn/ or benchmarks/ (the trainers)"))
        elif s == "firmware_export" and d == "hardware":
            bad.append((e, "firmware_export/ imports nothing from hardware/ (hardware may use firmware_export)"))
        elif s == "robolearn" and d == "benchmarks" and not (e.src == "robolearn.cli" and e.kind == "function"):
            bad.append((e, "robolearn/ imports nothing from benchmarks/ (only robolearn.cli's bench commands "
                           "call benchmark functions, imported inside those functions)"))
        if e.private:
            bad.append((e, "a private name or module (_name) of another package: make it public or move it"))
    return bad


def strongly_connected(nodes: Iterable[str], succ: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components in no particular order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    comps: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(succ.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(succ.get(w, ())))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp: list[str] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                comps.append(sorted(comp))
    return comps


def cycles(edges: list[Edge]) -> list[list[str]]:
    succ: dict[str, set[str]] = {}
    for e in edges:
        if e.kind != "type":
            succ.setdefault(e.src, set()).add(_target_module(e))
    return [c for c in strongly_connected(sorted(MODULES), succ) if len(c) > 1]


def _cycle_path(comp: list[str], edges: list[Edge]) -> str:
    """One closed walk through a component, for the message: a -> b -> ... -> a."""
    members = set(comp)
    succ: dict[str, list[Edge]] = {}
    for e in edges:
        if e.kind != "type" and e.src in members and _target_module(e) in members:
            succ.setdefault(e.src, []).append(e)
    start, path, seen = comp[0], [comp[0]], {comp[0]}
    cur = start
    while True:
        nxt = sorted(succ[cur], key=lambda e: (_target_module(e) != start, _target_module(e)))[0]
        m = _target_module(nxt)
        path.append(f"{m} ({module_path(cur)}:{nxt.line})")
        if m == start or m in seen:
            return " -> ".join(path)
        seen.add(m)
        cur = m


# ------------------------------------------------------------------------------- C and paths
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def c_include_violations() -> list[tuple[str, str, int]]:
    """(file, header under hardware/, line) for each quoted #include of a firmware_export C file
    that resolves to a header under hardware/, either by its path or, as the build's -I flags
    do, by its name."""
    hw_headers: dict[str, list[Path]] = {}
    for h in (ROOT / "hardware").rglob("*.h"):
        hw_headers.setdefault(h.name, []).append(h)
    out: list[tuple[str, str, int]] = []
    for f in sorted((ROOT / "firmware_export").rglob("*")):
        if f.suffix not in (".c", ".h") or not f.is_file():
            continue
        text = f.read_text(errors="replace")
        for m in INCLUDE.finditer(text):
            inc = m.group(1)
            line = text.count("\n", 0, m.start()) + 1
            local = (f.parent / inc).resolve()
            if local.exists():
                hits = [local] if (ROOT / "hardware") in local.parents else []
            else:
                hits = hw_headers.get(Path(inc).name, [])
            for h in hits:
                out.append((str(f.relative_to(ROOT)), str(h.relative_to(ROOT)), line))
    return out


def path_violations() -> list[tuple[str, int]]:
    """(module, line) of firmware_export modules with a string literal naming the hardware
    folder ("hardware" or "hardware/..."), docstrings excepted: a path built into hardware/."""
    out: list[tuple[str, int]] = []
    for mod, path in MODULES.items():
        if top(mod) != "firmware_export":
            continue
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for n in ast.walk(tree):
            if (isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
                    and re.fullmatch(r"(\.\./)*hardware(/.*)?", n.value)):
                out.append((mod, n.lineno))
    return out


# ------------------------------------------------------------------------------- the tests
def test_every_package_is_parsed():
    """The graph is not empty by accident: each package has modules and the CLI its edges."""
    for pkg in PACKAGES:
        assert any(top(m) == pkg for m in MODULES), f"no module found under {pkg}/"
    assert any(e.src == "robolearn.cli" and e.dst == "robolearn.errors" for e in EDGES)


def test_no_import_cycles():
    live = [e for e in EDGES if not _allowed(e)]
    found = cycles(live)
    assert not found, "import cycles (break each by moving the shared piece into a module both can import):\n  " + \
        "\n  ".join(_cycle_path(c, live) for c in found)


def test_imports_go_one_way():
    bad = [(e, why) for e, why in layering_violations(EDGES) if not _allowed(e)]
    assert not bad, "imports against the layering:\n  " + "\n  ".join(f"{e.where()}: {why}" for e, why in bad)


def test_firmware_export_c_includes_nothing_from_hardware():
    bad = [v for v in c_include_violations() if (v[0], v[1]) not in C_INCLUDE_ALLOWLIST]
    assert not bad, "firmware_export/ C files include headers of hardware/ (hardware may use firmware_export, " \
        "not the reverse):\n  " + "\n  ".join(f"{f}:{line} includes {h}" for f, h, line in bad)
    bad_paths = [v for v in path_violations() if v[0] not in PATH_ALLOWLIST]
    assert not bad_paths, "firmware_export/ builds paths into hardware/:\n  " + \
        "\n  ".join(f"{module_path(m)}:{line}" for m, line in bad_paths)


def test_allowlists_are_still_needed():
    """Each allowlisted violation must still exist; once fixed, its line must go."""
    present = {(e.src, e.dst) for e in EDGES}
    stale = [f"{a} -> {b} ({why})" for (a, b), why in ALLOWLIST.items() if (a, b) not in present]
    cyc = {m for c in cycles(EDGES) for m in c}
    rule = {(e.src, e.dst) for e, _ in layering_violations(EDGES)}
    unneeded = [f"{a} -> {b}" for (a, b) in ALLOWLIST
                if (a, b) in present and (a, b) not in rule and not (a in cyc and b in cyc)]
    inc = {(f, h) for f, h, _ in c_include_violations()}
    stale += [f"{f} includes {h} ({why})" for (f, h), why in C_INCLUDE_ALLOWLIST.items() if (f, h) not in inc]
    paths = {m for m, _ in path_violations()}
    stale += [f"{m} builds a path into hardware/ ({why})" for m, why in PATH_ALLOWLIST.items() if m not in paths]
    assert not stale and not unneeded, (
        "allowlisted violations that no longer exist: remove them from the allowlist in tests/test_import_graph.py:\n  "
        + "\n  ".join(stale + [f"{u} (breaks no rule)" for u in unneeded]))


# ------------------------------------------------------------------------------- the checker itself
def test_the_checker_finds_a_cycle_a_layering_break_and_a_private_import():
    """The rules above are not vacuous: a made-up graph with each fault is caught."""
    fake = [Edge("sims.a", "robolearn.b", 1, "module"), Edge("robolearn.b", "sims.a", 2, "function"),
            Edge("robolearn.train", "benchmarks.train", 3, "module"),
            Edge("robolearn.cli", "benchmarks.train", 4, "function"),
            Edge("benchmarks.x", "robolearn.cli._default", 5, "function", private=True),
            Edge("firmware_export.c", "hardware.hil", 6, "type")]
    why = {(e.src, e.dst): w for e, w in layering_violations(fake)}
    assert ("sims.a", "robolearn.b") in why
    assert ("robolearn.train", "benchmarks.train") in why
    assert ("robolearn.cli", "benchmarks.train") not in why  # the one allowed edge
    assert "private" in why[("benchmarks.x", "robolearn.cli._default")]
    assert ("firmware_export.c", "hardware.hil") in why  # a TYPE_CHECKING import still counts for layering
    succ = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    comps = strongly_connected(["a", "b", "c", "d"], succ)
    assert sorted(map(len, comps)) == [1, 3] and ["a", "b", "c"] in comps


def test_the_parser_resolves_relative_function_level_and_type_checking_imports(tmp_path):
    src = ("from __future__ import annotations\n"
           "from typing import TYPE_CHECKING\n"
           "from .config import load_config\n"
           "from . import errors\n"
           "if TYPE_CHECKING:\n"
           "    from .train import TrainResult\n"
           "def f():\n"
           "    from benchmarks.train import run\n"
           "    import sims.quadrotor.params\n"
           "    from .cli import _default\n")
    f = tmp_path / "cli.py"  # parsed as if it were robolearn/cli.py
    f.write_text(src)
    es = {(e.dst, e.kind, e.private) for e in edges_of("robolearn.cli", f)}
    assert ("robolearn.config", "module", False) in es
    assert ("robolearn.errors", "module", False) in es
    assert ("robolearn.train", "type", False) in es
    assert ("benchmarks.train", "function", False) in es
    assert ("sims.quadrotor.params", "function", False) in es
    assert ("robolearn.cli._default", "function", True) in es


def test_the_cli_calls_benchmark_functions_not_their_argv_mains() -> None:
    """``robolearn bench ...`` takes typed options and calls the benchmarks' plain functions;
    no command hands an argv list to a benchmark's ``main``."""
    tree = ast.parse((ROOT / "robolearn" / "cli.py").read_text())
    mains = [f"line {n.lineno}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
             and (n.module or "").startswith("benchmarks") and any(a.name == "main" for a in n.names)]
    assert not mains, f"robolearn/cli.py imports a benchmark's main at {', '.join(mains)}"
    extra = [f"line {n.lineno}" for n in ast.walk(tree) if isinstance(n, ast.keyword) and n.arg == "context_settings"]
    assert not extra, f"a bench command passes unparsed arguments through (context_settings) at {', '.join(extra)}"
