"""A replay host for generated Durable Functions apps: the real SDK, no Functions host, virtual time.

The Functions host cannot be installed here, but the Durable SDK's orchestrator is a pure function of
its history: given ``{history, instanceId, input, ...}`` it returns ``{isDone, actions, output,
error}``. :class:`ReplayHost` plays the Durable extension's part:

* it keeps each instance's history in the SDK's schema (``OrchestratorStarted``, ``ExecutionStarted``
  with ``Version``, ``TaskScheduled``/``TaskCompleted``/``TaskFailed``, ``TimerCreated``/``TimerFired``,
  ``SubOrchestrationInstanceCreated``/``Completed``/``Failed``, ``OrchestratorCompleted``) and replays
  the orchestrator after every batch of new events;
* it numbers scheduled work as the SDK does (one sequence per instance, in action order) and checks
  determinism: the actions a replay produces must start with the actions already in history, or the
  instance fails with ``NonDeterministicOrchestration``;
* activities run in-process through the app's real activity functions and the SDK's converters, on
  worker threads (at most ``concurrency`` at once), so the activities of one replay overlap as they
  do on a Functions host; each takes a virtual duration (measured in tenths of a second, or given by
  ``durations``), and timers advance a virtual clock, so nothing sleeps. The clock never passes a
  moment at which a running activity could still finish, and completions due at the same moment
  enter the history in schedule order, whatever order the threads finished in, so the history is
  deterministic;
* sub-orchestrations are instances of their own on the same clock;
* ``CallActivityWithRetry`` gets the extension's shape: after each failed attempt a timer, then the
  attempt again under a new id, and one more timer after the last failure before the SDK gives up;
* an orchestrator that raises (the SDK's ``$OutOfProcData$`` error) fails its instance instead of
  being replayed forever, and an instance left waiting for nothing is reported, not waited on.

The HTTP, timer and Event Grid starters run too (``client.py``): they get a real
``DurableOrchestrationClient`` whose transport is this host. Activities run on worker threads
(``activities.py``); the history's events and actions are in ``history.py``.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import math
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from strato.adapters.common.emulation import in_this_context
from strato.runtime import RunResult

from ..orchestration import error_from_text
from . import client
from .activities import ActivityRun, ActivityWorkers, InFlight, call_activity
from .history import (
    CALL_ACTIVITY,
    CALL_ACTIVITY_WITH_RETRY,
    CALL_SUB_ORCHESTRATOR,
    CREATE_TIMER,
    EXECUTION_COMPLETED,
    EXECUTION_FAILED,
    EXECUTION_STARTED,
    ORCHESTRATOR_COMPLETED,
    ORCHESTRATOR_STARTED,
    OUT_OF_PROC,
    REPLAY_SCHEMA,
    SUB_COMPLETED,
    SUB_CREATED,
    SUB_FAILED,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_SCHEDULED,
    TIMER_CREATED,
    TIMER_FIRED,
    EmulationError,
    Instance,
    Retry,
    describe,
    flatten,
    identity,
    missing_activity,
    orchestrator_failure,
    parse_time,
    remember_history_timestamps,
    timestamp,
)

NON_DETERMINISTIC = "NonDeterministicOrchestration"


@dataclass(order=True)
class _Due:
    time: float
    seq: int
    instance: Instance = field(compare=False)
    event: dict[str, Any] | None = field(compare=False)  # None: the instance's first episode
    retry_timer: bool = field(default=False, compare=False)



class ReplayHost:
    """Runs the orchestrators, activities and starters of one ``df.DFApp`` on a virtual clock."""

    def __init__(self, app: Any, *, start: datetime | float | None = None,
                 durations: Callable[[str, Any], float] | None = None, max_episodes: int = 200_000,
                 concurrency: int = 8):
        from azure.functions.decorators.function_app import FunctionRegister

        if not isinstance(app, FunctionRegister):
            raise EmulationError(f"not a function app: {app!r}")
        self.functions = {f.get_function_name(): f for f in app.get_functions()}  # callable once per app
        remember_history_timestamps()  # each replay re-reads the whole history: parse each stamp once
        if isinstance(start, datetime):
            start = start.timestamp()
        self.now: float = float(start) if start is not None else round(time.time(), 3)
        self.durations = durations
        self.max_episodes = max_episodes
        self.instances: dict[str, Instance] = {}
        self.activity_runs: list[ActivityRun] = []
        self._queue: list[_Due] = []
        self._seq = itertools.count()
        self._episodes = 0
        if concurrency < 1:
            raise EmulationError(f"concurrency must be at least 1, not {concurrency}")
        self.concurrency = concurrency  # worker threads for activities
        self.workers = ActivityWorkers(concurrency)
        self._never: dict[str, set[str]] = {}  # per instance: activities whose (virtual) end never comes

    # --------------------------------------------------------------------------------- functions
    def _function(self, name: str, binding: str) -> Any:
        function = self.functions.get(name)
        if function is None or function.get_trigger().get_binding_name() != binding:
            return None
        return function

    def function_names(self, binding: str) -> list[str]:
        """Names of the app's functions with this trigger type (e.g. ``activityTrigger``)."""
        return sorted(n for n, f in self.functions.items() if f.get_trigger().get_binding_name() == binding)

    # ------------------------------------------------------------------------------------ running
    def start(self, orchestrator: str, input: Any = None, instance_id: str | None = None, *,
              raw_input: str | None = None, parent: tuple[Instance, int] | None = None) -> Instance:
        """Create an instance; its first episode runs when the host next runs."""
        if self._function(orchestrator, "orchestrationTrigger") is None:
            raise EmulationError(f"the app has no orchestrator named {orchestrator!r}")
        instance_id = instance_id or uuid.uuid4().hex
        if instance_id in self.instances:
            raise EmulationError(f"an instance {instance_id!r} exists already")
        text = raw_input if raw_input is not None else (None if input is None else json.dumps(input))
        instance = Instance(instance_id, orchestrator, text, parent)
        self.instances[instance_id] = instance
        self._push(self.now, instance, None)
        return instance

    def run(self, instance: Instance | str) -> Instance:
        """Advance time and replay until ``instance`` has completed or failed."""
        if isinstance(instance, str):
            instance = self.instances[instance]
        while not instance.done:
            self._settle()
            if not self._queue:
                hung = sorted(self.workers.running(instance) | self._never.get(instance.id, set()))
                reason = (f"the orchestration waits only for activities that never return ({', '.join(hung)})"
                          if hung else "the orchestration is waiting for nothing: no activity, timer or "
                                       "sub-orchestration of it is pending")
                self._fail(instance, reason, kind="OrchestrationStuck")
                break
            self._step()
        return instance

    def run_orchestration(self, orchestrator: str, input: Any = None, instance_id: str | None = None) -> Instance:
        return self.run(self.start(orchestrator, input, instance_id))

    def result(self, instance: Instance) -> RunResult:
        """The instance as a Strato run result."""
        if instance.status == "Completed":
            return RunResult(instance.id, "SUCCEEDED", instance.output, None)
        return RunResult(instance.id, "FAILED", None, error_from_text(instance.error or "", "OrchestrationFailed"))

    def _push(self, at: float, instance: Instance, event: dict[str, Any] | None, retry_timer: bool = False,
              seq: int | None = None) -> None:
        heapq.heappush(self._queue, _Due(max(at, self.now), next(self._seq) if seq is None else seq, instance, event,
                                         retry_timer))

    def _step(self) -> None:
        """Deliver everything due at the next instant, one episode per instance."""
        first = self._queue[0].time
        self.now = max(self.now, first)
        due: list[_Due] = []
        while self._queue and self._queue[0].time <= first:
            due.append(heapq.heappop(self._queue))
        batches: dict[int, tuple[Instance, list[_Due]]] = {}
        for item in due:
            batches.setdefault(id(item.instance), (item.instance, []))[1].append(item)
        for instance, items in batches.values():
            if instance.done:
                continue
            batch, rest = self._cut(instance, items)
            for later in rest:
                self._push(later.time, later.instance, later.event, later.retry_timer, later.seq)
            self._deliver(instance, batch)

    def _cut(self, instance: Instance, items: list[_Due]) -> tuple[list[_Due], list[_Due]]:
        """The events one episode takes, and those left for the next one at the same instant.

        A retried activity's failure or retry timer only ever starts a batch: the SDK hands out the
        next id while processing it, before any new action of that episode gets one.
        """
        batch: list[_Due] = []
        for index, item in enumerate(items):
            event = item.event
            if event is not None and event.get("TimerId") in instance.cancelled:
                continue  # a cancelled timer never fires
            special = item.retry_timer or (event is not None and event["EventType"] == TASK_FAILED
                                           and event["TaskScheduledId"] in instance.retries)
            if special and batch:
                return batch, items[index:]
            batch.append(item)
        return batch, []

    def _deliver(self, instance: Instance, batch: list[_Due]) -> None:
        events: list[dict[str, Any]] = []
        extra: list[dict[str, Any]] = []
        for item in batch:
            if item.event is None:
                continue
            event = dict(item.event)
            events.append(event)
            if item.retry_timer:
                extra.extend(self._retry_timer_fired(instance, event))
            elif event["EventType"] == TASK_FAILED and event["TaskScheduledId"] in instance.retries:
                extra.extend(self._retry_failed(instance, event))
        if events or not instance.history:
            self._episode(instance, events, extra)

    # ------------------------------------------------------------------------------------ episodes
    def _episode(self, instance: Instance, new_events: list[dict[str, Any]],
                 extra: list[dict[str, Any]] | None = None) -> None:
        self._episodes += 1
        instance.episodes += 1
        if self._episodes > self.max_episodes:
            raise EmulationError(f"more than {self.max_episodes} orchestrator episodes; is an orchestration looping?")
        for event in instance.history:
            event["IsPlayed"] = True
        first = not instance.history
        stamp = timestamp(self.now)
        instance.history.append(self._event(ORCHESTRATOR_STARTED, -1, stamp))
        if first:
            parent = instance.parent[0].id if instance.parent else None
            instance.history.append(self._event(EXECUTION_STARTED, -1, stamp, Name=instance.name,
                                                Input=instance.input, Version="", ParentInstanceId=parent))
        for event in [*new_events, *(extra or [])]:  # extra: what the host did for retries meanwhile
            event["Timestamp"] = stamp
            instance.history.append(event)
        state, error = self._invoke_orchestrator(instance, first)
        actions = flatten(state.get("actions") or [])
        problem = self._replay_problem(instance, actions)
        if problem is not None:
            self._fail(instance, problem, kind=NON_DETERMINISTIC)
            return
        if error is not None:
            self._fail(instance, *orchestrator_failure(instance.name, *error))
            return
        for action in actions[len(instance.actions):]:
            if instance.done:
                return
            self._schedule(instance, action, stamp)
        self._cancel_timers(instance, actions)
        instance.history.append(self._event(ORCHESTRATOR_COMPLETED, -1, stamp))
        if state.get("isDone"):
            self._complete(instance, state.get("output"))

    def _invoke_orchestrator(self, instance: Instance,
                             first: bool) -> tuple[dict[str, Any], tuple[str, str] | None]:
        """The SDK's orchestrator state, and ``(error, stack)`` when the orchestrator raised."""
        from azure.functions import meta
        from azure.functions.durable_functions import OrchestrationTriggerConverter

        function = self._function(instance.name, "orchestrationTrigger")
        context = {
            "history": instance.history, "instanceId": instance.id, "isReplaying": not first,
            "parentInstanceId": instance.parent[0].id if instance.parent else None,
            "upperSchemaVersion": REPLAY_SCHEMA, "input": instance.input,
        }
        body = OrchestrationTriggerConverter.decode(meta.Datum(json.dumps(context), "json"), trigger_metadata=None)
        try:
            return json.loads(function.get_user_function()(body)), None
        except Exception as exc:  # the SDK raises with its state after an orchestrator error
            text = str(exc)
            stack = "".join(traceback.format_exception(exc.__cause__ or exc))
            if OUT_OF_PROC in text:
                message, _, data = text.partition(OUT_OF_PROC)
                state = json.loads(data)
                return state, (state.get("error") or message.strip(), stack)
            return {"isDone": False, "actions": []}, (f"{type(exc).__name__}: {text}", stack)

    def _replay_problem(self, instance: Instance, actions: list[dict[str, Any]]) -> str | None:
        """Replayed actions must match history: same kind, function, input, timer and instance id."""
        for index, known in enumerate(instance.actions):
            if index >= len(actions):
                return (f"orchestrator {instance.name!r} is non-deterministic: on replay it no longer schedules "
                        f"{describe(known)} (action {index + 1} in its history)")
            if identity(actions[index]) != identity(known):
                return (f"orchestrator {instance.name!r} is non-deterministic: action {index + 1} is now "
                        f"{describe(actions[index])}, but its history has {describe(known)}")
        return None

    def _schedule(self, instance: Instance, action: dict[str, Any], stamp: str) -> None:
        kind = action.get("actionType")
        task_id = instance.next_id
        instance.next_id += 1
        instance.actions.append(action)
        instance.action_ids.append(task_id)
        if kind in (CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY):
            name, data = action["functionName"], action.get("input")
            instance.history.append(self._event(TASK_SCHEDULED, task_id, stamp, Name=name, Input=data))
            if kind == CALL_ACTIVITY_WITH_RETRY:
                options = action.get("retryOptions") or {}
                instance.retries[task_id] = Retry(name, data, options.get("firstRetryIntervalInMilliseconds", 0)
                                                   / 1000, int(options.get("maxNumberOfAttempts", 1)))
            self._run_activity(instance, task_id, name, data)
        elif kind == CALL_SUB_ORCHESTRATOR:
            child_id = action.get("instanceId") or f"{instance.id}:{task_id}"
            instance.history.append(self._event(SUB_CREATED, task_id, stamp, Name=action["functionName"],
                                                InstanceId=child_id, Input=action.get("input")))
            try:
                self.start(action["functionName"], instance_id=child_id, raw_input=action.get("input"),
                           parent=(instance, task_id))
            except EmulationError as exc:
                self._push(self.now, instance, self._event(SUB_FAILED, -1, stamp, TaskScheduledId=task_id,
                                                           Reason=str(exc), Details=None))
        elif kind == CREATE_TIMER:
            fire_at = action["fireAt"]
            instance.history.append(self._event(TIMER_CREATED, task_id, stamp, FireAt=fire_at))
            if not action.get("isCanceled"):
                self._push(parse_time(fire_at), instance, self._event(TIMER_FIRED, -1, stamp, TimerId=task_id,
                                                                       FireAt=fire_at))
        else:
            self._fail(instance, f"action type {kind} ({describe(action)}) is not supported by the replay host")

    def _cancel_timers(self, instance: Instance, actions: list[dict[str, Any]]) -> None:
        """A timer the orchestrator cancelled (a timeout race it lost) never fires."""
        for action, task_id in zip(actions, instance.action_ids, strict=False):
            if action.get("actionType") == CREATE_TIMER and action.get("isCanceled"):
                instance.cancelled.add(task_id)

    def _complete(self, instance: Instance, output: Any) -> None:
        instance.status, instance.output = "Completed", output
        instance.history.append(self._event(EXECUTION_COMPLETED, -1, timestamp(self.now), OrchestrationStatus=1,
                                            Result=json.dumps(output)))
        if instance.parent:
            parent, task_id = instance.parent
            self._push(self.now, parent, self._event(SUB_COMPLETED, -1, "", TaskScheduledId=task_id,
                                                     Result=json.dumps(output)))

    def _fail(self, instance: Instance, reason: str, details: str | None = None, *, kind: str | None = None) -> None:
        """Fail the instance with the extension's ``Reason``/``Details``; its parent gets the same text.

        ``kind`` names a problem the host detected (non-determinism, an orchestration waiting for
        nothing): its text carries a Strato error marker so it reads like a task error.
        """
        if instance.done:
            return
        if kind is not None:
            marker = f" strato-error:{json.dumps({'error': kind, 'cause': reason})}"
            # DurableTask.Core's wording for a replay that no longer matches its history
            reason = (f"Non-Deterministic workflow detected: {reason}{marker}" if kind == NON_DETERMINISTIC
                      else f"{kind}: {reason}{marker}")
        instance.status, instance.error = "Failed", reason
        instance.history.append(self._event(EXECUTION_FAILED, -1, timestamp(self.now), OrchestrationStatus=3,
                                            Reason=reason, Details=details))
        if instance.parent:
            parent, task_id = instance.parent
            self._push(self.now, parent, self._event(SUB_FAILED, -1, "", TaskScheduledId=task_id, Reason=reason,
                                                     Details=details))

    @staticmethod
    def _event(kind: int, event_id: int, stamp: str, **fields: Any) -> dict[str, Any]:
        return {"EventType": kind, "EventId": event_id, "IsPlayed": False, "Timestamp": stamp, **fields}

    # ---------------------------------------------------------------------------------- activities
    def _run_activity(self, instance: Instance, task_id: int, name: str, data: str | None) -> None:
        """Hand the activity to a worker; its completion arrives after its (virtual) duration."""
        from azure.functions import meta
        from azure.functions.durable_functions import ActivityTriggerConverter

        seq = next(self._seq)
        function = self._function(name, "activityTrigger")
        if function is None:  # the extension refuses to schedule it: the orchestrator fails
            self._fail(instance, *orchestrator_failure(instance.name, missing_activity(
                name, self.function_names("activityTrigger"))))
            return
        decoded = ActivityTriggerConverter.decode(meta.Datum(data if data is not None else "null", "json"),
                                                  trigger_metadata=None)
        declared = None if self.durations is None else float(self.durations(name, decoded))
        run = ActivityRun(instance.id, task_id, name, decoded, self.now)
        self.activity_runs.append(run)
        # each run gets its own copy of the caller's context: the emulation's loader and store travel along
        call = in_this_context(functools.partial(call_activity, function, name, decoded))
        self.workers.submit(InFlight(run, instance, seq, call, declared))

    def _settle(self) -> None:
        """Wait for the activities that may finish before the next due event, and push their completions."""
        self.workers.settle(lambda: self._queue[0].time if self._queue else math.inf, self._finish)

    def _finish(self, job: InFlight) -> None:
        """Record a finished activity and push its completion at its virtual end (never, if that is infinite)."""
        ok, value = job.outcome or (False, ("no outcome", None))
        # measured in whole tenths of a second: quick activities take no virtual time, so their
        # completions arrive together (one replay, as a busy host batches them) while a slow one
        # still loses a race against its timeout
        duration = job.declared if job.declared is not None else int(job.took * 10) / 10
        ended = job.run.started + max(0.0, duration)
        job.run.ended, job.run.ok = ended, ok
        if ended == math.inf:  # it returned in reality, but its declared duration never ends
            self._never.setdefault(job.instance.id, set()).add(job.run.name)
            return
        if ok:
            event = self._event(TASK_COMPLETED, -1, "", TaskScheduledId=job.run.task_id, Result=value)
        else:
            reason, details = value
            event = self._event(TASK_FAILED, -1, "", TaskScheduledId=job.run.task_id, Reason=reason,
                                Details=details)
        self._push(ended, job.instance, event, seq=job.seq)

    def _retry_failed(self, instance: Instance, event: dict[str, Any]) -> list[dict[str, Any]]:
        """A retried activity failed: the SDK now waits on a timer with the next id (even after the last try)."""
        retry = instance.retries.pop(event["TaskScheduledId"])
        timer_id = instance.next_id
        instance.next_id += 1
        fire = timestamp(self.now + retry.interval)
        instance.retries[timer_id] = retry
        self._push(self.now + retry.interval, instance, self._event(TIMER_FIRED, -1, "", TimerId=timer_id,
                                                                    FireAt=fire), retry_timer=True)
        return [self._event(TIMER_CREATED, timer_id, "", FireAt=fire)]

    def _retry_timer_fired(self, instance: Instance, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Reschedule the attempt under a new id, unless the attempts are spent (the SDK then fails it)."""
        retry = instance.retries.pop(event["TimerId"])
        if retry.attempts >= retry.max_attempts:
            return []
        retry.attempts += 1
        task_id = instance.next_id
        instance.next_id += 1
        instance.retries[task_id] = retry
        self._run_activity(instance, task_id, retry.name, retry.input)
        return [self._event(TASK_SCHEDULED, task_id, "", Name=retry.name, Input=retry.input)]

    # ------------------------------------------------------------------------------------ starters
    def client_binding(self) -> dict[str, Any]:
        """The JSON the extension hands a ``durable_client_input`` binding (URLs are placeholders)."""
        return client.client_binding()

    def trigger(self, function_name: str, trigger_input: Any) -> Any:
        """Invoke a starter (HTTP, timer or Event Grid function) with a constructed trigger input.

        ``trigger_input`` is the object the worker would pass (``func.HttpRequest``, or the JSON the
        host sends for a timer or an Event Grid event, decoded here with the SDK's converters).
        Returns what the function returned; runs it starts are then driven with :meth:`run`.
        """
        return client.trigger(self, function_name, trigger_input)
