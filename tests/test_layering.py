"""The rooms of the package and what each may import (docs/architecture.md).

Imports are read from the source with ``ast``, lazy ones (inside functions) included, so a
rule broken by a late ``import`` inside a function fails here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "carbonclap_xl"

# room -> rooms of the package it may import (besides itself and the package root)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "workbook": {"core"},
    # reads budgets (through xlsx/budget) and writes them into workbooks (template, patch)
    "intake": {"core", "workbook", "xlsx", "validation"},
    "xlsx": {"core", "workbook"},
    "validation": {"core", "workbook", "xlsx"},
    "report": {"core", "workbook", "xlsx", "validation"},  # loads a workbook file, renders it
    "excel": {"core", "workbook", "report", "validation"},
    "libreoffice": {"core", "workbook", "report"},  # Rapport: the report beside the file
    "service": {"core", "workbook", "xlsx", "validation", "report", "intake"},
    "cli": {"core", "workbook", "xlsx", "intake", "validation", "report", "excel",
            "libreoffice", "service"},
}
# third-party modules that only one room may import
OWNED: dict[str, set[str]] = {
    "python_calamine": {"xlsx"},
    "lxml": {"xlsx"},
    "openpyxl": {"xlsx"},
    "xlwings": {"excel"},
    "fastapi": {"service"},
    "uvicorn": {"service"},
    "starlette": {"service"},
    "matplotlib": {"report"},
    "fpdf": {"report"},
    "pandas": set(),  # nothing at run time: LineTable.to_pandas is the one exception
    # LibreOffice's Python only: the extension's component and the root-install script
    "uno": {"libreoffice"},
    "unohelper": {"libreoffice"},
    "com": {"libreoffice"},
}
# files run by LibreOffice's Python (package data, never imported by the package)
UNO_SCRIPTS = ("carbonclap_xl.libreoffice.extension", "carbonclap_xl.libreoffice.office")
PURE_FORBIDDEN = {"openpyxl", "xlwings", "python_calamine", "lxml", "pandas", "fastapi"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path, module: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, lazy) for every import of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int, bool]] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, lazy) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = package.split(".")
                    parent = parent[: len(parent) - child.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                found.append((base, child.lineno, lazy))
                for alias in child.names:  # "from carbonclap_xl.cli import lines" is a module
                    candidate = f"{base}.{alias.name}"
                    if candidate in MODULES:
                        found.append((candidate, child.lineno, lazy))
            elif isinstance(child, ast.If) and _is_type_checking(child):
                continue  # typing-only imports cost nothing at run time
            visit(child, inner)

    visit(tree, False)
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "carbonclap_xl" else None


def test_every_module_sits_in_a_known_room() -> None:
    loose = [m for m in MODULES if m.count(".") == 1 and _room(m) not in ALLOWED
             and m not in ("carbonclap_xl.__main__",)]
    assert not loose, f"modules outside the rooms: {loose}"


def test_rooms_import_only_what_they_may() -> None:
    broken = []
    for module, path in MODULES.items():
        room = _room(module)
        if room is None or room not in ALLOWED:
            continue
        for target, line, _lazy in _imports(path, module):
            other = _room(target)
            if target.startswith("carbonclap_xl") and other and other != room \
                    and other not in ALLOWED[room]:
                broken.append(f"{path.name}:{line} {room} -> {other} ({target})")
            top = target.split(".")[0]
            if top in OWNED and room not in OWNED[top] and not (
                    top == "pandas" and module == "carbonclap_xl.core.lines"):
                broken.append(f"{path.name}:{line} {room} imports {top}")
    assert not broken, "\n".join(broken)


def test_core_is_pure() -> None:
    for module, path in MODULES.items():
        if _room(module) != "core":
            continue
        for target, line, _lazy in _imports(path, module):
            top = target.split(".")[0]
            if module == "carbonclap_xl.core.lines" and top == "pandas":
                continue
            assert top not in PURE_FORBIDDEN, f"{path}:{line} imports {target}"


def test_no_import_cycles_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        graph[module] = {t for t, _l, _z in _imports(path, module)
                         if t in MODULES and t != module}
    # a package's __init__ importing its own submodules is not a cycle of the design
    cycles = []
    state: dict[str, int] = {}

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt):], nxt]
                if not _parent_child(cycle):
                    cycles.append(" -> ".join(cycle))
            elif nxt not in state:
                walk(nxt, stack)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [])
    assert not cycles, "\n".join(cycles)


def _parent_child(cycle: list[str]) -> bool:
    """A package's __init__ and a submodule that imports something from it (``from
    carbonclap_xl.cli import x`` inside ``cli/__main__``): allowed."""
    return len(set(cycle)) == 2 and any(a.startswith(b + ".") or b.startswith(a + ".")
                                        for a in cycle for b in cycle)


def test_uno_scripts_are_data_the_package_never_imports() -> None:
    """The extension's component and the scripts for a Python with ``uno`` stand alone
    (standard library + uno): the package imports none of them, they import nothing of
    the package."""
    broken = []
    for module, path in MODULES.items():
        inside = module.startswith(UNO_SCRIPTS)
        for target, line, _lazy in _imports(path, module):
            if inside and target.startswith("carbonclap_xl"):
                broken.append(f"{path.name}:{line} imports {target}")
            if not inside and target.startswith(UNO_SCRIPTS):
                broken.append(f"{path.name}:{line} imports {target}")
    assert not broken, broken


def test_no_import_error_swallowed() -> None:
    """A missing module must never make a command vanish silently."""
    offenders = []
    for path in MODULES.values():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                names = {n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)}
                if names & {"ImportError", "ModuleNotFoundError"}:
                    body = ast.unparse(node)
                    if "raise" not in body:
                        offenders.append(f"{path}:{node.lineno}")
    assert not offenders, offenders


def test_no_process_global_state_in_library_code() -> None:
    """No gc.disable(), no swapping of sys.stdout/stderr: two threads may call the package."""
    offenders = []
    for path in MODULES.values():
        text = path.read_text(encoding="utf-8")
        for needle in ("gc.disable(", "sys.stdout =", "sys.stderr =", "sys.stdout, sys.stdout"):
            if needle in text:
                offenders.append(f"{path.name}: {needle}")
    assert not offenders, offenders


def test_importing_the_cli_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = ("import sys, carbonclap_xl.cli; heavy = [m for m in ('numpy', 'pandas', "
            "'openpyxl', 'python_calamine', 'lxml', 'xlwings', 'fastapi', 'matplotlib') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "", f"`import carbonclap_xl.cli` imports {out}"
