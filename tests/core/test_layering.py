"""The layering of design.md: the core is plain Python — it imports no XML, HTTP, FHIR or server library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import rsb_connector

PACKAGE = Path(rsb_connector.__file__).parent
CORE = ["__init__.py", "errors.py", "identifiers.py", "query.py", "metadata", "policy"]
FORBIDDEN = ("lxml", "httpx", "fhir", "starlette", "uvicorn", "signxml", "cryptography", "rich")


def _core_files() -> list[Path]:
    files: list[Path] = []
    for name in CORE:
        path = PACKAGE / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return [f for f in files if f.exists()]


def test_core_modules_import_no_outside_library() -> None:
    offenders = []
    for path in _core_files():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_importing_the_core_loads_no_outside_library() -> None:
    code = (
        "import sys, rsb_connector, rsb_connector.identifiers, rsb_connector.query, rsb_connector.metadata.rules, "
        "rsb_connector.metadata.builder; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_public_api_is_reachable_from_the_package() -> None:
    for name in rsb_connector.__all__:
        assert getattr(rsb_connector, name) is not None
