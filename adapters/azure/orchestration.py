"""Deterministic helpers the generated orchestrators import.

Everything here runs inside a Durable Functions orchestrator, so it must replay identically: no I/O,
no wall clock (``context.current_utc_datetime`` only), no unseeded randomness. The helpers are
plain generators used with ``yield from``; the Durable SDK sees only the tasks they yield.

* :func:`run_dag` runs a pipeline's nodes as cooperative *fibers*: each node starts as soon as its
  own dependencies have finished (no level barriers), and the orchestrator waits on all running
  work at once with ``context.task_any``. A node may fan out with :class:`Parallel`.
* :func:`activity` / :func:`activity_with_timeout` call an activity and turn a Durable failure back
  into a :class:`TaskError` carrying the task's exception class name (see ``shim.py``).
* :func:`retry_timer` is the backoff of ``strato.ir.RetrySpec`` (``delay_for``), with jitter
  seeded from the run id, the call's key and the attempt, as the local runner does.
* :func:`run_parts` / :func:`run_part` run a large pipeline as sub-orchestrations of at most
  :data:`PART_NODES` nodes each, and :func:`map_items` / :func:`map_chunk` run a large map as
  sub-orchestrations of at most :data:`MAP_CHUNK` items each, so that no orchestration's history
  grows with the pipeline (see "Bounded histories" below).

Bounded histories. Durable Functions replays an orchestrator from its whole history every time it
wakes, so an orchestration that schedules n calls one after the other costs O(n^2), and the Azure
Storage provider loads the whole history into memory each time. The Durable docs' guidance is to
"reduce the length and size of orchestration histories" by "breaking up large orchestrations into
multiple sub-orchestrations" (https://learn.microsoft.com/azure/azure-functions/durable/durable-functions-azure-storage-provider,
"History table"; replay cost: https://learn.microsoft.com/azure/azure-functions/durable/durable-functions-perf-and-scale).
The docs give no history size as a number; the only one is the hard cap ``maxOrchestrationActions``
(100,000 actions per orchestration by default, host.json,
https://learn.microsoft.com/azure/azure-functions/durable/durable-functions-host-json). Strato's
bound is therefore its own: **at most 100 nodes per orchestration and at most 100 items of a map
per orchestration**, which keeps a history to a few hundred events (about 4 per task call: scheduled,
completed and the two episode markers around each batch; more with retries and timeouts), three
orders of magnitude under the cap, and each replay cheap.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from strato import ir
from strato.adapters.common.envelopes import is_ref, sub_ref
from strato.ir import RetrySpec, address

from .naming import MAP_ORCHESTRATOR, RESOLVE_ACTIVITY
from .payloads import contains_ref
from .shim import CONTEXT_KEY, ERROR_MARKER

Step = Generator[Any, Any, Any]
Results = dict[str, Any]
Caller = Callable[[Any, "Run", str, dict[str, Any]], Step]  # a generated ``call_<task>``
RUN_KEY = "strato.run"  # marks a sub-pipeline's input envelope; never a parameter name (not an identifier)
PART_NODES = 100  # at most this many nodes run in one orchestration (larger pipelines are split in parts)
MAP_CHUNK = 100  # at most this many map items run in one orchestration (larger maps are split in chunks)


class TaskError(Exception):
    """A failed task, named by its exception class name as on every backend.

    ``str()`` carries the machine-readable marker, so a parent orchestration (or the host) that only
    sees the failure's text recovers the same ``{"error", "cause"}``.
    """

    def __init__(self, name: str, cause: str):
        self.name, self.cause = name, cause
        super().__init__(f"{name}: {cause} {ERROR_MARKER}{json.dumps({'error': name, 'cause': cause})}")

    @property
    def error(self) -> dict[str, str]:
        return {"error": self.name, "cause": self.cause}

    @classmethod
    def from_failure(cls, exc: BaseException | str) -> TaskError:
        """The task error inside a Durable failure (an activity's or a sub-orchestration's)."""
        if isinstance(exc, TaskError):
            return exc
        error = error_from_text(str(exc))
        return cls(error["error"], error["cause"])


def error_from_text(text: str, fallback: str = "TaskFailed") -> dict[str, str]:
    """The ``{"error", "cause"}`` in a Durable failure's text.

    A shim or orchestrator embeds it after :data:`ERROR_MARKER`. Failures without one (an activity
    that raised before its task ran, an orchestrator's own error) are read from the extension's
    wording: ``Activity function 'f' failed:  ValueError: message`` names the Python exception class,
    ``Orchestrator function 'o' failed: ...`` wraps the orchestrator's error, and the SDK appends
    ``" \n " + Details`` to both (see ``replay/history.py`` for where each part comes from).
    """
    at = text.find(ERROR_MARKER)
    if at >= 0:
        try:
            found, _ = json.JSONDecoder().raw_decode(text, at + len(ERROR_MARKER))
        except ValueError:
            found = None
        if isinstance(found, dict) and isinstance(found.get("error"), str) and isinstance(found.get("cause"), str):
            return {"error": found["error"], "cause": found["cause"]}
    reason = text.rsplit(_DETAILS_SEPARATOR, 1)[0] if _DETAILS_SEPARATOR in text else text
    wrapped = _ORCHESTRATOR_FAILED.match(reason)
    if wrapped:
        return error_from_text(wrapped.group("error"), fallback)
    activity = _ACTIVITY_FAILED.match(reason)
    if activity:
        return {"error": activity.group("type").rpartition(".")[2], "cause": activity.group("message").strip()}
    return {"error": fallback, "cause": reason.strip()}


_DETAILS_SEPARATOR = " \n "  # the SDK raises Exception(f"{Reason} \n {Details}") for a failed task
_ORCHESTRATOR_FAILED = re.compile(r"^Orchestrator function '[^']*' failed: (?P<error>.*)$", re.DOTALL)
_ACTIVITY_FAILED = re.compile(r"^Activity function '[^']*' failed: +(?P<type>[A-Za-z_][\w.]*): (?P<message>.*)$",
                              re.DOTALL)


# ------------------------------------------------------------------------------------- the run
@dataclass(frozen=True)
class Run:
    """What every call in one orchestration needs: parameters, the run id and the key prefix.

    The root pipeline's input is its parameters. A sub-pipeline gets ``{"params": ...,
    "strato.run": {"id": root run id, "prefix": "sub/"}}`` so keys (and so jitter) match the
    local runner's: ``node``, ``node[3]``, ``node#catch``, ``sub/node``.
    """

    params: dict[str, Any]
    id: str
    prefix: str = ""
    given: Results | None = None  # a part of a large pipeline: the results of other parts it reads
    chunk: dict[str, Any] | None = None  # a chunk of a large map: its items and how to call each

    @classmethod
    def start(cls, context: Any, defaults: dict[str, Any]) -> Run:
        given = context.get_input() or {}
        if isinstance(given, dict) and isinstance(given.get(RUN_KEY), dict):
            run = given[RUN_KEY]
            return cls({**defaults, **(given.get("params") or {})}, str(run["id"]), str(run.get("prefix", "")),
                       run.get("given"), run.get("chunk"))
        return cls({**defaults, **given}, context.instance_id)

    @property
    def is_root(self) -> bool:
        return not self.prefix

    def call_context(self, key: str, pipeline: str, attempt: int = 1) -> dict[str, Any]:
        """What an activity needs for ``strato.context()``: the run, its unit key and the attempt."""
        return {"run": self.id, "pipeline": pipeline, "key": f"{self.prefix}{key}", "attempt": attempt}

    def envelope(self, **extra: Any) -> dict[str, Any]:
        """The input of a part or chunk of this run: same parameters, run id and key prefix."""
        return {"params": self.params, RUN_KEY: {"id": self.id, "prefix": self.prefix, **extra}}


# -------------------------------------------------------------------------------------- values
def pick(value: Any, path: Sequence[str | int]) -> Any:
    """``strato.ir.address``, except that addressing into an offloaded value stays a reference."""
    for index, key in enumerate(path):
        if is_ref(value):
            return sub_ref(value, list(path[index:]))
        value = address(value, (key,))
    return value


def inline(context: Any, value: Any) -> Step:
    """The value itself: offloaded parts are read back by the built-in resolve activity.

    Conditions, fan-out lists and the root output need real values; anything else passes
    references along untouched, so large results never enter the orchestration history.
    """
    if not contains_ref(value):
        return value
    try:
        return (yield context.call_activity(RESOLVE_ACTIVITY, {"value": value}))
    except Exception as exc:  # a Durable failure: recover the shim's error
        raise TaskError.from_failure(exc) from None


def fan_out_items(context: Any, value: Any) -> Step:
    """The list a map fans out over. An offloaded list stays in Blob Storage: only its length is read,
    and each item becomes a reference to its element, resolved by the item's own activity."""
    if is_ref(value):
        try:
            shape = yield context.call_activity(RESOLVE_ACTIVITY, {"value": value, "length": True})
        except Exception as exc:
            raise TaskError.from_failure(exc) from None
        if isinstance(shape, int) and not isinstance(shape, bool):
            return [sub_ref(value, [index]) for index in range(shape)]
    return (yield from inline(context, value))


def finish(context: Any, run: Run, output: Any) -> Step:
    """The pipeline's output: the root run's is plain JSON; a sub-pipeline may hand back references."""
    if run.is_root:
        return (yield from inline(context, output))
    return output


# ------------------------------------------------------------------------------------- calling
def activity(context: Any, name: str, args: dict[str, Any], run_context: dict[str, Any] | None = None) -> Step:
    """Call an activity once; a failure comes back as the task's own error."""
    if run_context is not None:
        args = {**args, CONTEXT_KEY: run_context}
    try:
        return (yield context.call_activity(name, args))
    except Exception as exc:
        raise TaskError.from_failure(exc) from None


def activity_with_timeout(context: Any, name: str, args: dict[str, Any], *, task: str, seconds: float,
                          run_context: dict[str, Any] | None = None) -> Step:
    """Race the activity against a durable timer; losing is ``TaskTimeout`` (the late result is ignored)."""
    if run_context is not None:
        args = {**args, CONTEXT_KEY: run_context}
    call = context.call_activity(name, args)
    timer = context.create_timer(context.current_utc_datetime + timedelta(seconds=seconds))
    winner = yield context.task_any([call, timer])
    if winner is timer:
        raise TaskError("TaskTimeout", f"task {task!r} did not finish within its timeout of {seconds:g}s")
    if not timer.is_completed:
        timer.cancel()
    if _failed(call):
        raise TaskError.from_failure(call.result)
    return call.result


def run_hook(context: Any, run: Run, caller: Caller, kind: str, pipeline: str, param: str, args: dict[str, Any],
             failure: BaseException | None) -> Step:
    """The run's ``on_failure`` (``failure`` is what ended the run) or ``on_success`` hook, as the unit
    ``#<kind>``. The hook's own failure is ignored: it stays in the history, the run's outcome is kept."""
    from strato.hooks import FAILED, SUCCEEDED, outcome

    error = None if failure is None else TaskError.from_failure(failure).error
    status = SUCCEEDED if failure is None else FAILED
    try:
        yield from caller(context, run, ir.hook_key(kind), {**args, param: outcome(run.id, pipeline, status, error,
                                                                                   "azure")})
    except TaskError:
        pass


def sub_pipeline(context: Any, run: Run, name: str, key: str, params: dict[str, Any]) -> Step:
    """Run a sub-pipeline as a sub-orchestration with a deterministic instance id."""
    envelope = {"params": params, RUN_KEY: {"id": run.id, "prefix": f"{run.prefix}{key}/"}}
    try:
        return (yield context.call_sub_orchestrator(name, envelope, instance_id=f"{context.instance_id}:{key}"))
    except Exception as exc:
        raise TaskError.from_failure(exc) from None


def retry_delay(run: Run, key: str, attempt: int, retry: RetrySpec) -> float:
    """Seconds before retry ``attempt`` (1-based): ``Retry.delay_for``, with seeded full jitter.

    The jitter seed is ``"{run id}/{key}/{attempt}"``, the local runner's, so the same run id gives
    the same delays there and here, and every replay computes the same timer.
    """
    delay = retry.delay_for(attempt)
    if retry.jitter:
        delay = random.Random(f"{run.id}/{run.prefix}{key}/{attempt}").uniform(0, delay)
    return delay


def retry_timer(context: Any, run: Run, key: str, attempt: int, retry: RetrySpec) -> Any:
    """The durable timer that waits before the next attempt."""
    return context.create_timer(context.current_utc_datetime + timedelta(seconds=retry_delay(run, key, attempt,
                                                                                              retry)))


def wait_timer(context: Any, seconds: float) -> Any:
    """A ``wait`` node: a durable timer (the host advances its clock; nothing sleeps)."""
    return context.create_timer(context.current_utc_datetime + timedelta(seconds=seconds))


def _failed(task: Any) -> bool:
    return getattr(getattr(task, "state", None), "name", "") == "FAILED"


# ------------------------------------------------------------------------------------- fan-out
@dataclass(frozen=True)
class Parallel:
    """Yielded by a node: run these steps concurrently, at most ``limit`` at once; results in order."""

    steps: Sequence[Callable[[], Step]]
    limit: int | None = None


def fan_out(node: str, items: Any, item: Callable[[str, Any], Step], max_concurrency: int | None = None,
            first: int = 0) -> Parallel:
    """A map node: ``item(key, element)`` per element, keys ``node[0]``, ``node[1]``, ...

    ``first`` is the index of ``items[0]`` in the whole map (a chunk of a large map).
    """
    _check_items(node, items)
    return Parallel([_bind(item, f"{node}[{first + i}]", value) for i, value in enumerate(items)], max_concurrency)


def _check_items(node: str, items: Any) -> None:
    if not isinstance(items, list):
        raise TaskError("TypeError", ir.not_a_list(node, items))


def map_items(context: Any, run: Run, node: str, items: Any, caller: Caller, item_param: str,
              args: dict[str, Any], max_concurrency: int | None = None, first: int = 0) -> Step:
    """A map node: ``caller`` once per element with ``{item_param: element, **args}``; results in order.

    Up to :data:`MAP_CHUNK` items run in this orchestration. A larger map runs as sub-orchestrations
    of :data:`MAP_ORCHESTRATOR`, each given a contiguous slice of at most ``MAP_CHUNK ** k`` items
    (the smallest ``k`` that needs at most ``MAP_CHUNK`` of them), which split again until each runs
    at most ``MAP_CHUNK`` items itself. Keys (``node[i]``) and so retry jitter stay the local
    runner's, and ``max_concurrency`` still bounds the items running at once across all chunks.
    """
    _check_items(node, items)

    def one(key: str, item: Any) -> Step:
        return caller(context, run, key, {item_param: item, **args})

    if len(items) <= MAP_CHUNK:
        return (yield fan_out(node, items, one, max_concurrency, first))
    size = MAP_CHUNK
    while size * MAP_CHUNK < len(items):
        size *= MAP_CHUNK
    limit, inner = None, max_concurrency
    if max_concurrency is not None:  # chunks at once x items at once per chunk stays within the bound
        limit, inner = max(1, max_concurrency // size), min(max_concurrency, size)
    name = getattr(caller, "__name__", str(caller))
    chunks = []
    for start in range(0, len(items), size):
        chunk = {"node": node, "caller": name, "item_param": item_param, "args": args,
                 "items": items[start:start + size], "first": first + start, "max_concurrency": inner}
        chunks.append(_bind(functools.partial(_sub_orchestration, context, MAP_ORCHESTRATOR),
                            f"{context.instance_id}:{node}.{first + start}", run.envelope(chunk=chunk)))
    parts = yield Parallel(chunks, limit)
    return [value for part in parts for value in part]


def map_chunk(context: Any, callers: dict[str, Caller]) -> Step:
    """The body of :data:`MAP_ORCHESTRATOR`: one chunk of a large map (see :func:`map_items`)."""
    run = Run.start(context, {})
    chunk = run.chunk or {}
    caller = callers.get(str(chunk.get("caller")))
    if caller is None:
        raise TaskError("TypeError", f"no task caller named {chunk.get('caller')!r} in this app")
    items = map_items(context, run, chunk["node"], chunk["items"], caller, chunk["item_param"],
                      chunk.get("args") or {}, chunk.get("max_concurrency"), int(chunk.get("first", 0)))
    results = yield from run_dag(context, {"items": (lambda _: items, ())})  # fan-outs need the scheduler
    return results["items"]


def _sub_orchestration(context: Any, function: str, instance_id: str, envelope: dict[str, Any]) -> Step:
    try:
        return (yield context.call_sub_orchestrator(function, envelope, instance_id=instance_id))
    except Exception as exc:
        raise TaskError.from_failure(exc) from None


def _bind(item: Callable[[str, Any], Step], key: str, value: Any) -> Callable[[], Step]:
    return lambda: item(key, value)


# ------------------------------------------------------------------------------ large pipelines
def run_parts(context: Any, run: Run, parts: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]],
              exports: Sequence[str] | None = None) -> Step:
    """Run a large pipeline's parts as sub-orchestrations; return every node result they export.

    ``parts`` maps a part's name to its orchestrator function, the node results it reads from
    outside itself and the sibling parts those come from; a part starts once those siblings are
    done (a reading of other inputs comes from this orchestration's own ``run.given``). A group of
    parts (a part whose orchestrator runs parts itself) returns only ``exports``.
    """
    results: Results = dict(run.given or {})

    def part(name: str, function: str, needs: tuple[str, ...]) -> Callable[[Results], Step]:
        def step(_: Results) -> Step:
            given = {node: results[node] for node in needs}
            found = yield from _sub_orchestration(context, function, f"{context.instance_id}:part.{name}",
                                                  run.envelope(given=given))
            results.update(found)
            return None
        return step

    yield from run_dag(context, {name: (part(name, function, needs), after)
                                 for name, (function, needs, after) in parts.items()})
    return results if exports is None else {node: results[node] for node in exports}


def run_part(context: Any, run: Run, nodes: dict[str, tuple[Callable[[Results], Step], tuple[str, ...]]],
             exports: Sequence[str]) -> Step:
    """One part of a large pipeline: its nodes, over the results it was given; returns ``exports``."""
    results = yield from run_dag(context, nodes, run.given)
    return {node: results[node] for node in exports}


# ----------------------------------------------------------------------------------- scheduler
@dataclass(eq=False)
class _Fiber:
    gen: Step
    on_done: Callable[[Any], None]
    on_error: Callable[[BaseException], None] | None = None
    join: _Join | None = None


@dataclass(eq=False)
class _Join:
    parent: _Fiber
    steps: Sequence[Callable[[], Step]]
    limit: int
    results: list[Any] = field(default_factory=list)
    started: int = 0
    finished: int = 0
    children: list[_Fiber] = field(default_factory=list)
    failed: bool = False


class _Scheduler:
    """Cooperative fibers over Durable tasks: every waiting fiber's task goes into one ``task_any``.

    Deterministic by construction: fibers advance in a fixed order and the SDK resolves tasks in
    history order, so a replay makes the same decisions and schedules the same actions.
    """

    def __init__(self, context: Any):
        self.context = context
        self.waiting: list[tuple[Any, _Fiber]] = []
        self.runnable: deque[tuple[_Fiber, bool, Any]] = deque()

    def spawn(self, gen: Step, on_done: Callable[[Any], None], on_error: Callable[[BaseException], None] | None = None,
              join: _Join | None = None) -> _Fiber:
        fiber = _Fiber(gen, on_done, on_error, join)
        self.runnable.append((fiber, True, None))
        return fiber

    def run(self) -> Step:
        while True:
            while self.runnable:
                self._advance(*self.runnable.popleft())
            if not self.waiting:
                return None
            tasks = [task for task, _ in self.waiting]
            if len(tasks) == 1:
                done = tasks[0]
                try:
                    value, ok = (yield done), True
                except Exception as exc:
                    value, ok = exc, False
            else:
                done = yield self.context.task_any(tasks)
                ok = not _failed(done)
                value = done.result
            index = next(i for i, (task, _) in enumerate(self.waiting) if task is done)
            _, fiber = self.waiting.pop(index)
            self.runnable.append((fiber, ok, value))

    def _advance(self, fiber: _Fiber, ok: bool, value: Any) -> None:
        try:
            yielded = fiber.gen.send(value) if ok else fiber.gen.throw(value)
        except StopIteration as stop:
            fiber.on_done(stop.value)
            return
        except Exception as exc:
            if fiber.on_error is None:
                raise
            fiber.on_error(exc)
            return
        if isinstance(yielded, Parallel):
            self._start_join(fiber, yielded)
        else:
            self.waiting.append((yielded, fiber))

    # fan-out: children run as fibers; the parent resumes with their results in order
    def _start_join(self, parent: _Fiber, parallel: Parallel) -> None:
        count = len(parallel.steps)
        join = _Join(parent, parallel.steps, max(1, parallel.limit or count or 1), [None] * count)
        if count == 0:
            self.runnable.append((parent, True, []))
            return
        self._fill(join)

    def _fill(self, join: _Join) -> None:
        while not join.failed and join.started - join.finished < join.limit and join.started < len(join.steps):
            index = join.started
            join.started += 1
            child = self.spawn(join.steps[index](), functools.partial(self._child_done, join, index),
                               functools.partial(self._child_failed, join), join)
            join.children.append(child)

    def _child_done(self, join: _Join, index: int, value: Any) -> None:
        if join.failed:
            return
        join.results[index] = value
        join.finished += 1
        if join.finished == len(join.steps):
            self.runnable.append((join.parent, True, join.results))
        else:
            self._fill(join)

    def _child_failed(self, join: _Join, exc: BaseException) -> None:
        if join.failed:
            return
        join.failed = True
        for child in join.children:  # the first failure decides; the siblings' work is abandoned
            self.waiting = [(task, fiber) for task, fiber in self.waiting if fiber is not child]
            child.gen.close()
        self.runnable.append((join.parent, False, exc))


def run_dag(context: Any, nodes: dict[str, tuple[Callable[[Results], Step], tuple[str, ...]]],
            given: Results | None = None) -> Step:
    """Run every node once its own dependencies are done; return ``{node: result}``.

    ``nodes`` maps a node id to its step and the ids it depends on (data, ``wait_for`` and what its
    guard reads), as ``strato.graph.dependencies`` gives them. ``given`` holds results computed
    elsewhere (by other parts of a large pipeline): a dependency on one of them is already met.
    """
    scheduler = _Scheduler(context)
    results: Results = dict(given or {})
    remaining = {name: {dep for dep in deps if dep in nodes} for name, (_, deps) in nodes.items()}
    users: dict[str, list[str]] = {name: [] for name in nodes}
    for name, deps in remaining.items():
        for dep in deps:
            users[dep].append(name)

    def start(name: str) -> None:
        scheduler.spawn(nodes[name][0](results), lambda value: finish_node(name, value))

    def finish_node(name: str, value: Any) -> None:
        results[name] = value
        for user in users[name]:
            remaining[user].discard(name)
            if not remaining[user]:
                start(user)

    for name in nodes:
        if not remaining[name]:
            start(name)
    yield from scheduler.run()
    return results
