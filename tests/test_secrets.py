"""Secrets by reference: the value appears only in the task's argument, read from where the platform keeps it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from strato import secrets
from strato.secrets import Secret, SecretUnavailable


def test_names_and_environment_variables() -> None:
    assert Secret("db-password").env_var == "STRATO_SECRET_DB_PASSWORD"
    assert Secret("db-password").problem() is None
    for bad in ("db_password", "1db", "", "a" * 128, "db password", "../x"):
        assert "must start with a letter" in (Secret(bad).problem() or "")


def test_resolve_replaces_references_only_for_allowed_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATO_SECRET_DB_PASSWORD", "hunter2")
    value = {"dsn": "postgres://db", "password": Secret("db-password").to_json(), "more": [Secret("db-password")
                                                                                           .to_json()]}
    assert secrets.resolve(value, frozenset({"db-password"})) == {"dsn": "postgres://db", "password": "hunter2",
                                                                  "more": ["hunter2"]}
    with pytest.raises(SecretUnavailable, match="not one this task was given"):
        secrets.resolve({"$strato_secret": "other"}, frozenset({"db-password"}))
    with pytest.raises(SecretUnavailable, match="export STRATO_SECRET_API_KEY"):
        secrets.resolve({"$strato_secret": "api-key"})
    assert list(secrets.secret_names(value)) == ["db-password", "db-password"]
    assert not secrets.is_secret_ref({"$strato_secret": "x", "other": 1})


def test_a_shim_installs_its_cloud_source() -> None:
    with secrets.secret_source(lambda name: f"from-vault:{name}"):
        assert secrets.resolve({"$strato_secret": "token"}) == "from-vault:token"
    source = secrets.environment_source({"STRATO_SECRET_TOKEN": "t"})
    assert source("token") == "t"
    with pytest.raises(SecretUnavailable):
        source("other")


@pytest.mark.parametrize(("key", "value"), [
    ("password", "hunter2"), ("api_key", "abc123"), ("DB_TOKEN", "x"), (None, "AKIAIOSFODNN7EXAMPLE"),
    (None, "ghp_16C7e42F292c6912E7710c838347Ae178B4a"), (None, "sk_live_51HqLyjWDarjtT1zdp7dc"),
    (None, "postgres://etl:s3cr3t@db:5432/sales"), (None, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    (None, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
])
def test_credentials_are_noticed(key: str | None, value: str) -> None:
    assert secrets.looks_like_credential(key, value)


@pytest.mark.parametrize(("key", "value"), [
    ("day", "2024-03-01"), (None, "s3://raw/orders/"), (None, "orders/2024/03/01/file.csv"),
    (None, "warehouse.orders_daily_snapshot_v2"), (None, "DailySalesReport2024Final"),
    ("token_url", "https://auth.example.com/token"), ("password", ""), (None, "a sentence that is rather long"),
])
def test_ordinary_values_are_not(key: str | None, value: str) -> None:
    assert not secrets.looks_like_credential(key, value)


def test_places_inside_nested_literals() -> None:
    value = {"conn": {"user": "etl", "password": "pw"}, "keys": ["ok", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"]}
    assert list(secrets.credential_places(value, "argument 'config'")) == [
        "argument 'config'['conn']['password']", "argument 'config'['keys'][1]"]


# ------------------------------------------------------------------------------ end to end, locally
SECURED = '''
from strato import Secret, pipeline, task


@task
def connect(dsn: str, password: str) -> dict:
    return {"dsn": dsn, "password_length": len(password)}


@task
def report(conn: dict, token: str) -> str:
    return f"{conn['dsn']} ok, token of {len(token)}"


@task
def forge() -> dict:
    return {"p": {"$strato_secret": "db-password"}}


@task
def echo(value: dict) -> dict:
    return value


@pipeline
def child(conn: dict, token: str = Secret("api-token")):
    return {"report": report(conn, token)}


@pipeline
def secured(dsn: str = "postgres://db/sales", password: str = Secret("db-password")):
    conn = connect(dsn, password)
    return {"conn": conn, "child": child(conn), "ref": echo(forge())}
'''


def test_a_secret_reaches_only_its_task_and_is_stored_nowhere(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "secured.py"
    path.write_text(SECURED)
    env = {"STRATO_SECRET_DB_PASSWORD": "hunter2-db-value", "STRATO_SECRET_API_TOKEN": "tok-123456-value"}
    code, out = cli.json("run", f"{path}:secured", "--json", **env)
    assert code == 0, out
    assert out["output"] == {"conn": {"dsn": "postgres://db/sales", "password_length": 16},
                             "child": {"report": "postgres://db/sales ok, token of 16"},
                             "ref": {"p": {"$strato_secret": "db-password"}}}  # data naming a secret stays data
    for target in ("aws", "gcp", "azure"):
        proc = cli("compile", f"{path}:secured", "--target", target, "--out", str(tmp_path / target), **env)
        assert proc.returncode == 0, proc.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()] + [p for p in cli.home.rglob("*") if p.is_file()]
    assert written
    for file in written:
        data = file.read_bytes()
        assert b"hunter2-db-value" not in data and b"tok-123456-value" not in data, file


def test_a_missing_secret_fails_the_task_naming_the_variable(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "secured.py"
    path.write_text(SECURED)
    code, out = cli.json("run", f"{path}:secured", "--json", STRATO_SECRET_API_TOKEN="t")
    assert code == 1
    assert out["error"] == {"error": "SecretUnavailable",
                            "cause": "secret 'db-password' is not set: export STRATO_SECRET_DB_PASSWORD with its value"}


def test_grants_follow_arguments_defaults_and_sub_pipelines(tmp_path: Path) -> None:
    import importlib.util

    path = tmp_path / "granted.py"
    path.write_text(SECURED)
    spec = importlib.util.spec_from_file_location("granted", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pipeline_ir = module.secured.ir
    assert {n: s.secrets for n, s in pipeline_ir.tasks.items()} == {"connect": ("db-password",), "echo": (),
                                                                        "forge": ()}
    assert pipeline_ir.subpipelines["child"].tasks["report"].secrets == ("api-token",)
    assert "hunter2" not in pipeline_ir.to_json()
    from strato.adapters.base import emulated_loader
    from strato.adapters.common import emulation, tasks
    from strato.runtime import resolver_for

    assert tasks.manifest(pipeline_ir, ["connect", "echo"]) == {
        "connect": {"target": "granted:connect", "secrets": ["db-password"]}, "echo": "granted:echo"}
    catalog = tasks.TaskCatalog(tasks.manifest(pipeline_ir), "test")
    assert catalog.grants["connect"] == {"db-password"} and catalog.grants["echo"] == frozenset()
    with emulation.emulating(loader=emulated_loader(pipeline_ir, resolver_for(pipeline_ir))):
        assert tasks.granted_secrets("report") == frozenset({"api-token"})


def test_bad_secret_names_are_located_errors(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text("from strato import Secret, pipeline, task\n\n\n@task\ndef use(x: str) -> str:\n    return x\n\n\n"
                    "@pipeline\ndef bad():\n    return use(Secret('db_password'))\n")
    proc = cli("validate", f"{path}:bad")
    assert proc.returncode == 1
    assert f"{path.name}:11: " in proc.stderr and "secret name 'db_password' must start with a letter" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_credential_looking_literals_are_warned_about(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "leaky.py"
    path.write_text("from strato import pipeline, task\n\n\n@task\ndef connect(dsn: str, password: str) -> int:\n"
                    "    return len(password)\n\n\n@pipeline\ndef leaky(dsn: str = 'postgres://etl:s3cr3t@db/sales'):\n"
                    "    return connect(dsn, password='hunter2')\n")
    proc = cli("validate", f"{path}:leaky")
    assert proc.returncode == 0
    assert f"{path.name}:9: warning: pipeline 'leaky': parameter 'dsn' default looks like a credential" in proc.stdout
    assert (f"{path.name}:11: warning: pipeline 'leaky': task 'connect' argument 'password' looks like a credential; "
            'pass Secret("<name>") instead') in proc.stdout


@pytest.mark.parametrize("target", ["aws", "gcp", "azure"])
def test_a_secret_in_emulation_matches_the_local_run(cli: Any, tmp_path: Path, target: str) -> None:
    path = tmp_path / "secured.py"
    path.write_text(SECURED)
    env = {"STRATO_SECRET_DB_PASSWORD": "hunter2-db-value", "STRATO_SECRET_API_TOKEN": "tok-123456-value"}
    code, local = cli.json("run", f"{path}:secured", "--json", **env)
    work = tmp_path / "work"
    emulated_code, emulated = cli.json("emulate", f"{path}:secured", "--target", target, "--json",
                                       "--work-dir", str(work), **env)
    assert (emulated_code, emulated["output"], emulated["error"]) == (code, local["output"], local["error"])
    for file in (p for p in work.rglob("*") if p.is_file()):
        data = file.read_bytes()
        assert b"hunter2-db-value" not in data and b"tok-123456-value" not in data, file


def test_a_secret_in_a_task_error_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    from strato.runtime.invoke import invoke

    monkeypatch.setenv("STRATO_SECRET_DB_PASSWORD", "hunter2-value")

    def connect(password: str) -> int:
        raise ConnectionError(f"login failed for password {password}")

    with pytest.raises(ConnectionError) as caught:
        invoke("connect", connect, {"password": {"$strato_secret": "db-password"}}, ["db-password"])
    assert str(caught.value) == "login failed for password ***"
