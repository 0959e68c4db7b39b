"""The embedded local runner: executes a pipeline's IR on this machine.

One event loop owns all state. Task attempts run on a bounded pool of daemon threads and report
back through a queue; timers (retry delays, waits, timeouts) live in a heap read through an
injectable clock. Every state change is written to the run store and committed *before* the work
it enables is started, so a run killed at any moment resumes without redoing finished work.

Keys name every unit of work in a run: ``node``, ``node[3]`` (map item), ``node#catch`` (catch
handler), ``sub/node`` (a node inside sub-pipeline call ``sub``), ``#on_failure`` / ``#on_success``
(the run's hook, called once everything else has stopped).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import os
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .. import ir, lineage
from ..checks import collecting
from ..graph import dependencies, guard_chain
from ..ir import error_matches
from ..run_context import RunContext, enter, leave, resolve_defaults, split_key
from . import logs
from .clock import TICK, SystemClock
from .invoke import error_of, invoke
from .results import FAILED, RUNNING, SKIPPED, SUCCEEDED, RunResult, new_run_id
from .store import PoolSlots, RunRecord, RunStore
from .tasks import Resolver, resolver_for


class RunHooks:
    """Lifecycle hooks (progress displays, metrics). Override what you need; all are no-ops."""

    def run_started(self, run_id: str, pipeline: str) -> None: ...
    def calls_planned(self, count: int) -> None: ...
    def call_finished(self, key: str, task: str, status: str) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...

    def task_output(self, key: str, attempt: int, stream: str, line: str) -> None:
        """A line a task wrote (secrets redacted), as it is written; called on the task's thread."""


class _Workers:
    """A bounded pool of daemon threads: a task that hangs past its timeout never blocks exit.

    The pool grows only when tasks wait: it starts with one thread, and the runner adds one whenever
    queued tasks have waited :data:`GROW_AFTER` with no thread taking any (:meth:`grow_if_stuck`), up to
    ``size``. Tasks that block (I/O, sleeps, subprocesses) soon get a thread each; tasks that keep
    the GIL busy are served by as few threads as keep up, because every extra runnable thread makes
    the runner's own thread wait its turn for the GIL.
    """

    def __init__(self, size: int, target: Callable[..., None]):
        self.size, self.target = size, target  # every job is a tuple of arguments for target
        self.jobs: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.threads = self.idle = 0
        self.lock = threading.Lock()
        self.taken_at = 0.0  # monotonic time of the last take (or of submitting into an empty queue)

    def submit_all(self, jobs: list[tuple[Any, ...]]) -> None:
        if self.jobs.empty():
            self.taken_at = time.monotonic()  # nobody was waiting before these
        put = self.jobs.put
        for job in jobs:
            put(job)
        if self.threads == 0:
            self._spawn()

    def waiting(self) -> bool:
        """Queued tasks outnumber idle threads, and the pool may still grow."""
        return self.threads < self.size and self.jobs.qsize() > self.idle

    def grow_if_stuck(self, now: float) -> None:
        if now - self.taken_at >= GROW_AFTER and self.waiting():
            self._spawn()
            self.taken_at = now  # the new thread gets its chance before another is added

    def _spawn(self) -> None:
        with self.lock:
            self.threads += 1
            self.idle += 1  # counted idle from now: it takes a job as soon as it starts
        threading.Thread(target=self._serve, daemon=True, name=f"strato-worker-{self.threads}").start()

    def _serve(self) -> None:
        get, lock, monotonic, target = self.jobs.get, self.lock, time.monotonic, self.target
        while True:
            args = get()
            self.taken_at = monotonic()
            with lock:
                self.idle -= 1
            if args is None:
                return
            target(*args)
            with lock:
                self.idle += 1

    def close(self) -> None:
        for _ in range(self.threads):
            self.jobs.put(None)


# Seconds queued tasks may wait with no thread taking one before the pool gets another thread.
GROW_AFTER = 0.002
_LOG = object()  # first item of an event saying an attempt's log has lines to store
# Seconds a finished attempt's writes may wait for the next commit when they enable no other work yet:
# the longest a crash can make a resumed run redo finished work (at-least-once either way).
COMMIT_WINDOW = 0.005


class _Call:
    """One task invocation with its retries (a task node, a map item or a catch handler)."""

    __slots__ = ("args", "attempt", "checks", "fn", "handler", "key", "log", "on_failure", "on_success",
                 "pipeline", "pool_wait", "spec", "started", "token", "tries")

    def __init__(self, pipeline: ir.PipelineIR, key: str, spec: ir.TaskSpec, fn: Callable[..., Any], args: dict,
                 on_success: Callable[[Any], None], on_failure: Callable[[dict], None], handler: bool = False,
                 earlier_attempts: int = 0):
        self.pipeline, self.key, self.spec, self.fn, self.args = pipeline, key, spec, fn, args
        self.on_success, self.on_failure, self.handler = on_success, on_failure, handler
        self.attempt = earlier_attempts  # numbering continues across resumes, so history is kept
        self.tries, self.token = 0, 0  # the retry budget counts this execution's attempts
        self.log: logs.AttemptLog | None = None
        self.checks: list[dict] = []  # the outcomes of the last attempt's data-quality checks
        self.pool_wait = 0.0  # seconds before asking its pool for a slot again (doubling, at most 1 s)
        self.started = 0.0  # when the current attempt started


class _Scope:
    """One execution of a pipeline graph: the root run, or one sub-pipeline call."""

    def __init__(self, pipeline: ir.PipelineIR, prefix: str, params: dict, deps: dict[str, tuple[str, ...]],
                 on_done: Callable[[Any], None], on_fail: Callable[[dict], None]):
        self.pipeline, self.prefix, self.params, self.deps = pipeline, prefix, params, deps
        self.on_done, self.on_fail = on_done, on_fail
        self.results: dict[str, Any] = {}
        self.remaining = {n: len(d) for n, d in deps.items()}
        self.users: dict[str, list[str]] = {n: [] for n in deps}
        for n, ds in deps.items():
            for d in ds:
                self.users[d].append(n)
        self.left = len(deps)


class Execution:
    def __init__(self, root: ir.PipelineIR, params: dict, resolver: Resolver, store: RunStore, run_id: str,
                 clock: Any, workers: int, hooks: RunHooks, completed: dict[str, Any] | None = None,
                 started: dict[str, float] | None = None, attempts: dict[str, int] | None = None,
                 scheduled_at: float | None = None, run_started: float | None = None):
        self.root, self.params, self.resolver, self.store, self.run_id = root, params, resolver, store, run_id
        self.scheduled_at = None if scheduled_at is None else datetime.fromtimestamp(scheduled_at, UTC)
        self.run_started = datetime.fromtimestamp(clock.now() if run_started is None else run_started, UTC)
        self.clock, self.hooks = clock, hooks
        self.completed = completed or {}
        self.started = started or {}
        self.earlier_attempts = attempts or {}
        self.workers = _Workers(workers, self._work)
        self.events: queue.SimpleQueue[Any] = queue.SimpleQueue()  # no Condition: cheaper puts and gets
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = itertools.count()
        self.live: dict[_Call, int] = {}  # attempts running: each call's current attempt token
        self.to_submit: list[tuple[_Call, int]] = []
        self.result: RunResult | None = None
        self.ending: tuple[str, Any, dict | None] | None = None  # the run's outcome while its hook runs
        self.committed_at = time.monotonic()
        self._deps: dict[int, dict[str, tuple[str, ...]]] = {}
        self._fns: dict[str, Callable[..., Any]] = {}
        self.lease_lost: threading.Event | None = None
        self.pools = PoolSlots(store)
        self._pooled = any(spec.pool for p in (root, *root.subpipelines.values()) for spec in p.tasks.values())
        self.log_limit, self.log_level = logs.DEFAULT_LIMIT, logs.level_from_env()
        overridden = type(hooks).task_output is not RunHooks.task_output
        self.echo: logs.Echo | None = hooks.task_output if overridden else None
        # OpenLineage's configuration is read once per run: looking it up (the environment, two files)
        # at every attempt cost more than the rest of the runner's work on a no-op task
        self.lineage = lineage.configured()

    # ----------------------------------------------------------------------------------- loop
    def run(self) -> RunResult:
        logs.install(self.log_level)
        try:
            return self._run()
        finally:
            logs.uninstall()

    def _run(self) -> RunResult:
        self.hooks.run_started(self.run_id, self.root.name)
        if self.lineage:
            lineage.run_event("START", self.root, self.run_id, self.clock.now())
        try:
            self._start_scope(self.root, "", self.params, self._succeed, self._fail)
            while self.result is None:
                self._flush()
                if self.lease_lost is not None and self.lease_lost.is_set():
                    from .store import StoreError

                    raise StoreError(f"run {self.run_id} was taken over by another process (no heartbeat for "
                                     "too long); this process stopped working on it")
                if self.result is not None:
                    break
                now = self.clock.now()
                if self.timers and self.timers[0][0] <= now:
                    while self.timers and self.timers[0][0] <= now and self.result is None:
                        heapq.heappop(self.timers)[2]()
                    continue
                deadline = self.timers[0][0] if self.timers else None
                if deadline is None and not self.live:
                    raise RuntimeError("the runner has nothing to wait for but the run is not finished")
                event = self._next_event(deadline)
                while event is not None and self.result is None:
                    if event is TICK:
                        pass
                    elif event[0] is _LOG:
                        self._store_log(event[1])
                    else:
                        self._on_event(*event)
                    try:
                        event = self.events.get_nowait()
                    except queue.Empty:
                        event = None
        except BaseException as exc:  # interrupted, or the lease was lost: the run stops unfinished
            if self.lineage:
                lineage.run_event("ABORT", self.root, self.run_id, self.clock.now(), error_of(exc))
            raise
        finally:
            self.workers.close()
            for call in list(self.live):  # what unfinished attempts wrote so far is kept too
                if call.log is not None:
                    self._store_log(call.log)
            self.store.commit()
        if self.lineage:
            lineage.run_event("COMPLETE" if self.result.status == SUCCEEDED else "FAIL", self.root, self.run_id,
                              self.clock.now(), self.result.error)
        self.hooks.run_finished(self.result)
        return self.result

    def _store_log(self, log: logs.AttemptLog) -> None:
        if not log.pending:  # most attempts write nothing
            return
        lines = log.drain()
        if lines:
            self.store.append_logs(self.run_id, log.key, log.attempt, lines)

    def _flush(self) -> None:
        pending, self.to_submit = self.to_submit, []
        if pending or time.monotonic() - self.committed_at >= COMMIT_WINDOW:
            self._commit()  # durable before anything it enables starts
        if pending:
            self.workers.submit_all(pending)

    def _commit(self) -> None:
        self.store.commit()
        self.committed_at = time.monotonic()

    def _next_event(self, deadline: float | None) -> Any:
        """The next event. Writes that enabled nothing yet (a finished map item before its map ends) wait
        at most :data:`COMMIT_WINDOW` for the commit that comes with the next work, so a busy run commits
        a batch of them at once; the wait for an event never holds them longer."""
        if self.workers.waiting():  # tasks wait for a thread: look again within GROW_AFTER
            self.workers.grow_if_stuck(time.monotonic())
            if self.workers.waiting():
                try:
                    return self.events.get(timeout=GROW_AFTER)
                except queue.Empty:
                    return TICK
        if self.store.in_transaction:
            remaining = self.committed_at + COMMIT_WINDOW - time.monotonic()
            if remaining > 0:
                try:
                    return self.events.get(timeout=remaining)
                except queue.Empty:
                    pass
            self._commit()
            return TICK  # the loop looks at its timers and work again
        return self.clock.wait(self.events, deadline, bool(self.live))

    def _work(self, call: _Call, token: int) -> None:
        log = call.log
        assert log is not None
        current = logs.set_current(log)
        outcomes: list[dict] = []
        entered = enter(functools.partial(self._context, call.key, call.spec.name, call.attempt))
        try:
            if call.spec.checks:
                with collecting() as outcomes:
                    result = invoke(call.spec.name, call.fn, call.args, call.spec.secrets)
            else:  # nothing to collect: no context manager on the hot path
                result = invoke(call.spec.name, call.fn, call.args, call.spec.secrets, checks=False)
        except BaseException as exc:
            call.checks = outcomes
            _record_checks(log, outcomes)
            trace = log.redact(logs.user_traceback(exc))
            log.add("traceback", trace)
            log.close()
            self.events.put((call, token, False, error_of(exc), trace))
        else:
            call.checks = outcomes
            _record_checks(log, outcomes)
            log.close()
            self.events.put((call, token, True, result, None))
        finally:
            leave(entered)
            logs.reset_current(current)

    def _context(self, key: str, task: str, attempt: int) -> RunContext:
        """What ``strato.context()`` returns in an attempt, built when the task first asks."""
        task_id, index = split_key(key)
        return RunContext(self.run_id, self.root.name, task_id, task, attempt, index, "local", self.scheduled_at)

    def _timer(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (self.clock.now() + delay, next(self.seq), fn))

    def _succeed(self, output: Any) -> None:
        self._ended(SUCCEEDED, output, None)

    def _fail(self, error: dict) -> None:
        self._ended(FAILED, None, error)

    def _ended(self, status: str, output: Any, error: dict | None) -> None:
        """The root pipeline is done: call its hook for ``status``, if any, then finish the run.

        Nothing else starts once the run has ended (attempts already running finish and are recorded);
        the hook's own failure is recorded on its unit and never changes the run's outcome.
        """
        if self.result is not None or self.ending is not None:
            return
        kind = "on_success" if status == SUCCEEDED else "on_failure"
        hook = self.root.hooks.get(kind)
        if hook is None:
            self._finish(status, output, error)
            return
        from ..hooks import outcome

        self.ending = (status, output, error)
        spec, key = self.root.tasks[hook.task], ir.hook_key(kind)
        args = {name: ir.resolve_value(value, {}, self.params) for name, value in hook.args.items()}
        args[hook.param] = outcome(self.run_id, self.root.name, status, error, "local")
        self.store.start_unit(self.run_id, key, "hook", spec.name, self.clock.now())
        self.hooks.calls_planned(1)

        def hook_done(result: Any) -> None:
            self.store.finish_unit(self.run_id, key, SUCCEEDED, result, None, self.clock.now(), "hook", spec.name)
            self._finish(status, output, error)

        def hook_failed(hook_error: dict) -> None:
            self.store.finish_unit(self.run_id, key, FAILED, None, hook_error, self.clock.now(), "hook", spec.name)
            self._finish(status, output, error)

        self._call(self.root, key, spec, args, hook_done, hook_failed, handler=True)

    def _finish(self, status: str, output: Any, error: dict | None) -> None:
        if self.result is None:
            if self._pooled:
                self.pools.give_back(self.run_id)  # attempts still running hold no slot once the run is over
            self.store.finish_run(self.run_id, status, output, error, self.clock.now())
            self.result = RunResult(self.run_id, status, output, error)

    # ---------------------------------------------------------------------------------- scopes
    def _deps_of(self, pipeline: ir.PipelineIR) -> dict[str, tuple[str, ...]]:
        deps = self._deps.get(id(pipeline))
        if deps is None:
            deps = self._deps[id(pipeline)] = dependencies(pipeline)
        return deps

    def _start_scope(self, pipeline: ir.PipelineIR, prefix: str, params: dict, on_done: Callable[[Any], None],
                     on_fail: Callable[[dict], None]) -> None:
        scope = _Scope(pipeline, prefix, params, self._deps_of(pipeline), on_done, on_fail)
        if scope.left == 0:
            on_done(ir.resolve_value(pipeline.output, scope.results, params))
            return
        # collect the roots first: readying one may complete it at once (resumed) and ready its users
        for node in [n for n in pipeline.nodes if scope.remaining[n.id] == 0]:
            self._ready(scope, node)

    def _ready(self, scope: _Scope, node: ir.Node) -> None:
        if self.result is not None:
            return
        key = scope.prefix + node.id
        if key in self.completed:
            self._complete(scope, node, self.completed[key], record=False)
            return
        if not self._guard_holds(scope, node.guard):
            self.store.finish_unit(self.run_id, key, SKIPPED, None, None, self.clock.now(), node.kind,
                                   getattr(node, "task", None))
            self._complete(scope, node, None, record=False)
            return
        now = self.clock.now()
        if isinstance(node, ir.TaskNode):
            spec = scope.pipeline.tasks[node.task]
            args = {k: ir.resolve_value(v, scope.results, scope.params) for k, v in node.args.items()}
            self.store.start_unit(self.run_id, key, "task", spec.name, now)
            self.hooks.calls_planned(1)
            self._call(scope.pipeline, key, spec, args, lambda r: self._complete(scope, node, r),
                       lambda e: self._node_failed(scope, key, e))
        elif isinstance(node, ir.MapNode):
            self._start_map(scope, node, key)
        elif isinstance(node, ir.WaitNode):
            self.store.start_unit(self.run_id, key, "wait", None, now)
            self.hooks.calls_planned(1)  # a pending wait is work not done yet
            started = self.started.get(key, now)

            def waited() -> None:
                self.hooks.call_finished(key, "wait", SUCCEEDED)
                self._complete(scope, node, None)

            self._timer(max(0.0, started + node.seconds - now), waited)
        else:
            child = self.root.subpipelines[node.pipeline]
            args = {k: ir.resolve_value(v, scope.results, scope.params) for k, v in node.args.items()}
            params = {**resolve_defaults(child.defaults(), self.scheduled_at, self.run_started), **args}
            self.store.start_unit(self.run_id, key, "pipeline", node.pipeline, now)
            self._start_scope(child, key + "/", params, lambda out: self._complete(scope, node, out),
                              lambda e: self._node_failed(scope, key, e))

    def _guard_holds(self, scope: _Scope, guard: ir.Guard | None) -> bool:
        for g in guard_chain(scope.pipeline, guard):
            branch = scope.pipeline.branch_by_id[g.branch]
            if ir.evaluate(branch.condition, scope.results, scope.params) != g.arm:
                return False
        return True

    def _complete(self, scope: _Scope, node: ir.Node, result: Any, record: bool = True) -> None:
        if self.result is not None:
            return
        if record:
            self.store.finish_unit(self.run_id, scope.prefix + node.id, SUCCEEDED, result, None, self.clock.now(),
                                   node.kind, getattr(node, "task", None) or getattr(node, "pipeline", None))
        scope.results[node.id] = result
        scope.left -= 1
        for user in scope.users[node.id]:
            scope.remaining[user] -= 1
            if scope.remaining[user] == 0:
                self._ready(scope, scope.pipeline.node_by_id[user])
        if scope.left == 0 and self.result is None:
            scope.on_done(ir.resolve_value(scope.pipeline.output, scope.results, scope.params))

    def _node_failed(self, scope: _Scope, key: str, error: dict) -> None:
        self.store.finish_unit(self.run_id, key, FAILED, None, error, self.clock.now())
        scope.on_fail(error)

    # ------------------------------------------------------------------------------------- map
    def _start_map(self, scope: _Scope, node: ir.MapNode, key: str) -> None:
        items = ir.resolve_value(node.items, scope.results, scope.params)
        self.store.start_unit(self.run_id, key, "map", node.task, self.clock.now())
        if not isinstance(items, list):
            self._node_failed(scope, key, {"error": "TypeError", "cause": ir.not_a_list(node.id, items)})
            return
        spec = scope.pipeline.tasks[node.task]
        broadcast = {k: ir.resolve_value(v, scope.results, scope.params) for k, v in node.args.items()}
        results: list[Any] = [None] * len(items)
        limit = node.max_concurrency or len(items) or 1
        state = {"next": 0, "running": 0, "done": 0}
        todo = [i for i in range(len(items)) if f"{key}[{i}]" not in self.completed]
        for i in range(len(items)):
            if f"{key}[{i}]" in self.completed:
                results[i] = self.completed[f"{key}[{i}]"]
                state["done"] += 1
        self.hooks.calls_planned(len(todo))

        def launch() -> None:
            while state["running"] < limit and state["next"] < len(todo) and self.result is None:
                index = todo[state["next"]]
                state["next"] += 1
                state["running"] += 1
                item_key = f"{key}[{index}]"
                self.store.start_unit(self.run_id, item_key, "item", spec.name, self.clock.now())
                self._call(scope.pipeline, item_key, spec, {node.item_param: items[index], **broadcast},
                           functools.partial(item_done, index, item_key), functools.partial(item_failed, item_key))

        def item_failed(item_key: str, error: dict) -> None:
            self.store.finish_unit(self.run_id, item_key, FAILED, None, error, self.clock.now(), "item", spec.name)
            self._node_failed(scope, key, error)

        def item_done(index: int, item_key: str, result: Any) -> None:
            self.store.finish_unit(self.run_id, item_key, SUCCEEDED, result, None, self.clock.now(), "item", spec.name)
            results[index] = result
            state["running"] -= 1
            state["done"] += 1
            if state["done"] == len(items):
                self._complete(scope, node, results)
            else:
                launch()

        if state["done"] == len(items):
            self._complete(scope, node, results)
        else:
            launch()

    # ----------------------------------------------------------------------------------- calls
    def _fn(self, spec: ir.TaskSpec) -> Callable[..., Any]:
        fn = self._fns.get(spec.name)
        if fn is None:
            fn = self._fns[spec.name] = self.resolver(spec)
        return fn

    def _call(self, pipeline: ir.PipelineIR, key: str, spec: ir.TaskSpec, args: dict,
              on_success: Callable[[Any], None], on_failure: Callable[[dict], None], handler: bool = False) -> None:
        try:
            fn = self._fn(spec)
        except Exception as exc:
            on_failure({"error": type(exc).__name__, "cause": f"cannot load task {spec.name!r}: {exc}"})
            return
        call = _Call(pipeline, key, spec, fn, args, on_success, on_failure, handler, self.earlier_attempts.get(key, 0))
        self._attempt(call)

    def _attempt(self, call: _Call) -> None:
        if self.result is not None or (self.ending is not None and not call.key.startswith("#")):
            return  # the run has ended: only its hook still runs
        pool = call.spec.pool
        if pool is not None and not self.pools.take(pool, self.run_id, call.key, call.spec.name, time.time()):
            call.pool_wait = min(max(call.pool_wait * 2, 0.05), 1.0)  # no slot free: ask again later
            self._timer(call.pool_wait, lambda: self._attempt(call))
            return
        call.pool_wait = 0.0
        call.attempt += 1
        call.tries += 1
        call.token += 1
        token = call.token
        call.started = now = self.clock.now()
        self.store.start_attempt(self.run_id, call.key, call.attempt, now)
        if self.lineage:
            lineage.attempt_event("START", self.root.name, call.spec, call.key, self.run_id, call.attempt, now)
        call.log = logs.AttemptLog(call.key, call.attempt, self.clock.now, self._log_ready, self.log_limit, self.echo)
        self.live[call] = token
        self.to_submit.append((call, token))
        if call.spec.timeout:
            self._timer(call.spec.timeout, lambda: self._timed_out(call, token))

    def _log_ready(self, log: logs.AttemptLog) -> None:
        """Called (on any thread) when an attempt's log has lines waiting: the loop stores them."""
        self.events.put((_LOG, log))

    def _on_event(self, call: _Call, token: int, ok: bool, value: Any, trace: str | None) -> None:
        if self.live.get(call) != token:
            return  # a late answer from an attempt that already timed out
        del self.live[call]
        if call.spec.pool is not None:
            self.pools.give_back(self.run_id, call.key)
        if call.log is not None:
            self._store_log(call.log)
        now = self.clock.now()
        if ok:
            self.store.finish_attempt(self.run_id, call.key, call.attempt, SUCCEEDED, call.started, now, None)
            if self.lineage:
                lineage.attempt_event("COMPLETE", self.root.name, call.spec, call.key, self.run_id, call.attempt,
                                      now, checks=call.checks)
            self.hooks.call_finished(call.key, call.spec.name, SUCCEEDED)
            call.on_success(value)  # committed by the loop's next flush, before anything it enables starts
        else:
            self._attempt_failed(call, value, trace)

    def _timed_out(self, call: _Call, token: int) -> None:
        if self.live.get(call) == token:
            del self.live[call]
            if call.spec.pool is not None:
                self.pools.give_back(self.run_id, call.key)
            if call.log is not None:
                call.log.close(f"[strato] timed out after {call.spec.timeout:g}s; what the attempt writes from now "
                               "on is not stored")
                self._store_log(call.log)
            self._attempt_failed(call, {"error": "TaskTimeout", "cause": f"task {call.spec.name!r} did not finish "
                                        f"within its timeout of {call.spec.timeout:g}s"})

    def _attempt_failed(self, call: _Call, error: dict, trace: str | None = None) -> None:
        self.store.finish_attempt(self.run_id, call.key, call.attempt, FAILED, call.started, self.clock.now(), error,
                                  trace)
        if self.lineage:
            lineage.attempt_event("FAIL", self.root.name, call.spec, call.key, self.run_id, call.attempt,
                                  self.clock.now(), error, call.checks)
        retry = call.spec.retry
        if retry is not None and call.tries <= retry.max_retries and error_matches(error["error"], retry.on):
            delay = retry.delay_for(call.tries)
            if retry.jitter:
                import random  # only when a task with jitter failed: most runs never load it

                delay = random.Random(f"{self.run_id}/{call.key}/{call.attempt}").uniform(0, delay)
            self._timer(delay, lambda: self._attempt(call))
            return
        self.hooks.call_finished(call.key, call.spec.name, FAILED)
        self._call_failed(call, error)

    def _call_failed(self, call: _Call, error: dict) -> None:
        """The call failed for good: its catch handler stands in, or its failure goes on to its caller."""
        pipeline, on_failure = call.pipeline, call.on_failure
        catch = call.spec.catch
        if catch is not None and not call.handler and error_matches(error["error"], catch.on):
            handler = pipeline.tasks[catch.handler]
            key = call.key + "#catch"
            if key in self.completed:
                call.on_success(self.completed[key])
                return
            first = handler.params[0].name
            self.store.start_unit(self.run_id, key, "catch", handler.name, self.clock.now())
            self.hooks.calls_planned(1)

            def caught(result: Any) -> None:
                self.store.finish_unit(self.run_id, key, SUCCEEDED, result, None, self.clock.now(), "catch",
                                       handler.name)
                call.on_success(result)

            self._call(pipeline, key, handler, {first: error}, caught, on_failure, handler=True)
            return
        on_failure(error)


def top_level_call(key: str) -> str:
    """The root pipeline's call a unit key belongs to: ``sub/load`` -> ``sub``, ``clean[3]#catch`` -> ``clean``."""
    head = key.split("/", 1)[0]
    task_id, _ = split_key(head)
    return task_id.split("#", 1)[0]


def downstream(pipeline: ir.PipelineIR, call: str) -> set[str]:
    """``call`` and every call of ``pipeline`` that depends on it, directly or not (data, wait_for, guards)."""
    from ..errors import UsageError

    deps = dependencies(pipeline)
    if call not in deps:
        raise UsageError(f"pipeline {pipeline.name!r} has no call {call!r}; its calls are {', '.join(deps)}")
    users: dict[str, list[str]] = {n: [] for n in deps}
    for node, ds in deps.items():
        for d in ds:
            users[d].append(node)
    found, todo = {call}, [call]
    while todo:
        for user in users[todo.pop()]:
            if user not in found:
                found.add(user)
                todo.append(user)
    return found


def workers_from_env() -> int:
    """``$STRATO_WORKERS`` (default 16), refused unless a whole number from 1 to 1024."""
    from ..errors import UsageError

    text = os.environ.get("STRATO_WORKERS", "").strip() or "16"
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= 1024:
        raise UsageError(f"STRATO_WORKERS={text!r}: set it to a whole number of task threads from 1 to 1024, "
                         "or unset it (default 16)")
    return count


class Runner:
    """Runs pipelines on this machine, recording every step in a :class:`RunStore`."""

    def __init__(self, store: RunStore | None = None, clock: Any = None, workers: int | None = None,
                 hooks: RunHooks | None = None, log_limit: int | None = None):
        """``log_limit``: bytes of output stored per attempt (default ``$STRATO_LOG_MAX_BYTES`` or 1 MiB)."""
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            from ..errors import UsageError

            raise UsageError(f"workers={workers!r}: a run needs at least one task thread")
        self.workers = workers or workers_from_env()
        self.store = store if store is not None else RunStore()
        self.clock = clock or SystemClock()
        self.hooks = hooks or RunHooks()
        self.log_limit = logs.limit_from_env() if log_limit is None else log_limit

    def start(self, pipeline: ir.PipelineIR, params: dict[str, Any], resolver: Resolver | None = None, *,
              ref: str | None = None, sys_path: list[str] | None = None, run_id: str | None = None,
              scheduled_at: float | None = None, rerun_of: str | None = None, rerun_from: str | None = None,
              reuse: dict[str, Any] | None = None) -> RunResult:
        """Run ``pipeline``; its tasks are found from the IR unless ``resolver`` says otherwise.

        Creating the run takes its lease, so no ``strato resume`` can start beside it. ``scheduled_at``
        (epoch seconds) is the tick the run is for. ``reuse`` (``{unit key: result}`` of run
        ``rerun_of``) are units recorded as this run's own and not run again (see :meth:`rerun`).
        """
        resolver = resolver or resolver_for(pipeline)
        run_id = run_id or new_run_id()
        now = self.clock.now()
        self.store.create_run(run_id, pipeline.name, ref, sys_path or [], pipeline.to_json(), pipeline.hash, params,
                              now, scheduled_at=scheduled_at, rerun_of=rerun_of, rerun_from=rerun_from)
        completed: dict[str, Any] = {}
        if reuse and rerun_of:
            self.store.copy_units(rerun_of, run_id, sorted(reuse))
            completed = dict(reuse)
        return self._execute(Execution(pipeline, params, resolver, self.store, run_id, self.clock, self.workers,
                                       self.hooks, completed, scheduled_at=scheduled_at, run_started=now))

    def resume(self, record: RunRecord, pipeline: ir.PipelineIR, resolver: Resolver | None = None) -> RunResult:
        """Continue a run: finished units keep their results; the rest runs now.

        The lease is claimed first (or :class:`~strato.runtime.store.RunLocked` is raised), and what
        finished is read only after it, so two resumers never run the same unit.
        """
        resolver = resolver or resolver_for(pipeline)
        if record.status == SUCCEEDED:
            return RunResult(record.run_id, record.status, record.output, record.error)
        record = self.store.claim(record.run_id)
        if record.status == SUCCEEDED:  # finished by another process since it was read
            return RunResult(record.run_id, record.status, record.output, record.error)
        completed = self.store.completed_units(record.run_id)
        started = self.store.unit_started_at(record.run_id)
        attempts = self.store.attempt_counts(record.run_id)
        return self._execute(Execution(pipeline, record.input, resolver, self.store, record.run_id, self.clock,
                                       self.workers, self.hooks, completed, started, attempts,
                                       scheduled_at=record.scheduled_at, run_started=record.started_at))

    def rerun(self, record: RunRecord, pipeline: ir.PipelineIR, params: dict[str, Any], from_task: str | None = None,
              resolver: Resolver | None = None) -> RunResult:
        """A new run of ``pipeline`` with ``params`` (the earlier run's input), recorded as a rerun of ``record``.

        With ``from_task`` (a call id of the pipeline), the earlier run's finished units that are neither
        that call nor downstream of it keep their results and are not run again; the pipeline's graph
        must be the one the earlier run had. Without it everything runs again.
        """
        reuse: dict[str, Any] = {}
        if from_task is not None:
            if pipeline.hash != record.ir_hash:
                from ..errors import StratoError

                raise StratoError(f"pipeline {record.pipeline!r} has changed since run {record.run_id} (its graph hash "
                                  f"was {record.ir_hash[:12]}, now {pipeline.hash[:12]}); --from reuses results only "
                                  "for the graph that made them. Rerun without --from to run everything again")
            redo = downstream(pipeline, from_task)
            reuse = {key: result for key, result in self.store.completed_units(record.run_id).items()
                     if top_level_call(key) not in redo}
        return self.start(pipeline, params, resolver, ref=record.ref, sys_path=record.sys_path,
                          scheduled_at=record.scheduled_at, rerun_of=record.run_id, rerun_from=from_task, reuse=reuse)

    def _execute(self, execution: Execution) -> RunResult:
        heartbeat = self.store.heartbeat()
        execution.log_limit = self.log_limit
        if heartbeat is not None:
            heartbeat.runs.add(execution.run_id)
            execution.lease_lost = heartbeat.lost
        try:
            return execution.run()
        finally:
            if heartbeat is not None:
                heartbeat.stop()


__all__ = ["RUNNING", "Execution", "RunHooks", "RunResult", "Runner", "new_run_id"]


def _record_checks(log: logs.AttemptLog, outcomes: list[dict]) -> None:
    """Check outcomes are stored with the attempt, one ``check`` line each (``runs show`` reads them)."""
    for outcome in outcomes:
        log.add("check", json.dumps(outcome, separators=(",", ":")))
