"""Secrets by reference: the value appears only in the task's argument, read from where the platform keeps it."""

from __future__ import annotations

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
