"""A task's code is found from the IR alone (module + qualname): nothing travels beside the IR."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from strato import ir
from strato.errors import StratoError
from strato.loader import load
from strato.runtime import Runner, RunStore, import_task, resolve_task, resolver_for, run_pipeline
from strato.validate import validated

from .conftest import ROOT, Cli

# Tasks declared inside a function: no import can find them (qualname has <locals>).
FLOW = textwrap.dedent('''
    from strato import pipeline, task


    def make():
        @task
        def double(x: int) -> int:
            return 2 * x

        @task(name="inc")
        def increment(x: int) -> int:
            return x + 1

        @pipeline
        def flow(x: int = 1):
            return {"a": increment(double(x)), "b": double.map([x, 10])}

        return flow


    flow = make()

    if __name__ == "__main__":
        from strato.runtime import run_pipeline

        print(__import__("json").dumps(run_pipeline(flow, {"x": 4}).to_dict()))
''')


def _write(directory: Path, name: str = "flow.py") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(FLOW)
    return path


def test_a_file_ref_pipeline_runs_from_its_ir_alone(tmp_path: Path) -> None:
    loaded = load(f"{_write(tmp_path / 'pkg')}:flow")
    checked = validated(loaded.definition)
    assert "<locals>" in checked.ir.tasks["inc"].qualname
    back = ir.from_json(checked.ir.to_json())  # only the IR: no definitions, no functions
    result = Runner(RunStore.memory()).start(back, {"x": 3})
    assert result.succeeded, result.error
    assert result.output == {"a": 7, "b": [6, 20]}
    assert run_pipeline(loaded.definition, {"x": 5}, store=RunStore.memory()).output == {"a": 11, "b": [10, 20]}


def test_a_module_run_with_python_m_resolves_its_tasks(tmp_path: Path, strato_home: Path) -> None:
    _write(tmp_path / "jobs", "flow.py")
    (tmp_path / "jobs" / "__init__.py").write_text("")
    env = Cli(strato_home).env(PYTHONPATH=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "jobs.flow"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["output"] == {"a": 9, "b": [8, 20]}


def test_the_cli_runs_a_file_ref_and_a_module_ref(cli: Cli, tmp_path: Path) -> None:
    path = _write(tmp_path / "jobs", "flow.py")
    (tmp_path / "jobs" / "__init__.py").write_text("")
    code, out = cli.json("run", f"{path}:flow", "--input", '{"x": 2}', "--json")
    assert code == 0 and out["output"] == {"a": 5, "b": [4, 20]}, out
    code, out = cli.json("run", "jobs.flow:flow", "--json", cwd=tmp_path)
    assert code == 0 and out["output"] == {"a": 3, "b": [2, 20]}, out


def test_resolution_prefers_declared_functions_then_imports() -> None:
    from examples.daily_sales import daily_sales, extract

    spec = daily_sales.ir.tasks["extract"]
    assert resolve_task(spec) is extract.fn
    assert import_task(spec) is extract.fn
    elsewhere = ir.TaskSpec("dumps", "json", "dumps", ())
    assert resolve_task(elsewhere) is json.dumps


def test_a_pipelines_resolver_refuses_other_code() -> None:
    from examples.daily_sales import daily_sales

    resolve = resolver_for(daily_sales.ir)
    assert callable(resolve(daily_sales.ir.tasks["extract"]))
    with pytest.raises(StratoError, match="not a task of pipeline 'daily_sales'"):
        resolve(ir.TaskSpec("dumps", "json", "dumps", ()))


def test_sub_pipeline_tasks_resolve_too() -> None:
    from examples.revenue_report import revenue_report

    graph = revenue_report.ir
    resolve = resolver_for(graph)
    for child in graph.subpipelines.values():
        for spec in child.tasks.values():
            assert callable(resolve(spec))


def test_nothing_but_the_ir_travels() -> None:
    from strato.dsl.tracing import Traced
    from strato.validate import Validated

    assert set(Traced.__dataclass_fields__) == {"ir", "diagnostics", "checked"}  # checked: diagnostics, cached
    assert set(Validated.__dataclass_fields__) == {"ir", "warnings"}
    assert (ROOT / "framework" / "runtime" / "tasks.py").exists()
