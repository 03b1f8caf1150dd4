"""The layout docs/architecture.md describes holds: every module is listed there, the method
does not reach into the applications or the command line, and no function grows past 100 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sfxgan"
ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
OUTER = ("apps", "cli")  # what may import the method, never the other way round
MAX_FUNCTION_LINES = 100


def _modules() -> dict[str, Path]:
    """Dotted names below sfxgan (without the package prefix) -> file, packages' __init__ aside."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] in ("__init__", "__main__"):
            continue
        found[".".join(parts)] = path
    return found


def _imported(path: Path) -> set[str]:
    """Absolute names of the sfxgan modules a file imports (at any depth of the file)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sfxgan"):
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("sfxgan"))
    return names


def test_every_module_is_described_in_the_architecture_page():
    page = ARCHITECTURE.read_text()
    missing = [name for name in _modules() if f"`{name}`" not in page]
    assert not missing, f"docs/architecture.md does not list: {missing}"


@pytest.mark.parametrize(
    "name", [n for n in _modules() if n.split(".")[0] not in OUTER], ids=lambda n: n
)
def test_the_method_does_not_import_the_applications_or_the_cli(name):
    path = _modules()[name]
    outer = sorted(
        imported
        for imported in _imported(path)
        if imported.split(".")[1:2] and imported.split(".")[1] in OUTER
    )
    assert not outer, f"{name} imports {outer}"


def test_no_function_is_longer_than_a_hundred_lines():
    long = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name} ({lines} lines)")
    assert not long, f"split these: {long}"
