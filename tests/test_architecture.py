"""The core stays small and cloud-neutral: arrows point from adapters/infra to framework, never back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

FRAMEWORK = Path(__file__).resolve().parent.parent / "framework"
CLOUD_SDKS = ("boto3", "botocore", "moto", "google", "azure", "pulumi", "functions_framework", "yaml")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_framework_imports_no_adapter_infra_or_cloud_sdk() -> None:
    for path in FRAMEWORK.rglob("*.py"):
        forbidden = _imports(path) & {"adapters", "infra", *CLOUD_SDKS}
        assert not forbidden, f"{path.relative_to(FRAMEWORK.parent)} imports {sorted(forbidden)}"


def test_import_framework_stays_light() -> None:
    code = ("import sys, framework; heavy = [m for m in ('pydantic', 'croniter', 'rich', 'click', 'sqlite3', "
            "'boto3', 'yaml') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
