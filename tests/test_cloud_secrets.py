"""Each cloud's secret source as its shim uses it: AWS Secrets Manager on moto, and the Google and Azure
SDK clients' request shapes and errors (no offline emulator exists for Secret Manager or Key Vault)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from strato import secrets
from strato.secrets import SecretUnavailable


def test_aws_secrets_manager_on_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    moto = pytest.importorskip("moto")
    import boto3

    from strato.adapters.aws.secrets import secrets_manager

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with moto.mock_aws():
        client = boto3.client("secretsmanager")
        client.create_secret(Name="db-password", SecretString="hunter2")
        client.create_secret(Name="cert", SecretBinary=b"binary-value")
        source = secrets_manager(client)
        assert source("db-password") == "hunter2" and source("cert") == "binary-value"
        with secrets.secret_source(source):
            assert secrets.resolve({"pw": {"$strato_secret": "db-password"}}, frozenset({"db-password"})) == {
                "pw": "hunter2"}
        with pytest.raises(SecretUnavailable, match=r"'missing' cannot be read from AWS Secrets Manager "
                                                    r"\(ResourceNotFoundException\)"):
            source("missing")


class _GoogleClient:
    def __init__(self, values: dict[str, bytes]):
        self.values, self.requests = values, []

    def access_secret_version(self, request: dict[str, str]) -> Any:
        from google.api_core import exceptions

        self.requests.append(request["name"])
        if request["name"] not in self.values:
            raise exceptions.NotFound("secret not found")
        return SimpleNamespace(payload=SimpleNamespace(data=self.values[request["name"]]))


def test_gcp_secret_manager_reads_the_latest_version(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("google.api_core")
    from strato.adapters.gcp.secrets import secret_manager

    client = _GoogleClient({"projects/acme/secrets/db-password/versions/latest": b"hunter2"})
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "acme")
    source = secret_manager(client=client)
    assert source("db-password") == "hunter2"
    with pytest.raises(SecretUnavailable, match=r"'api-token' cannot be read from Secret Manager \(NotFound\): create "
                                                r"projects/acme/secrets/api-token/versions/latest"):
        source("api-token")
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    with pytest.raises(SecretUnavailable, match="no project to read it from; set STRATO_GCP_PROJECT"):
        secret_manager(client=client)("db-password")


class _VaultClient:
    def __init__(self, values: dict[str, str]):
        self.values = values

    def get_secret(self, name: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        if name not in self.values:
            raise ResourceNotFoundError("SecretNotFound")
        return SimpleNamespace(value=self.values[name])


def test_azure_key_vault(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("azure.core")
    from strato.adapters.azure.secrets import key_vault

    source = key_vault(client=_VaultClient({"db-password": "hunter2"}))
    assert source("db-password") == "hunter2"
    with pytest.raises(SecretUnavailable, match=r"'x' cannot be read from Key Vault \(ResourceNotFoundError\)"):
        source("x")
    monkeypatch.delenv("STRATO_KEY_VAULT_URL", raising=False)
    with pytest.raises(SecretUnavailable, match="no Key Vault to read it from; set STRATO_KEY_VAULT_URL"):
        key_vault()("db-password")
