"""Structural validation against the public JSON schema of the Workflows syntax.

``workflow-schema.json`` beside this file is SchemaStore's schema for Google Cloud Workflows
(``https://json.schemastore.org/workflows.json``, Apache-2.0, see ``NOTICE``). It catches shape
errors (unknown keywords, wrong types) but no semantic ones; :mod:`.syntax` does those. The check
needs the optional ``jsonschema`` package.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from .syntax import load_source

SCHEMA_PATH = Path(__file__).with_name("workflow-schema.json")


@cache
def workflow_schema() -> dict[str, Any]:
    """The vendored JSON schema as a dict."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def schema_errors(source: str | bytes | dict | list) -> list[str]:
    """Every violation of the JSON schema, as ``path: message`` strings (empty when the source conforms)."""
    try:
        import jsonschema
    except ModuleNotFoundError as exc:  # pragma: no cover - the emulate-gcp extra installs it
        raise RuntimeError("schema validation needs the 'jsonschema' package: pip install 'strato[emulate-gcp]'") \
            from exc
    document = load_source(source)
    validator = jsonschema.Draft7Validator(workflow_schema())
    found = []
    for err in validator.iter_errors(document):
        while err.context:  # a failed oneOf/anyOf: report the alternative that got furthest in
            err = max(err.context, key=lambda e: len(e.absolute_path))
        path = "/".join(str(p) for p in err.absolute_path) or "(root)"
        found.append(f"{path}: {err.message}")
    return sorted(found)
