"""Deployment packages: the runtime extras hold no emulator, and `strato package` builds what each cloud runs."""

from __future__ import annotations

import re
from importlib.metadata import requires

EMULATORS = {"moto", "statelint", "jsonschema", "localstack-core", "localstack-client"}


def _extra(name: str) -> set[str]:
    """The distributions strato's ``name`` extra names directly."""
    found = set()
    for line in requires("strato") or []:
        spec, _, marker = line.partition(";")
        if re.search(rf'extra\s*==\s*"{re.escape(name)}"', marker):
            found.add(re.split(r"[\s\[<>=!~;]", spec.strip(), maxsplit=1)[0].lower())
    return found


def test_runtime_extras_hold_no_emulator_and_emulation_extras_bring_the_runtime() -> None:
    for cloud in ("aws", "gcp", "azure"):
        runtime = _extra(cloud)
        assert runtime and not runtime & EMULATORS, f"strato[{cloud}] holds {sorted(runtime & EMULATORS)}"
        assert "strato" in _extra(f"emulate-{cloud}"), f"emulate-{cloud} does not bring strato[{cloud}]"
    assert "moto" in _extra("emulate-aws") and "jsonschema" in _extra("emulate-gcp")
    assert "boto3" not in _extra("gcp") | _extra("azure")
    assert _extra("emulate") == {"strato"}
