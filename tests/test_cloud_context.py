"""``strato.context()`` inside a task on each cloud's emulation gives what the local runner gives: the
pipeline, the task id (a sub-pipeline's prefixed by its call), the attempt (counting the task's retries),
the map index; the run id is the cloud execution's and ``backend`` names the cloud."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Cli

PIPELINE = '''
import strato
from strato import Retry, pipeline, task


def _seen() -> dict:
    context = strato.context().to_dict()
    assert context.pop("run_id"), "a run id"
    return context


@task
def locate(x: int) -> dict:
    return _seen()


@task(retry=Retry(max_retries=2, delay=1))
def flaky(x: int) -> dict:
    if strato.context().attempt < 2:
        raise ConnectionError("the first attempt fails")
    return _seen()


@task
def each(i: int) -> dict:
    return _seen()


@pipeline
def inner(x: int):
    return locate(x)


@pipeline
def contexts(x: int = 1):
    return {"plain": locate(x), "retried": flaky(x), "mapped": each.map([5, 6]), "sub": inner(x)}
'''


def _run_and_emulate(cli: Cli, tmp_path: Path, source: str, name: str, target: str) -> tuple[dict, dict]:
    """``strato run`` and ``strato emulate --target`` of pipeline ``name`` in ``source``, both succeeded."""
    (tmp_path / f"{name}_pipeline.py").write_text(source)
    ref = f"{tmp_path / f'{name}_pipeline.py'}:{name}"
    code, local = cli.json("run", ref, "--json")
    assert code == 0, local
    code, emulated = cli.json("emulate", ref, "--target", target, "--json")
    assert code == 0, emulated
    return local, emulated


def _without_backend(output: dict) -> dict:
    return json.loads(json.dumps(output).replace('"backend": "aws"', '"backend": "local"')
                      .replace('"backend": "gcp"', '"backend": "local"').replace('"backend": "azure"',
                                                                                 '"backend": "local"'))


@pytest.mark.parametrize("target", ["gcp", "azure", "aws"])
def test_a_tasks_context_is_the_same_in_each_clouds_emulation(cli: Cli, tmp_path: Path, target: str) -> None:
    local, emulated = _run_and_emulate(cli, tmp_path, PIPELINE, "contexts", target)
    assert {item["backend"] for item in [emulated["output"]["plain"], *emulated["output"]["mapped"]]} == {target}
    assert local["output"]["retried"]["attempt"] == 2 and local["output"]["mapped"][1]["map_index"] == 1
    expected = local["output"]
    if target == "aws":  # a sub-pipeline is a state machine execution of its own there: see the README
        expected = {**expected, "sub": {**expected["sub"], "task_id": "locate"}}
    assert _without_backend(emulated["output"]) == expected


CAUGHT = '''
import strato
from strato import Catch, pipeline, task


def rescue(error: dict) -> dict:
    context = strato.context().to_dict()
    context.pop("run_id")
    return context


@task(catch=Catch(handler=rescue))
def broken(i: int) -> dict:
    raise ValueError(f"item {i}")


@pipeline
def caught():
    return {"one": broken(1), "each": broken.map([1, 2])}
'''


@pytest.mark.parametrize("target", ["gcp", "azure", "aws"])
def test_a_catch_handler_has_its_context_too(cli: Cli, tmp_path: Path, target: str) -> None:
    local, emulated = _run_and_emulate(cli, tmp_path, CAUGHT, "caught", target)
    assert local["output"]["one"]["task_id"] == "broken#catch" and local["output"]["each"][1]["map_index"] == 1
    assert _without_backend(emulated["output"]) == local["output"]
