"""Helpers for the Azure tests: emulate a pipeline in the replay host, run it locally for parity."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

T0 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


class Emulated:
    """A pipeline compiled and loaded in a replay host on a virtual clock starting at ``T0``."""

    def __init__(self, definition: Any, work_dir: Path, **options: Any):
        from strato.adapters.azure.emulator import emulation
        from strato.runtime import resolver_for
        from strato.validate import validated

        self.definition = definition
        self.checked = validated(definition)
        self.ir = self.checked.ir
        self.work_dir = work_dir
        self.emulation = emulation(self.ir, resolver_for(self.checked.ir), work_dir, start=T0, **options)
        self.host = self.emulation.host

    def run(self, input: dict[str, Any] | None = None, run_id: str = "run-1") -> Any:
        from strato.runtime import prepare_input

        params = prepare_input(self.ir, input or {}, self.definition.fn)
        return self.emulation.run(params, run_id)

    def runs(self, name: str) -> list[Any]:
        """Activity executions of ``name``, in start order."""
        return [r for r in self.host.activity_runs if r.name == name]

    def history(self, instance: str = "run-1") -> list[dict[str, Any]]:
        return self.host.instances[instance].history


@pytest.fixture
def emulated(tmp_path: Path) -> Any:
    def make(definition: Any, **options: Any) -> Emulated:
        return Emulated(definition, tmp_path / "work", **options)

    return make


def run_locally(definition: Any, input: dict[str, Any] | None = None) -> Any:
    """The embedded runner's result (virtual clock: retries do not sleep)."""
    from strato.runtime import RunStore, VirtualClock, run_pipeline

    return run_pipeline(definition, input or {}, store=RunStore.memory(), clock=VirtualClock())


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A running Azurite blob service for the session (each xdist worker starts its own)."""
    from tests.azure import azurite as emulator

    program = emulator.binary()
    if program is None:
        pytest.skip("Azurite is not installed: run `npm install` in the repository root (it provides "
                    "node_modules/.bin/azurite-blob; needs Node)")
    server = emulator.start(program, tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()
