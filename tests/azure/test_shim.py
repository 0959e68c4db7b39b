"""An activity of a generated app runs only the task it is bound to, and only with that task's arguments.

Crafted inputs reach the activities through their real entry point (the app's activity function, called
as the replay host and a Functions worker call it), emulated and as deployed; none runs anything but
the bound task, and none runs any code at all when the input is not exactly that task's arguments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("azure.functions")
pytest.importorskip("azure.durable_functions")

from strato.adapters.azure import shim
from strato.adapters.azure.payloads import SCHEME, offload, offload_threshold, offloading_above, resolve
from strato.adapters.azure.replay.activities import call_activity
from strato.adapters.common.emulation import emulating
from strato.adapters.common.envelopes import REF
from strato.adapters.common.errors import PayloadError
from strato.adapters.common.stores import LocalBlobStore
from tests.azure import pipelines


@pytest.fixture
def guarded(emulated: Any) -> Any:
    pipelines.RAN.update(counted=0, bystander=0)
    return emulated(pipelines.guarded)


def activity(app: Any, name: str, data: Any) -> tuple[bool, Any]:
    """Call activity ``name`` with the JSON ``data`` as its input, the way the host hands it over."""
    from azure.functions import meta
    from azure.functions.durable_functions import ActivityTriggerConverter

    decoded = ActivityTriggerConverter.decode(meta.Datum(json.dumps(data), "json"), trigger_metadata=None)
    return call_activity(app.host.functions[name], name, decoded)


def crafted(marker: Path) -> list[Any]:
    command = f"touch {marker}"
    return [
        {"x": 1, "fn": "subprocess:getoutput", "cmd": command},  # an extra field trying to redirect
        {"task": "bystander", "x": 1},  # naming another task of the same app
        {"fn": "os:system", "args": {"command": {"literal": command}}},  # another cloud's payload shape
        {"x": 1, "task": "../../etc/passwd"},
        {"../x": 1},
        "subprocess:getoutput",  # not an object at all
        ["bystander", 1],
        42,
    ]


@pytest.mark.parametrize("deployed", [False, True], ids=["emulated", "deployed"])
def test_crafted_activity_inputs_run_nothing(guarded: Any, tmp_path: Path, deployed: bool) -> None:
    marker = tmp_path / "marker"
    for data in crafted(marker):
        if deployed:  # no emulation: the activity imports its bound task itself
            ok, value = activity(guarded, "counted", data)
        else:
            with guarded.emulation.activate():
                ok, value = activity(guarded, "counted", data)
        reason = value[0]
        assert not ok, data
        assert "ActivityInputError" in reason and "nothing was run" in reason, reason
        assert "strato-error:" in reason  # the orchestrator still reads the error's class name
    assert pipelines.RAN == {"counted": 0, "bystander": 0}
    assert not marker.exists()
    with guarded.emulation.activate():  # the bound task with its own arguments does run
        assert activity(guarded, "counted", {"x": 41}) == (True, "42")
    assert pipelines.RAN == {"counted": 1, "bystander": 0}


def test_a_whole_run_is_unaffected(guarded: Any) -> None:
    result = guarded.run({"x": 3})
    assert (result.status, result.output) == ("SUCCEEDED", {"counted": 4, "bystander": -3})
    assert pipelines.RAN == {"counted": 1, "bystander": 1}


def test_the_emulation_loads_only_the_pipelines_own_tasks(guarded: Any, tmp_path: Path) -> None:
    """Even a TaskRef that is not the pipeline's (hand-edited code, say) loads nothing in emulation."""
    for ref in (shim.TaskRef("os:system", "os", "system"), shim.TaskRef("getoutput", "subprocess", "getoutput"),
                shim.TaskRef("../counted", "tests.azure.pipelines", "counted")):
        with guarded.emulation.activate(), pytest.raises(shim.TaskFailure, match=r"UnknownTask.*nothing was run"):
            shim.run_task(ref, {"cmd": f"touch {tmp_path / 'marker'}"})
    assert not (tmp_path / "marker").exists() and pipelines.RAN["counted"] == 0


def test_offloaded_references_cannot_leave_the_payload_store(guarded: Any, tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"password": "x"}')
    for uri in (f"{SCHEME}://strato-payloads/../../../secret.json", f"{SCHEME}://../secret.json",
                f"file://{secret}", f"s3://strato-payloads/{secret}"):
        ref = {REF: uri, "bytes": 10}
        with guarded.emulation.activate():
            ok, value = activity(guarded, "counted", {"x": ref})
            assert not ok and "PayloadError" in value[0]
            ok, value = activity(guarded, "strato_resolve", {"value": ref})
            assert not ok and "PayloadError" in value[0]
    assert pipelines.RAN["counted"] == 0
    with guarded.emulation.activate():
        ok, value = activity(guarded, "strato_resolve", ["not", "an", "object"])
    assert not ok and "ActivityInputError" in value[0]


def test_results_travel_in_the_common_envelope(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, SCHEME)
    value = {"rows": list(range(50))}
    with emulating(store=store), offloading_above(64):
        ref = offload(value)
        assert ref.keys() == {REF, "bytes"} and ref[REF].startswith("az://strato-payloads/strato/payloads/")
        assert resolve({"nested": [ref, 1]}) == {"nested": [value, 1]}
        assert offload({"small": 1}) == {"small": 1}
    assert offload_threshold() == 64 * 1024


def test_a_bad_threshold_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATO_OFFLOAD_BYTES", "lots")
    with pytest.raises(PayloadError, match="STRATO_OFFLOAD_BYTES must be a number of bytes, not 'lots'"):
        offload_threshold()
