"""The core stays small and cloud-neutral: arrows point from strato.adapters/strato.infra to the core,
never back, and everything installs under the one import name ``strato``."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"framework": "strato", "adapters": "strato.adapters", "infra": "strato.infra"}
CLOUD_SDKS = ("boto3", "botocore", "moto", "google", "azure", "pulumi", "functions_framework", "yaml")
OLD_NAMES = {"framework", "adapters", "infra"}


def _imports(path: Path) -> set[str]:
    """Absolute module names a file imports (``from x import y`` also counts ``x.y``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _python_files() -> list[Path]:
    skip = {".venv", ".venv-localstack", "node_modules", "build", ".git"}
    return [p for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts)]


def test_core_imports_no_adapter_infra_or_cloud_sdk() -> None:
    for path in (ROOT / "framework").rglob("*.py"):
        imported = _imports(path)
        bad = {m for m in imported if m.split(".")[0] in CLOUD_SDKS}
        bad |= {m for m in imported if m.startswith(("strato.adapters", "strato.infra"))}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_adapters_import_no_infra() -> None:
    for path in (ROOT / "adapters").rglob("*.py"):
        bad = {m for m in _imports(path) if m.startswith("strato.infra")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_nothing_imports_the_folder_names() -> None:
    """The folders are not import names: only ``strato...`` is (a wheel holds nothing else)."""
    for path in _python_files():
        bad = {m for m in _imports(path) if m.split(".")[0] in OLD_NAMES}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: use strato, strato.adapters, strato.infra"


def test_every_package_folder_is_installed() -> None:
    """pyproject lists the packages explicitly (package-dir mapping): a new folder must be added there."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {name: folder for folder, name in FOLDERS.items()}
    found = set()
    for folder, name in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *parts)))
    assert set(config["packages"]) == found


def test_import_strato_stays_light() -> None:
    code = ("import sys, strato; heavy = [m for m in ('pydantic', 'croniter', 'rich', 'sqlite3', 'boto3', "
            "'yaml') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/").stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("module", ["strato.runtime.invoke", "strato.runtime.results", "strato.runtime",
                                    "strato.ir"])
def test_what_adapters_and_shims_import_stays_light(module: str) -> None:
    """Run results, inputs and task invocation load neither the runner, SQLite, the DSL nor the CLI's libraries."""
    heavy = ("sqlite3", "strato.runtime.runner", "strato.runtime.store", "strato.dsl", "rich")
    code = f"import sys, {module}; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/").stdout
    assert out.strip() == "[]"


def test_the_runtime_facade_still_offers_the_runner_lazily() -> None:
    code = ("import sys, strato.runtime as r; assert 'strato.runtime.runner' not in sys.modules; "
            "from strato.runtime import RunResult, Runner, RunStore, VirtualClock, import_task, prepare_input; "
            "assert 'strato.runtime.runner' in sys.modules and r.RunResult is RunResult; "
            "import strato.runtime.runner as runner; assert runner.new_run_id is r.new_run_id; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.stdout.strip() == "ok", out.stderr


ROLES = ("__init__.py", "compiler.py", "shim.py", "triggers.py", "rules.py", "payloads.py", "naming.py", "emulator.py",
         "secrets.py", "package.py")


def test_every_cloud_folder_has_the_same_file_roles() -> None:
    """A newcomer who knows one cloud's folder knows all three."""
    for cloud in ("aws", "gcp", "azure"):
        present = {p.name for p in (ROOT / "adapters" / cloud).glob("*.py")}
        missing = [role for role in ROLES if role not in present]
        assert not missing, f"adapters/{cloud} has no {', '.join(missing)}"


def test_no_cloud_folder_swaps_task_code_or_stores_its_own_way() -> None:
    """One mechanism for emulation overrides (strato.adapters.common.emulation), one envelope."""
    for path in (ROOT / "adapters").rglob("*.py"):
        if "common" in path.parts:
            continue
        text = path.read_text()
        for old in ("$strato.blob", "using_loader", "using_store", "ShimConfig", '"fn"'):
            assert old not in text, f"{path.relative_to(ROOT)} still uses {old}"


def test_the_cli_module_stays_light() -> None:
    """``strato --help`` loads the CLI alone: no IR, DSL, run store, SQLite, pydantic or Rich."""
    heavy = ("pydantic", "rich", "sqlite3", "croniter", "strato.ir", "strato.options", "strato.dsl",
             "strato.runtime.store")
    code = f"import sys, strato.cli, strato.cli_ops; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/").stdout
    assert out.strip() == "[]"


# What `strato --help` must not load: each costs milliseconds of every command's start (the interpreter
# itself starts in about 15 ms; `strato --help` must take at most 60 ms). Only `typing` is allowed, for
# `import strato`'s own annotations.
CLI_START_HEAVY = ("click", "dataclasses", "inspect", "sqlite3", "rich", "pydantic", "importlib.metadata",
                   "strato.errors", "strato.ir", "strato.targets", "json", "pathlib", "contextlib", "shutil")


def test_the_cli_starts_with_argparse_alone() -> None:
    """``import strato`` and ``strato --help`` load argparse and the CLI's own modules, nothing in
    CLI_START_HEAVY (what the interpreter's start loaded already, as an editable install's finder, aside):
    a command imports what it needs when it runs."""
    code = ("import sys; before = set(sys.modules); import strato.cli\n"
            "try:\n    strato.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"heavy = {CLI_START_HEAVY!r}\n"
            "print([m for m in heavy if m in set(sys.modules) - before], file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert done.returncode == 0 and "usage: strato" in done.stdout, done.stderr
    assert done.stderr.strip() == "[]"


def test_a_run_of_plainly_typed_tasks_loads_no_pydantic(tmp_path: Path) -> None:
    """Exact scalars under scalar annotations pass unchanged, so a run of such tasks never loads pydantic."""
    (tmp_path / "one.py").write_text("from strato import pipeline, task\n\n@task\ndef noop(x: int) -> int:\n"
                                     "    return x\n\n@pipeline\ndef one(n: int = 1) -> int:\n    return noop(n)\n")
    code = ("import sys; sys.argv = ['strato', 'run', 'one.py:one', '--input', '{\"n\": 3}', '--json']\n"
            "from strato.cli import main\ntry:\n    main()\nexcept SystemExit as exc:\n"
            "    print('pydantic' in sys.modules, exc.code, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "STRATO_HOME": str(tmp_path / "home")})
    assert done.stderr.strip().splitlines()[-1] == "False 0", done.stderr
    assert '"output": 3' in done.stdout


def test_lists_and_string_keyed_dicts_of_exact_scalars_load_no_pydantic(tmp_path: Path) -> None:
    """A map over ``items: list[int]`` and a ``dict[str, list[str]]`` result pass as they are, without pydantic;
    a value that would need converting (a bool where an int is annotated) still goes through it."""
    (tmp_path / "wide.py").write_text(
        "from strato import pipeline, task\n\n@task\ndef tag(x: int) -> dict[str, list[str]]:\n"
        "    return {'tags': [str(x)] * x}\n\n@pipeline\ndef wide(items: list[int]):\n    return tag.map(items)\n")
    code = ("import sys; sys.argv = ['strato', 'run', 'wide.py:wide', '--input', sys.argv[1], '--json']\n"
            "from strato.cli import main\ntry:\n    main()\nexcept SystemExit as exc:\n"
            "    print('pydantic' in sys.modules, exc.code, file=sys.stderr)\n")
    env = {**os.environ, "STRATO_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", code, '{"items": [1, 2]}'], capture_output=True, text=True,
                          cwd=tmp_path, env=env)
    assert done.stderr.strip().splitlines()[-1] == "False 0", done.stderr
    assert json.loads(done.stdout)["output"] == [{"tags": ["1"]}, {"tags": ["2", "2"]}]
    coerced = subprocess.run([sys.executable, "-c", code, '{"items": [1, true]}'], capture_output=True, text=True,
                             cwd=tmp_path, env=env)
    assert coerced.stderr.strip().splitlines()[-1].startswith("True"), coerced.stderr
