"""`strato validate`: every error at once, each at the user's file:line, naming the task or field."""

from __future__ import annotations

import re

from strato.loader import load
from strato.validate import validate

from .conftest import PIPELINES, Cli


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_every_error_is_reported_with_its_location(cli: Cli) -> None:
    result = cli("validate", "tests/pipelines/broken.py:broken")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    expected = [
        (6, "task 'extract': retry.max_retries must be a whole number >= 0"),
        (6, "task 'extract': retry.backoff must be a number >= 1"),
        (6, "task 'extract': retry.on must be a non-empty tuple of exception class names"),
        (6, "task 'extract': timeout must be a number of seconds > 0"),
        (6, "task 'extract': memory is in MB"),
        (6, "task 'extract': tag 'env' has value 3; tag values are strings"),
        (11, "task 'load': parameter *extra: tasks take named parameters only"),
        (16, "schedule: cron '0 25 * * *' is not a valid expression"),
        (16, "schedule: unknown timezone 'Mars/Olympus'"),
        (16, "data-classification 'secret' is not one of public, internal, confidential, restricted"),
        (18, "task 'extract': unknown argument 'region'; parameters are day"),
        (19, "argument 'rows' is a set, which is not JSON"),
        (20, "task 'load': missing argument(s) 'rows'"),
        (21, "when() needs a comparison with a JSON literal"),
        (23, "when() compares a result with a JSON literal"),
        (26, "dependency cycle later -> first -> later"),
    ]
    out = result.stderr
    for line, message in expected:
        assert re.search(rf"tests/pipelines/broken\.py:{line}: .*{re.escape(message)}", out), (line, message, out)
    assert len([m for m in _lines(out) if re.search(r"broken\.py:\d+: (?!warning)", m)]) == len(expected)
    assert "16 error(s)" in out


def test_dependency_cycles_from_wait_for_names() -> None:
    from strato import pipeline, task

    @task
    def step(x: int) -> int:
        return x

    @pipeline
    def cyclic():
        a = step.alias("a")(1, wait_for=["c"])
        b = step.alias("b")(a)
        step.alias("c")(b)

    result, diagnostics = validate(cyclic)
    assert result is None
    (cycle,) = [d for d in diagnostics if "cycle" in d.message]
    assert "a -> b -> c -> a" in cycle.message or "b -> c -> a -> b" in cycle.message
    assert cycle.location is not None and cycle.location.file == __file__


def test_unknown_wait_for_name_is_located(cli: Cli) -> None:
    from strato import pipeline, task

    @task
    def step(x: int) -> int:
        return x

    @pipeline
    def p():
        step(1, wait_for=["nope"])

    _, diagnostics = validate(p)
    assert any("no call in pipeline 'p' has that name" in d.message for d in diagnostics)


def test_policies_shared_as_objects_and_custom_functions() -> None:
    governed = load(str(PIPELINES / "governed.py") + ":governed").definition
    result, diagnostics = validate(governed)
    messages = [str(d) for d in diagnostics]
    assert result is None
    assert any("lacks required tag(s) 'owner'" in m for m in messages)
    assert any("AllowedValues('data-classification')" in m and "'confidential' is not allowed" in m for m in messages)
    assert any("writes confidential data to a public bucket" in m for m in messages)
    assert any("'public' is lower than the pipeline's 'internal'" in m for m in messages)


def test_policies_from_the_command_line(cli: Cli) -> None:
    ok = cli("validate", "tests/pipelines/governed.py:compliant")
    assert ok.returncode == 1 and "'public' is lower than the pipeline's 'internal'" in ok.stderr
    strict = cli("validate", "examples/daily_sales.py:daily_sales",
                 "--policy", "tests.pipelines.governed:TEAM_POLICIES")
    assert strict.returncode == 0, strict.stderr
    extra = cli("validate", "examples/daily_sales.py", "--policy", "tests.pipelines.governed:no_public_writes",
                "--json")
    assert extra.returncode == 0
    assert '"valid": true' in extra.stdout


def test_valid_pipeline_and_json_diagnostics(cli: Cli) -> None:
    result = cli("validate", "examples/daily_sales.py:daily_sales")
    assert result.returncode == 0 and "ok: pipeline 'daily_sales' is valid" in result.stdout
    code, data = cli.json("validate", "tests/pipelines/broken.py:broken", "--json")
    assert code == 1 and data["valid"] is False
    first = data["diagnostics"][0]
    assert first["file"].endswith("broken.py") and first["line"] == 6 and first["subject"] == "task 'extract'"


def test_nothing_is_written_for_an_invalid_pipeline(cli: Cli, tmp_path) -> None:
    result = cli("run", "tests/pipelines/broken.py:broken", "--input", '{"day": "x"}')
    assert result.returncode == 1 and "nothing was run" in result.stderr
    code, runs = cli.json("runs", "list", "--json")
    assert code == 0 and runs == []


def test_import_errors_are_located_without_traceback(cli: Cli, tmp_path) -> None:
    bad = tmp_path / "oops.py"
    bad.write_text("from strato import pipeline\n\n@pipeline\ndef p(:\n    pass\n")
    result = cli("validate", f"{bad}:p")
    assert result.returncode == 1 and "oops.py:4: syntax error" in result.stderr and "Traceback" not in result.stderr
    bad.write_text("import json\n\nraise RuntimeError('no config')\n")
    result = cli("validate", str(bad))
    assert result.returncode == 1 and "oops.py:3: importing" in result.stderr
    assert "RuntimeError: no config" in result.stderr
    missing = cli("validate", "tests/pipelines/governed.py:nope")
    assert missing.returncode == 2 and "no pipeline named 'nope'" in missing.stderr and "compliant" in missing.stderr


def test_an_unauthenticated_endpoint_needs_explicit_consent(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = ("from strato import Http, pipeline, task\n\n\n@task\ndef go() -> int:\n    return 1\n\n\n"
              "@pipeline(triggers=[Http(path='/go', auth={auth!r}{extra})])\ndef {name}():\n    return go()\n")
    refused = tmp_path / "refused.py"
    refused.write_text(source.format(auth="none", extra="", name="refused"))
    proc = cli("validate", f"{refused}:refused")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert ("refused.py:9: pipeline 'refused' trigger Http: auth='none' lets anyone who can reach the URL start runs "
            "with any input; keep auth='iam', or confirm with Http(auth='none', public=True)") in proc.stderr
    consented = tmp_path / "consented.py"
    consented.write_text(source.format(auth="none", extra=", public=True", name="consented"))
    proc = cli("validate", f"{consented}:consented")
    assert proc.returncode == 0
    assert "consented.py:9: warning: pipeline 'consented' trigger Http: public endpoint" in proc.stdout
    proc = cli("compile", f"{consented}:consented", "--target", "aws", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0 and "public endpoint" in proc.stderr
