"""Secrets for a deployed task, from Google Cloud Secret Manager.

The shim resolves a task's granted ``Secret(name)`` arguments by accessing the latest version of the
secret of that name in the function's project, as the function's service account (the
``strato.infra`` component grants ``roles/secretmanager.secretAccessor`` on exactly those secrets). In
emulation secrets come from ``STRATO_SECRET_<NAME>``.
"""

from __future__ import annotations

import os
from typing import Any

from strato.secrets import SecretSource, SecretUnavailable

PROJECT_ENV = ("STRATO_GCP_PROJECT", "GOOGLE_CLOUD_PROJECT", "GCP_PROJECT")


def secret_manager(project: str | None = None, client: Any = None) -> SecretSource:
    """A source reading ``projects/<project>/secrets/<name>/versions/latest``."""

    def read(name: str) -> str:
        nonlocal client
        found = project or next((os.environ[v] for v in PROJECT_ENV if os.environ.get(v)), None)
        if not found:
            raise SecretUnavailable(f"secret {name!r}: no project to read it from; set {PROJECT_ENV[0]}")
        if client is None:
            from google.cloud import secretmanager  # lazy: only a deployed task with secrets needs it

            client = secretmanager.SecretManagerServiceClient()
        from google.api_core import exceptions

        path = f"projects/{found}/secrets/{name}/versions/latest"
        try:
            response = client.access_secret_version(request={"name": path})
        except exceptions.GoogleAPICallError as exc:
            raise SecretUnavailable(f"secret {name!r} cannot be read from Secret Manager ({type(exc).__name__}): "
                                    f"create {path} and grant the function's service account "
                                    "roles/secretmanager.secretAccessor on it") from None
        return bytes(response.payload.data).decode()

    return read
