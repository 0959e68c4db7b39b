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
"""

from __future__ import annotations

import functools
import json
import random
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from strato.adapters.common.envelopes import is_ref, sub_ref
from strato.ir import RetrySpec, address

from .naming import RESOLVE_ACTIVITY
from .payloads import contains_ref
from .shim import ERROR_MARKER

Step = Generator[Any, Any, Any]
Results = dict[str, Any]
RUN_KEY = "strato.run"  # marks a sub-pipeline's input envelope; never a parameter name (not an identifier)


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
    """Find the ``{"error", "cause"}`` a shim or orchestrator embedded in a failure message."""
    at = text.find(ERROR_MARKER)
    if at >= 0:
        try:
            found, _ = json.JSONDecoder().raw_decode(text, at + len(ERROR_MARKER))
        except ValueError:
            found = None
        if isinstance(found, dict) and isinstance(found.get("error"), str) and isinstance(found.get("cause"), str):
            return {"error": found["error"], "cause": found["cause"]}
    return {"error": fallback, "cause": text.strip()}


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

    @classmethod
    def start(cls, context: Any, defaults: dict[str, Any]) -> Run:
        given = context.get_input() or {}
        if isinstance(given, dict) and isinstance(given.get(RUN_KEY), dict):
            run = given[RUN_KEY]
            return cls({**defaults, **(given.get("params") or {})}, str(run["id"]), str(run.get("prefix", "")))
        return cls({**defaults, **given}, context.instance_id)

    @property
    def is_root(self) -> bool:
        return not self.prefix


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
def activity(context: Any, name: str, args: dict[str, Any]) -> Step:
    """Call an activity once; a failure comes back as the task's own error."""
    try:
        return (yield context.call_activity(name, args))
    except Exception as exc:
        raise TaskError.from_failure(exc) from None


def activity_with_timeout(context: Any, name: str, args: dict[str, Any], *, task: str, seconds: float) -> Step:
    """Race the activity against a durable timer; losing is ``TaskTimeout`` (the late result is ignored)."""
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


def fan_out(node: str, items: Any, item: Callable[[str, Any], Step], max_concurrency: int | None = None) -> Parallel:
    """A map node: ``item(key, element)`` per element, keys ``node[0]``, ``node[1]``, ..."""
    if not isinstance(items, list):
        raise TaskError("TypeError", f"map {node!r} needs a list to fan out over, got {type(items).__name__}: "
                                     f"{items!r}"[:500])
    return Parallel([_bind(item, f"{node}[{i}]", value) for i, value in enumerate(items)], max_concurrency)


def _bind(item: Callable[[str, Any], Step], key: str, value: Any) -> Callable[[], Step]:
    return lambda: item(key, value)


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


def run_dag(context: Any, nodes: dict[str, tuple[Callable[[Results], Step], tuple[str, ...]]]) -> Step:
    """Run every node once its own dependencies are done; return ``{node: result}``.

    ``nodes`` maps a node id to its step and the ids it depends on (data, ``wait_for`` and what its
    guard reads), as ``strato.graph.dependencies`` gives them.
    """
    scheduler = _Scheduler(context)
    results: Results = {}
    remaining = {name: set(deps) for name, (_, deps) in nodes.items()}
    users: dict[str, list[str]] = {name: [] for name in nodes}
    for name, (_, deps) in nodes.items():
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
