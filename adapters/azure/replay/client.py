"""The starters' side of the replay host: a real ``DurableOrchestrationClient`` whose transport is the host.

The HTTP, timer and Event Grid functions of a generated app get their ``durable_client_input``
binding as the extension would hand it over (:func:`client_binding`); the client's POSTs to start an
orchestration become :meth:`ReplayHost.start` calls instead of HTTP requests.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import TYPE_CHECKING, Any

from ..triggers import NOW
from .history import EmulationError

if TYPE_CHECKING:
    from .host import ReplayHost


def client_binding() -> dict[str, Any]:
    """The JSON the extension hands a ``durable_client_input`` binding (URLs are placeholders)."""
    base = "http://localhost:7071/runtime/webhooks/durabletask"
    query = "taskHub=StratoEmulator&connection=Storage&code=emulated"
    management = {key: f"{base}/instances/INSTANCEID{suffix}?{query}" for key, suffix in (
        ("statusQueryGetUri", ""), ("sendEventPostUri", "/raiseEvent/{eventName}"),
        ("terminatePostUri", "/terminate?reason={text}"), ("rewindPostUri", "/rewind?reason={text}"),
        ("purgeHistoryDeleteUri", ""), ("restartPostUri", "/restart"), ("suspendPostUri", "/suspend"),
        ("resumePostUri", "/resume"))}
    return {"taskHubName": "StratoEmulator", "creationUrls": {}, "managementUrls": {"id": "INSTANCEID",
            **management}, "baseUrl": base, "requiredQueryStringParameters": query,
            "rpcBaseUrl": "http://127.0.0.1:17071/durabletask/"}


def durable_client(host: ReplayHost) -> Any:
    """A ``DurableOrchestrationClient`` that starts orchestrations in ``host``."""
    from azure.durable_functions import DurableOrchestrationClient

    async def post(url: str, data: Any = None, *_: Any) -> list[Any]:
        path = url.split("/durabletask/", 1)[-1].split("?", 1)[0]
        parts = path.split("/")
        if parts[0] != "orchestrators" or len(parts) not in (2, 3):
            return [501, {"Message": f"the replay host does not implement POST {path}"}]
        try:
            instance = host.start(parts[1], instance_id=parts[2] if len(parts) == 3 else None, raw_input=data)
        except EmulationError as exc:
            return [400, {"ExceptionMessage": str(exc)}]
        return [202, {"id": instance.id}]

    client = DurableOrchestrationClient(json.dumps(client_binding()))
    client._post_async_request = post  # the transport is the host, not HTTP
    return client


async def _awaited(value: Any) -> Any:
    return await value


def trigger(host: ReplayHost, function_name: str, trigger_input: Any) -> Any:
    """Invoke a starter of ``host``'s app with a constructed trigger input (see :meth:`ReplayHost.trigger`)."""
    from azure.functions import meta
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.timer import TimerRequestConverter

    function = host.functions.get(function_name)
    if function is None:
        raise EmulationError(f"the app has no function named {function_name!r}")
    binding = function.get_trigger().get_binding_name()
    if binding == "timerTrigger" and not hasattr(trigger_input, "past_due"):
        trigger_input = TimerRequestConverter.decode(meta.Datum(json.dumps(trigger_input), "json"),
                                                     trigger_metadata=None)
    elif binding == "eventGridTrigger" and isinstance(trigger_input, dict):
        trigger_input = EventGridEventInConverter.decode(meta.Datum(json.dumps(trigger_input), "json"),
                                                         trigger_metadata=None)
    kwargs = {function.get_trigger().name: trigger_input}
    for item in function.get_bindings():
        if item.get_binding_name() == "durableClient":
            kwargs[item.name] = durable_client(host)
    user = function.get_user_function()
    code = getattr(user, "client_function", user)  # the SDK's middleware only builds the client
    token = NOW.set(lambda: host.now)  # a timer's schedule check reads the host's virtual clock
    try:
        result = code(**kwargs)
        return asyncio.run(_awaited(result)) if inspect.isawaitable(result) else result
    finally:
        NOW.reset(token)
