"""Secrets for a deployed task, from AWS Secrets Manager.

The shim resolves a task's granted ``Secret(name)`` arguments with ``GetSecretValue`` on the secret
of that name, as the function's own role (the ``strato.infra`` component grants it on exactly the
secrets the IR gives the function's tasks). In emulation the secret comes from moto's Secrets Manager,
seeded from ``STRATO_SECRET_<NAME>``.
"""

from __future__ import annotations

from typing import Any

from strato.secrets import SecretSource, SecretUnavailable


def secrets_manager(client: Any = None) -> SecretSource:
    """A source reading ``SecretString`` (or UTF-8 ``SecretBinary``) of the secret named like the reference."""

    def read(name: str) -> str:
        nonlocal client
        if client is None:
            import boto3  # lazy: only a deployed task with secrets needs it

            client = boto3.client("secretsmanager")
        from botocore.exceptions import ClientError

        try:
            response = client.get_secret_value(SecretId=name)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            raise SecretUnavailable(f"secret {name!r} cannot be read from AWS Secrets Manager ({code}): create it "
                                    "and let the task's role call secretsmanager:GetSecretValue on it") from None
        if "SecretString" in response:
            return str(response["SecretString"])
        return bytes(response["SecretBinary"]).decode()

    return read
