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

The HTTP, timer and Event Grid starters run too: they get a real ``DurableOrchestrationClient``
whose transport is this host.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import heapq
import importlib.util
import inspect
import itertools
import json
import math
import os
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from strato.errors import StratoError
from strato.ir import PipelineIR
from strato.runtime import RunResult

from .orchestration import error_from_text

# history event types (azure.durable_functions.models.history.HistoryEventType)
EXECUTION_STARTED, EXECUTION_COMPLETED, EXECUTION_FAILED = 0, 1, 2
TASK_SCHEDULED, TASK_COMPLETED, TASK_FAILED = 4, 5, 6
SUB_CREATED, SUB_COMPLETED, SUB_FAILED = 7, 8, 9
TIMER_CREATED, TIMER_FIRED = 10, 11
ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED = 12, 13
# action types (azure.durable_functions.models.actions.ActionType)
CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY, CALL_SUB_ORCHESTRATOR, CREATE_TIMER = 0, 1, 2, 5
WHEN_ANY, WHEN_ALL = 11, 12
OUT_OF_PROC = "$OutOfProcData$:"
REPLAY_SCHEMA = 1  # V2: one flat action list with compound WhenAny/WhenAll actions


class EmulationError(StratoError):
    """The emulated app could not run (not a failure of the pipeline)."""


@dataclass
class ActivityRun:
    """One activity execution, for tests and diagnostics: when it ran on the virtual clock.

    ``ended`` and ``ok`` stay None while it runs (a task that never returns keeps them None).
    """

    instance: str
    task_id: int
    name: str
    input: Any
    started: float
    ended: float | None = None
    ok: bool | None = None


Outcome = tuple[bool, Any]  # (True, encoded result) or (False, (reason, details))


@dataclass(eq=False)
class _InFlight:
    """An activity handed to a worker thread; its completion is pushed once it finished."""

    run: ActivityRun
    instance: Instance
    seq: int  # reserved when scheduled: same-moment completions are delivered in schedule order
    call: Callable[[], Outcome]
    declared: float | None  # the ``durations`` answer; None: measured
    began: float | None = None  # perf_counter when a worker picked it up
    took: float = 0.0
    outcome: Outcome | None = None

    def must_wait(self, horizon: float) -> float | None:
        """Real seconds to wait for it before the clock may reach ``horizon`` (None: until it ends; 0: not)."""
        if self.declared is not None:
            end = self.run.started + max(0.0, self.declared)
            return None if end < math.inf and end <= horizon else 0.0
        # a measured duration is rounded down to tenths: it may still end at or before the horizon
        # until it has run 0.1 s longer than the gap
        if horizon == math.inf:
            return None
        elapsed = 0.0 if self.began is None else time.perf_counter() - self.began
        return max(0.0, horizon - self.run.started + 0.1 - elapsed)


@dataclass
class _Retry:
    """A ``CallActivityWithRetry`` in flight: the host reschedules it like the extension does."""

    name: str
    input: str | None
    interval: float
    max_attempts: int
    attempts: int = 1


@dataclass(eq=False)
class Instance:
    """One orchestration instance and its history."""

    id: str
    name: str
    input: str | None
    parent: tuple[Instance, int] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)  # atomic actions already in history
    action_ids: list[int] = field(default_factory=list)
    next_id: int = 0
    status: str = "Running"  # Running | Completed | Failed
    output: Any = None
    error: str | None = None
    retries: dict[int, _Retry] = field(default_factory=dict)
    cancelled: set[int] = field(default_factory=set)
    episodes: int = 0

    @property
    def done(self) -> bool:
        return self.status != "Running"


@dataclass(order=True)
class _Due:
    time: float
    seq: int
    instance: Instance = field(compare=False)
    event: dict[str, Any] | None = field(compare=False)  # None: the instance's first episode
    retry_timer: bool = field(default=False, compare=False)


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def load_app(path: Path) -> Any:
    """Import a generated ``function_app.py`` under a private module name and return its ``app``."""
    name = f"strato_azure_app_{uuid.uuid4().hex[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise EmulationError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module.app


class ReplayHost:
    """Runs the orchestrators, activities and starters of one ``df.DFApp`` on a virtual clock."""

    def __init__(self, app: Any, *, start: datetime | float | None = None,
                 durations: Callable[[str, Any], float] | None = None, max_episodes: int = 200_000,
                 concurrency: int = 8):
        from azure.functions.decorators.function_app import FunctionRegister

        if not isinstance(app, FunctionRegister):
            raise EmulationError(f"not a function app: {app!r}")
        self.functions = {f.get_function_name(): f for f in app.get_functions()}  # callable once per app
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
        self._inflight: list[_InFlight] = []
        self._never: dict[str, set[str]] = {}  # per instance: activities whose (virtual) end never comes
        self._backlog: deque[_InFlight] = deque()
        self._workers = 0
        self._cond = threading.Condition()

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
                hung = sorted({job.run.name for job in self._inflight if job.instance is instance}
                              | self._never.get(instance.id, set()))
                reason = (f"the orchestration waits only for activities that never return ({', '.join(hung)})"
                          if hung else "the orchestration is waiting for nothing: no activity, timer or "
                                       "sub-orchestration of it is pending")
                self._fail(instance, reason, "OrchestrationStuck")
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
        stamp = _timestamp(self.now)
        instance.history.append(self._event(ORCHESTRATOR_STARTED, -1, stamp))
        if first:
            parent = instance.parent[0].id if instance.parent else None
            instance.history.append(self._event(EXECUTION_STARTED, -1, stamp, Name=instance.name,
                                                Input=instance.input, Version="", ParentInstanceId=parent))
        for event in [*new_events, *(extra or [])]:  # extra: what the host did for retries meanwhile
            event["Timestamp"] = stamp
            instance.history.append(event)
        state, error = self._invoke_orchestrator(instance, first)
        actions = _flatten(state.get("actions") or [])
        problem = self._replay_problem(instance, actions)
        if problem is not None:
            self._fail(instance, problem, "NonDeterministicOrchestration")
            return
        if error is not None:
            self._fail(instance, error)
            return
        for action in actions[len(instance.actions):]:
            if instance.done:
                return
            self._schedule(instance, action, stamp)
        self._cancel_timers(instance, actions)
        instance.history.append(self._event(ORCHESTRATOR_COMPLETED, -1, stamp))
        if state.get("isDone"):
            self._complete(instance, state.get("output"))

    def _invoke_orchestrator(self, instance: Instance, first: bool) -> tuple[dict[str, Any], str | None]:
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
            if OUT_OF_PROC in text:
                message, _, data = text.partition(OUT_OF_PROC)
                state = json.loads(data)
                return state, state.get("error") or message.strip()
            return {"isDone": False, "actions": []}, f"{type(exc).__name__}: {text}"

    def _replay_problem(self, instance: Instance, actions: list[dict[str, Any]]) -> str | None:
        """Replayed actions must match history: same kind, function, input, timer and instance id."""
        for index, known in enumerate(instance.actions):
            if index >= len(actions):
                return (f"orchestrator {instance.name!r} is non-deterministic: on replay it no longer schedules "
                        f"{_describe(known)} (action {index + 1} in its history)")
            if _identity(actions[index]) != _identity(known):
                return (f"orchestrator {instance.name!r} is non-deterministic: action {index + 1} is now "
                        f"{_describe(actions[index])}, but its history has {_describe(known)}")
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
                instance.retries[task_id] = _Retry(name, data, options.get("firstRetryIntervalInMilliseconds", 0)
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
                self._push(_parse_time(fire_at), instance, self._event(TIMER_FIRED, -1, stamp, TimerId=task_id,
                                                                       FireAt=fire_at))
        else:
            self._fail(instance, f"action type {kind} ({_describe(action)}) is not supported by the replay host")

    def _cancel_timers(self, instance: Instance, actions: list[dict[str, Any]]) -> None:
        """A timer the orchestrator cancelled (a timeout race it lost) never fires."""
        for action, task_id in zip(actions, instance.action_ids, strict=False):
            if action.get("actionType") == CREATE_TIMER and action.get("isCanceled"):
                instance.cancelled.add(task_id)

    def _complete(self, instance: Instance, output: Any) -> None:
        instance.status, instance.output = "Completed", output
        instance.history.append(self._event(EXECUTION_COMPLETED, -1, _timestamp(self.now), OrchestrationStatus=1,
                                            Result=json.dumps(output)))
        if instance.parent:
            parent, task_id = instance.parent
            self._push(self.now, parent, self._event(SUB_COMPLETED, -1, "", TaskScheduledId=task_id,
                                                     Result=json.dumps(output)))

    def _fail(self, instance: Instance, reason: str, kind: str | None = None) -> None:
        if instance.done:
            return
        if kind is not None:  # a host-detected problem: named like a task error so it reads the same
            reason = f"{kind}: {reason} strato-error:{json.dumps({'error': kind, 'cause': reason})}"
        instance.status, instance.error = "Failed", reason
        instance.history.append(self._event(EXECUTION_FAILED, -1, _timestamp(self.now), OrchestrationStatus=3,
                                            Reason=reason))
        if instance.parent:
            parent, task_id = instance.parent
            self._push(self.now, parent, self._event(SUB_FAILED, -1, "", TaskScheduledId=task_id, Reason=reason,
                                                     Details=None))

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
        if function is None:
            self.activity_runs.append(ActivityRun(instance.id, task_id, name, None, self.now, self.now, False))
            reason = f"The function '{name}' doesn't exist, is disabled, or is not an activity function."
            self._push(self.now, instance, self._event(TASK_FAILED, -1, "", TaskScheduledId=task_id, Reason=reason,
                                                       Details=None), seq=seq)
            return
        decoded = ActivityTriggerConverter.decode(meta.Datum(data if data is not None else "null", "json"),
                                                  trigger_metadata=None)
        declared = None if self.durations is None else float(self.durations(name, decoded))
        run = ActivityRun(instance.id, task_id, name, decoded, self.now)
        self.activity_runs.append(run)
        # each run gets its own copy of the caller's context: the shim's configuration travels along
        call = functools.partial(contextvars.copy_context().run, _call_activity, function, name, decoded)
        job = _InFlight(run, instance, seq, call, declared)
        with self._cond:
            self._inflight.append(job)
            self._backlog.append(job)
            if self._workers < self.concurrency:  # one more worker per job, up to the bound
                self._workers += 1
                # daemon: a task that never returns must not keep the process from exiting
                threading.Thread(target=self._work, name=f"strato-activity-{self._workers}", daemon=True).start()

    def _work(self) -> None:
        """A worker thread: run queued activities until none is left."""
        while True:
            with self._cond:
                if not self._backlog:
                    self._workers -= 1
                    return
                job = self._backlog.popleft()
                job.began = time.perf_counter()
            try:
                outcome = job.call()
            except BaseException as exc:  # reported as the activity's failure, never lost
                outcome = False, (f"Activity function '{job.run.name}' failed: {type(exc).__name__}: {exc}",
                                  traceback.format_exc())
            took = time.perf_counter() - job.began
            with self._cond:
                job.took, job.outcome = took, outcome
                self._cond.notify_all()

    def _settle(self) -> None:
        """Wait for the activities that may finish before the next due event, and push their completions.

        Virtual time must not pass a running activity's possible end: a declared duration is waited
        for once the clock would reach it; a measured one until it has run longer than the gap to the
        next event. Activities of finished instances are not waited for (nobody reads their result).
        """
        with self._cond:
            while True:
                for job in [job for job in self._inflight if job.outcome is not None]:
                    self._inflight.remove(job)
                    self._finish(job)
                horizon = self._queue[0].time if self._queue else math.inf
                waits = [job.must_wait(horizon) for job in self._inflight if not job.instance.done]
                waits = [w for w in waits if w != 0.0]
                if not waits:
                    return
                bounded = [w for w in waits if w is not None]
                self._cond.wait(min(bounded) if bounded else None)

    def _finish(self, job: _InFlight) -> None:
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
        fire = _timestamp(self.now + retry.interval)
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

    def _client(self) -> Any:
        from azure.durable_functions import DurableOrchestrationClient

        client = DurableOrchestrationClient(json.dumps(self.client_binding()))
        client._post_async_request = self._client_post  # the transport is this host, not HTTP
        return client

    async def _client_post(self, url: str, data: Any = None, *_: Any) -> list[Any]:
        path = url.split("/durabletask/", 1)[-1].split("?", 1)[0]
        parts = path.split("/")
        if parts[0] != "orchestrators" or len(parts) not in (2, 3):
            return [501, {"Message": f"the replay host does not implement POST {path}"}]
        try:
            instance = self.start(parts[1], instance_id=parts[2] if len(parts) == 3 else None, raw_input=data)
        except EmulationError as exc:
            return [400, {"ExceptionMessage": str(exc)}]
        return [202, {"id": instance.id}]

    def trigger(self, function_name: str, trigger_input: Any) -> Any:
        """Invoke a starter (HTTP, timer or Event Grid function) with a constructed trigger input.

        ``trigger_input`` is the object the worker would pass (``func.HttpRequest``, or the JSON the
        host sends for a timer or an Event Grid event, decoded here with the SDK's converters).
        Returns what the function returned; runs it starts are then driven with :meth:`run`.
        """
        from azure.functions import meta
        from azure.functions.eventgrid import EventGridEventInConverter
        from azure.functions.timer import TimerRequestConverter

        function = self.functions.get(function_name)
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
                kwargs[item.name] = self._client()
        user = function.get_user_function()
        code = getattr(user, "client_function", user)  # the SDK's middleware only builds the client
        result = code(**kwargs)
        return asyncio.run(result) if inspect.isawaitable(result) else result


# ---------------------------------------------------------------------------------------- activities
def _call_activity(function: Any, name: str, decoded: Any) -> Outcome:
    """Run an activity function (on a worker thread) and encode its result as the worker would."""
    from azure.functions.durable_functions import ActivityTriggerConverter

    try:
        result = function.get_user_function()(**{function.get_trigger().name: decoded})
        if inspect.isawaitable(result):
            result = asyncio.run(result)
        return True, ActivityTriggerConverter.encode(result, expected_type=None).value
    except Exception as exc:
        return False, (f"Activity function '{name}' failed: {type(exc).__name__}: {exc}", traceback.format_exc())


# ------------------------------------------------------------------------------------------ actions
def _flatten(groups: list[Any]) -> list[dict[str, Any]]:
    """Atomic actions in the order the SDK numbers them (compound WhenAny/WhenAll opened)."""
    out: list[dict[str, Any]] = []

    def walk(action: dict[str, Any]) -> None:
        if action.get("actionType") in (WHEN_ANY, WHEN_ALL):
            for child in action.get("compoundActions") or []:
                walk(child)
        else:
            out.append(action)

    for group in groups:
        for action in group if isinstance(group, list) else [group]:
            walk(action)
    return out


def _identity(action: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in action.items() if k != "isCanceled"}


def _describe(action: dict[str, Any]) -> str:
    kind = action.get("actionType")
    if kind in (CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY):
        return f"activity {action.get('functionName')!r} with input {action.get('input')}"
    if kind == CALL_SUB_ORCHESTRATOR:
        return f"sub-orchestration {action.get('functionName')!r} ({action.get('instanceId')})"
    if kind == CREATE_TIMER:
        return f"a timer at {action.get('fireAt')}"
    return f"an action of type {kind}"


# ------------------------------------------------------------------------------------ emulate
@dataclass
class Emulation:
    """A compiled app loaded into a replay host, with the shim pointed at local code and storage."""

    host: ReplayHost
    orchestrator: str  # the root pipeline's orchestrator function
    shim: Any  # shim.ShimConfig

    def run(self, params: dict[str, Any], run_id: str | None = None) -> RunResult:
        """Run the root pipeline with ``params``; the run id is the orchestration's instance id."""
        from strato.runtime.runner import new_run_id

        with self.activate():
            instance = self.host.run_orchestration(self.orchestrator, params, run_id or new_run_id())
        return self.host.result(instance)

    def activate(self) -> Any:
        """Activities see this emulation's loader and blob store while the block runs."""
        from .shim import configured

        return configured(self.shim)


def emulation(pipeline: PipelineIR, resolver: Callable[[Any], Callable[..., Any]], work_dir: Path, *,
              durations: Callable[[str, Any], float] | None = None, offload_bytes: int | None = None,
              start: datetime | float | None = None, settings: Mapping[str, str] | None = None,
              concurrency: int = 8) -> Emulation:
    """Compile ``pipeline`` into ``work_dir``, import the app and put it in a replay host.

    Task code comes from ``resolver`` (as on the local runner). ``settings`` are the app settings a
    deployed app would have (``AzureWebJobsStorage`` or ``STRATO_BLOB_CONNECTION``,
    ``STRATO_BLOB_CONTAINER``, ``STRATO_OFFLOAD_BYTES``): the shim reads them exactly as it reads the
    environment on Azure, so pointing them at Azurite exercises real Blob Storage. Without them
    offloaded results go to ``work_dir/blobs``. ``durations(activity, input)`` gives activities'
    virtual run times (default: measured); ``concurrency`` bounds the activities running at once.
    """
    from .compiler import compile_app, root_function_name
    from .shim import LocalBlobStore, ShimConfig, import_function

    work_dir = Path(work_dir)
    compile_app(pipeline, work_dir)
    app = load_app(work_dir / pipeline.name / "function_app.py")
    specs = {}
    for p in (pipeline, *pipeline.subpipelines.values()):
        for spec in p.tasks.values():
            specs.setdefault((spec.module, spec.qualname), spec)

    def loader(task: Any) -> Callable[..., Any]:
        spec = specs.get((task.module, task.qualname))
        return resolver(spec) if spec is not None else import_function(task)

    host = ReplayHost(app, start=start, durations=durations, concurrency=concurrency)
    store = LocalBlobStore(work_dir / "blobs") if settings is None else None  # None: from the settings
    shim = ShimConfig(loader=loader, store=store, offload_bytes=offload_bytes,
                      settings=None if settings is None else dict(settings))
    return Emulation(host, root_function_name(pipeline), shim)


def emulate(pipeline: PipelineIR, params: dict[str, Any], resolver: Callable[[Any], Callable[..., Any]], *,
            backend: str | None = None, endpoint: str | None = None, work_dir: Path) -> RunResult:
    """The adapter's ``emulate``: compile into ``work_dir``, run in the replay host, return the result."""
    if backend not in (None, "replay"):
        raise StratoError(f"unknown Azure emulator backend {backend!r}; the Azure target has one: replay (the "
                          "Durable Functions SDK driven in-process)")
    settings = None
    if endpoint:  # a storage account for offloaded results, e.g. Azurite: the app's AzureWebJobsStorage
        if "=" not in endpoint:
            raise StratoError("for azure, --endpoint is a storage connection string (e.g. 'UseDevelopmentStorage=true' "
                              "for Azurite on its default port); offloaded results then go to its blob service")
        settings = {"AzureWebJobsStorage": endpoint,
                    **{k: os.environ[k] for k in ("STRATO_BLOB_CONTAINER", "STRATO_OFFLOAD_BYTES") if k in os.environ}}
    return emulation(pipeline, resolver, work_dir, settings=settings).run(params)
