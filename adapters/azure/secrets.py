"""Secrets for a deployed task, from Azure Key Vault.

The activity resolves a task's granted ``Secret(name)`` arguments by reading the secret of that name
from the vault at ``STRATO_KEY_VAULT_URL`` with the function app's managed identity (the
``strato.infra`` component grants it "Key Vault Secrets User" on the vault). In emulation secrets come
from ``STRATO_SECRET_<NAME>``.
"""

from __future__ import annotations

import os
from typing import Any

from strato.secrets import SecretSource, SecretUnavailable

VAULT_ENV = "STRATO_KEY_VAULT_URL"


def key_vault(vault_url: str | None = None, client: Any = None) -> SecretSource:
    """A source reading the current version of the vault's secret named like the reference."""

    def read(name: str) -> str:
        nonlocal client
        if client is None:
            url = vault_url or os.environ.get(VAULT_ENV)
            if not url:
                raise SecretUnavailable(f"secret {name!r}: no Key Vault to read it from; set {VAULT_ENV}")
            from azure.identity import DefaultAzureCredential  # lazy: only a deployed task with secrets needs it
            from azure.keyvault.secrets import SecretClient

            client = SecretClient(vault_url=url, credential=DefaultAzureCredential())
        from azure.core.exceptions import AzureError

        try:
            secret = client.get_secret(name)
        except AzureError as exc:
            raise SecretUnavailable(f"secret {name!r} cannot be read from Key Vault ({type(exc).__name__}): create "
                                    "it and grant the app's identity the Key Vault Secrets User role") from None
        if secret.value is None:
            raise SecretUnavailable(f"secret {name!r} in Key Vault has no value")
        return str(secret.value)

    return read
