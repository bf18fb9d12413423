"""One-way arrows between firmware_export and hardware (issue 26): `hardware` may use
`firmware_export`, never the reverse (Python imports, lazy ones included, and C
#includes); neither imports the trainers; inside `hardware` the imports form no cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path, package: str) -> set[str]:
    """Modules a file imports, at any depth, except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for b in node.body for n in ast.walk(b)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package if node.level == 1 else ""
                mod = f"{base}.{node.module}" if node.module else base
                out |= {mod} if node.module else {f"{base}.{a.name}" for a in node.names}
            elif node.module:
                out.add(node.module)
    return out


def test_firmware_export_never_uses_hardware():
    for f in sorted((ROOT / "firmware_export").rglob("*.py")):
        bad = {m for m in _imports(f, "firmware_export") if m.split(".")[0] in ("hardware", "robolearn")}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"
    for f in sorted((ROOT / "firmware_export").rglob("*")):
        if f.suffix in (".c", ".h") or f.name in ("Makefile", "Kbuild"):
            assert not re.search(r"hardware/", f.read_text()), f"{f.relative_to(ROOT)} refers to hardware/"
    assert not (ROOT / "firmware_export" / "firmware").exists()


def test_hardware_has_no_import_cycle_and_no_trainer_import():
    mods = {f.stem: f for f in (ROOT / "hardware").glob("*.py") if f.stem != "__init__"}
    graph = {}
    for name, f in mods.items():
        imps = _imports(f, "hardware")
        assert not {m for m in imps if m.split(".")[0] == "robolearn"}, f"hardware/{f.name} imports robolearn"
        graph[name] = {m.split(".")[1] for m in imps if m.startswith("hardware.") and m.split(".")[1] in mods} - {name}
    seen: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        if seen.get(n) == 1:
            raise AssertionError("import cycle: " + " -> ".join(path + [n]))
        if seen.get(n) == 2:
            return
        seen[n] = 1
        for m in sorted(graph[n]):
            visit(m, path + [n])
        seen[n] = 2

    for n in sorted(graph):
        visit(n, [])
    assert "hil" not in graph["device_model"] and "device_model" in graph["hil"]
