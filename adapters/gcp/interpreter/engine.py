"""Runs a checked workflow program: scopes, steps, jumps, loops, parallel branches, retries, HTTP.

Semantics follow the Workflows syntax reference; the notable choices are documented where they are
made. Parallel branches and iterations run one after another in this thread, each started on the
virtual clock at the instant a real execution would start it: with ``concurrency_limit: n`` a branch
waits for the earliest of ``n`` slots to free (at most 20, the service's concurrent branches), so without
a limit the first 20 start together. The step takes
as long as its slowest branch. That keeps runs deterministic while the timing (``sys.now``, recorded
sleeps, the total duration) is what the concurrent execution would show. Shared variables are
written straight through to the parent scope; other variables a branch assigns stay in the branch.
"""

from __future__ import annotations

import heapq
import json
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import stdlib
from .clock import Clock, Sleep, VirtualClock
from .expressions import Target, evaluate
from .stdlib import FUNCTIONS, HTTP_METHODS, RUN_EXECUTION, FunctionRef, ModuleRef, RetryPolicy
from .syntax import Expr, ForLoop, Parallel, Program, Retry, Step, Subworkflow, WorkflowSyntaxError
from .transport import NoTransport, Transport, TransportError, map_os_error
from .values import (
    WorkflowError,
    check_json_value,
    copy_value,
    error,
    is_int,
    is_number,
    to_string,
    type_name,
)

DEFAULT_MAX_STEPS = 100_000  # reference quota: steps per execution
# "Maximum total size of variables, arguments and events: 512 KB" (https://cloud.google.com/workflows/quotas
# #resource_limits); measured here as the compact JSON of every variable a step can see, after each step
# that writes one. The quotas page does not say how the service serialises values; compact JSON is the
# smallest reasonable reading, so this check never fails what the service would accept by a wide margin.
MAX_MEMORY_BYTES = 512 * 1024
# Quotas page, "Resource limits" (https://cloud.google.com/workflows/quotas#resource_limits): the call
# stack of an execution is at most 20 deep. The stack holds main's frame too (main is the frame every
# other call is made from), so main plus 19 nested subworkflow calls fit and the 20th nested call raises
# RecursionError. Counting main is the stricter reading of the limit: what runs here also fits the cloud.
DEFAULT_MAX_DEPTH = 20
# "Maximum size of arguments ... 32 KB" for an execution (https://cloud.google.com/workflows/quotas#resource_limits),
# measured as the argument's compact JSON, the form the Executions API carries it in.
MAX_ARGUMENT_BYTES = 32 * 1024
# The Workflow Executions connector waits 1800 s by default, at most a year with connector_params.timeout
# (https://cloud.google.com/workflows/docs/reference/googleapis/workflowexecutions/v1/
# projects.locations.workflows.executions/run).
CONNECTOR_DEFAULT_TIMEOUT = 1800.0
CONNECTOR_MAX_TIMEOUT = 31_536_000.0
# "Response size: 2 MB", the largest HTTP response a call may receive (quotas page, resource limits);
# saved to a variable it also counts against the 512 KB of memory.
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
# Run-time limits of the quotas page's "Resource limits" table (https://cloud.google.com/workflows/quotas).
# A string is at most 256 KB ("Maximum string length"); the page does not say whether characters or
# bytes, so its UTF-8 bytes are counted, the stricter reading. Checked for every variable a step writes.
MAX_STRING_BYTES = 256 * 1024
# The quotas page gives the result of an execution no number of its own: the result is a value the
# workflow holds when it returns, so it is held to the variable memory of MAX_MEMORY_BYTES.
MAX_RESULT_BYTES = MAX_MEMORY_BYTES
# "Parallel nesting depth: 2" and "Concurrent branches and iterations: 20" (quotas page; the parallel
# steps reference, https://cloud.google.com/workflows/docs/reference/syntax/parallel-steps, says further
# branches and iterations are queued). A third level raises ParallelNestingError, which the reference's
# error list (https://cloud.google.com/workflows/docs/reference/errors) names for exactly this. Only 100
# unhandled branch errors are kept ("Unhandled exceptions per execution: 100"), then `truncated` is true.
MAX_PARALLEL_DEPTH = 2
MAX_CONCURRENT_BRANCHES = 20
MAX_UNHANDLED_BRANCH_ERRORS = 100
HTTP_DEFAULT_TIMEOUT = 300.0  # http.request: default 300 s, at most 1800 s
HTTP_MAX_TIMEOUT = 1800.0
HTTP_ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
UNHANDLED_BRANCH_MESSAGE = "UnhandledBranchError: One or more branches or iterations encountered an unhandled " \
                           "runtime error"


@dataclass
class Execution:
    """The outcome of one run, shaped like a Workflows execution plus what tests need to see."""

    state: str  # "SUCCEEDED" or "FAILED"
    result: Any = None
    error: Any = None  # the uncaught error value (usually a map with "message" and "tags")
    waits: list[Sleep] = field(default_factory=list)  # every sleep and retry backoff, in order
    steps_executed: int = 0
    logs: list[dict[str, Any]] = field(default_factory=list)  # sys.log entries
    started_at: float = 0.0
    ended_at: float = 0.0

    @property
    def sleeps(self) -> list[float]:
        """The durations of every wait, in order (``sys.sleep`` and retry backoff alike)."""
        return [w.seconds for w in self.waits]

    @property
    def duration(self) -> float:
        return self.ended_at - self.started_at

    @property
    def succeeded(self) -> bool:
        return self.state == "SUCCEEDED"


# --------------------------------------------------------------------------------------- control flow


class _Signal(Exception):
    """Control flow that is not an error: try/except never sees these."""


class _Jump(_Signal):
    def __init__(self, target: str):
        super().__init__(target)
        self.target = target


class _Break(_Signal):
    pass


class _Continue(_Signal):
    pass


class _End(_Signal):
    pass


class _Return(_Signal):
    def __init__(self, value: Any):
        super().__init__()
        self.value = value


class _Fatal(Exception):
    """An error that ends the execution at once and cannot be caught (e.g. ResourceLimitError)."""

    def __init__(self, value: Any):
        super().__init__(value)
        self.value = value


# --------------------------------------------------------------------------------------------- scopes


class SubworkflowRef:
    """A subworkflow named in an expression, e.g. a custom retry ``predicate: ${my_predicate}``."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<subworkflow {self.name}>"


class Scope:
    """Variables of a subworkflow, a loop iteration or a parallel branch.

    Reading walks up to the subworkflow's scope. Assigning a name that exists further up writes it
    there (a loop body updating a workflow variable); a new name stays here, so variables created
    in a loop do not outlive it. A parallel branch is ``isolated``: it may write a parent variable
    only if the parallel step lists it in ``shared``.
    """

    def __init__(self, parent: Scope | None = None, *, isolated: bool = False, shared: frozenset[str] = frozenset()):
        self.vars: dict[str, Any] = {}
        self.sizes: dict[str, int] = {}  # bytes of each variable's compact JSON, as last measured
        self.parent = parent
        self.isolated = isolated
        self.shared = shared

    def find(self, name: str) -> Scope | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return scope
            scope = scope.parent
        return None

    def writable(self, name: str) -> Scope | None:
        """The scope an assignment to ``name`` writes into, or None for a new local variable."""
        if name in self.vars:
            return self
        if self.parent is None or self.parent.find(name) is None:
            return None
        if self.isolated and name not in self.shared:
            raise WorkflowSyntaxError(f"variable {name!r} belongs to the scope outside the parallel step and is "
                                      "not listed in 'shared'")
        return self.parent.writable(name)

    def set(self, name: str, value: Any) -> None:
        (self.writable(name) or self).vars[name] = value

    def measure(self, name: str) -> None:
        """Measure ``name`` again where it lives (after a step wrote it)."""
        holder = self.find(name)
        if holder is not None:
            holder.sizes[name] = _json_bytes(holder.vars[name])

    def memory(self) -> int:
        """Bytes of every variable visible here, as last measured."""
        total = 0
        scope: Scope | None = self
        while scope is not None:
            total += sum(scope.sizes.values())
            scope = scope.parent
        return total


def _limit(message: str) -> dict[str, Any]:
    return {"message": f"ResourceLimitError: {message}", "tags": ["ResourceLimitError"]}


def _longest_string(value: Any) -> int:
    """UTF-8 bytes of the longest string in ``value`` (map keys included)."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, dict):
        return max([0, *(max(len(k.encode()), _longest_string(v)) for k, v in value.items())])
    if isinstance(value, list):
        return max([0, *(_longest_string(v) for v in value)])
    return 0


def _json_bytes(value: Any) -> int:
    try:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class Frame:
    sub: str
    depth: int


class _Runtime:
    """The clock and environment as the standard library sees them."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def now(self) -> float:
        return self.engine.clock.now()

    def get_env(self, name: str) -> str | None:
        return self.engine.env.get(name)


class _EvalContext:
    def __init__(self, engine: Engine, scope: Scope, frame: Frame):
        self.engine, self.scope, self.frame = engine, scope, frame

    def lookup(self, name: str) -> Any:
        holder = self.scope.find(name)
        if holder is not None:
            return holder.vars[name]
        if name in self.engine.program.subworkflows:
            return SubworkflowRef(name)
        if name in stdlib.MODULES:
            return ModuleRef(name)
        raise error("KeyError", f"variable {name!r} is not defined")

    def call(self, func: str, args: list[Any]) -> Any:
        if func in self.engine.program.subworkflows:
            return self.engine.call_subworkflow(func, positional=args, depth=self.frame.depth)
        return self.engine.stdlib_call(func, args)


# --------------------------------------------------------------------------------------------- engine


class Engine:
    def __init__(self, program: Program, *, transport: Transport | None = None, clock: Clock | None = None,
                 env: Mapping[str, str] | None = None, max_steps: int = DEFAULT_MAX_STEPS,
                 max_depth: int = DEFAULT_MAX_DEPTH, deployed: Mapping[str, Program] | None = None):
        self.program = program
        self.deployed: Mapping[str, Program] = deployed or {}  # the project's other workflows, by workflow id
        self.transport: Transport = transport or NoTransport()
        self.clock: Clock = clock or VirtualClock()
        self.env = {
            "GOOGLE_CLOUD_PROJECT_ID": "local-project",
            "GOOGLE_CLOUD_LOCATION": "local",
            "GOOGLE_CLOUD_WORKFLOW_ID": "workflow",
            "GOOGLE_CLOUD_WORKFLOW_REVISION_ID": "000001-local",
            "GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID": str(uuid.uuid4()),
            **dict(env or {}),
        }
        self.max_steps = max_steps
        self.max_memory = MAX_MEMORY_BYTES
        self.max_depth = max_depth
        self.parallel_depth = 0  # parallel steps running around the current step (branches run inline)
        self.runtime = _Runtime(self)
        self.steps_executed = 0
        self.waits: list[Sleep] = []
        self.logs: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------------------------ run

    def run(self, args: Any = None) -> Execution:
        started = self.clock.now()
        state, result, err = "SUCCEEDED", None, None
        try:
            size = _json_bytes(args) if args is not None else 0
            if size > MAX_ARGUMENT_BYTES:  # the service refuses to create it; here it fails before any step
                raise _Fatal(_limit(f"the execution argument is {size:,} bytes, over the {MAX_ARGUMENT_BYTES:,} "
                                    f"an execution accepts"))
            main = self.program.main
            result = self.invoke(main, [copy_value(args)] if main.params else [], {}, depth=0)
            check_json_value(result, "the workflow's result")
            size = _json_bytes(result)
            if size > MAX_RESULT_BYTES:
                raise _Fatal(_limit(f"the result is {size:,} bytes, over the {MAX_RESULT_BYTES:,} an execution "
                                    f"may return"))
        except WorkflowError as exc:
            state, result, err = "FAILED", None, exc.value
        except _Fatal as exc:
            state, result, err = "FAILED", None, exc.value
        return Execution(state, result, err, list(self.waits), self.steps_executed, list(self.logs), started,
                         self.clock.now())

    def invoke(self, sub: Subworkflow, positional: list[Any], named: Mapping[str, Any], depth: int) -> Any:
        if depth >= self.max_depth:  # `depth` frames are on the stack already, main's included
            raise error("RecursionError", f"call stack depth limit exceeded: calling {sub.name!r} would put frame "
                                          f"{depth + 1} on a stack of at most {self.max_depth} (main and "
                                          f"{self.max_depth - 1} nested subworkflow calls)")
        if len(positional) > len(sub.params):
            raise error("TypeError", f"subworkflow {sub.name!r} takes {len(sub.params)} arguments, got "
                                     f"{len(positional)}")
        unknown = sorted(set(named) - {p.name for p in sub.params})
        if unknown:
            raise error("TypeError", f"subworkflow {sub.name!r} has no parameter {unknown[0]!r}")
        scope = Scope()
        for i, param in enumerate(sub.params):
            if i < len(positional):
                scope.vars[param.name] = copy_value(positional[i])
            elif param.name in named:
                scope.vars[param.name] = copy_value(named[param.name])
            elif param.has_default:
                scope.vars[param.name] = copy_value(param.default)
            elif sub.name == "main":
                scope.vars[param.name] = None
            else:
                raise error("TypeError", f"subworkflow {sub.name!r} is missing argument {param.name!r}")
        frame = Frame(sub.name, depth + 1)
        try:
            self.run_steps(sub.steps, scope, frame)
        except _Return as ret:
            return ret.value
        except _End:
            return None
        except (_Jump, _Break, _Continue) as exc:  # pragma: no cover - excluded by validation
            raise WorkflowSyntaxError(f"control flow escaped the subworkflow: {exc!r}", subworkflow=sub.name) from None
        return None

    def call_subworkflow(self, name: str, *, positional: list[Any] | None = None,
                         named: Mapping[str, Any] | None = None, depth: int) -> Any:
        return self.invoke(self.program.subworkflows[name], positional or [], named or {}, depth)

    def stdlib_call(self, name: str, args: list[Any] | Mapping[str, Any]) -> Any:
        try:
            return stdlib.call_function(name, args, self.runtime)
        except (OverflowError, ValueError, OSError) as exc:  # host-level failures of a library call
            raise error("ValueError", f"{name}(): {exc}") from None

    # ---------------------------------------------------------------------------------------- steps

    def run_steps(self, steps: list[Step], scope: Scope, frame: Frame) -> None:
        index = {step.name: i for i, step in enumerate(steps)}
        i = 0
        while i < len(steps):
            try:
                target = self.exec_step(steps[i], scope, frame)
            except _Jump as jump:
                if jump.target not in index:
                    raise
                target = jump.target
            if target is None:
                i += 1
            elif target == "end":
                raise _End()
            elif target == "break":
                raise _Break()
            elif target == "continue":
                raise _Continue()
            elif target in index:
                i = index[target]
            else:
                raise _Jump(target)

    def check_memory(self, scope: Scope, written: list[str]) -> None:
        """Fail the execution as the service does when its variables pass MAX_MEMORY_BYTES."""
        for name in dict.fromkeys(written):
            scope.measure(name)
            holder = scope.find(name)
            if holder is not None and holder.sizes.get(name, 0) > MAX_STRING_BYTES:
                longest = _longest_string(holder.vars[name])
                if longest > MAX_STRING_BYTES:
                    raise _Fatal(_limit(f"variable {name!r} holds a string of {longest:,} bytes, over the "
                                        f"{MAX_STRING_BYTES:,} a string may hold"))
        used = scope.memory()
        if used > self.max_memory:
            raise _Fatal({"message": f"ResourceLimitError: Memory usage limit exceeded: variables hold {used:,} "
                                     f"bytes, over {self.max_memory:,}", "tags": ["ResourceLimitError"]})

    def count_step(self) -> None:
        self.steps_executed += 1
        if self.steps_executed > self.max_steps:
            raise _Fatal({"message": f"ResourceLimitError: more than {self.max_steps} steps executed",
                          "tags": ["ResourceLimitError"]})

    def exec_step(self, step: Step, scope: Scope, frame: Frame, *, counted: bool = True) -> str | None:
        """Run one step; answers where to go next (a step name, end/break/continue, or None).

        The body of a ``try`` and of a switch condition are part of their step (``counted=False``).
        """
        if counted:
            self.count_step()
        kind = step.kind
        if kind == "assign":
            for target, template in step.assign:
                self.assign(target, copy_value(self.render(template, scope, frame)), scope, frame)
            self.check_memory(scope, [target.name for target, _ in step.assign])
        elif kind == "call":
            result = self.do_call(step, scope, frame)
            if step.result is not None:
                scope.set(step.result, copy_value(result))
                self.check_memory(scope, [step.result])
        elif kind == "switch":
            for cond in step.conditions:
                value = self.render(cond.condition, scope, frame)
                if not isinstance(value, bool):
                    raise error("TypeError", f"switch condition must be a boolean, got {type_name(value)}")
                if value:
                    inner = self.exec_step(cond.body, scope, frame, counted=False) if cond.body is not None else None
                    return cond.next or inner or step.next
        elif kind == "for":
            assert step.loop is not None
            self.exec_for(step.loop, scope, frame)
        elif kind == "parallel":
            assert step.parallel is not None
            self.exec_parallel(step.parallel, scope, frame)
        elif kind == "raise":
            raise WorkflowError(copy_value(self.render(step.value, scope, frame)))
        elif kind == "return":
            raise _Return(copy_value(self.render(step.value, scope, frame)))
        elif kind == "try":
            inner = self.exec_try(step, scope, frame)
            return inner or step.next
        elif kind == "steps":
            self.run_steps(step.steps, scope, frame)
        return step.next

    def render(self, template: Any, scope: Scope, frame: Frame) -> Any:
        """Evaluate a value template: its ``${}`` expressions, inside maps and lists too."""
        if isinstance(template, Expr):
            return evaluate(template.node, _EvalContext(self, scope, frame))
        if isinstance(template, list):
            return [self.render(v, scope, frame) for v in template]
        if isinstance(template, dict):
            return {k: self.render(v, scope, frame) for k, v in template.items()}
        return template

    def assign(self, target: Target, value: Any, scope: Scope, frame: Frame) -> None:
        """``name: v`` or ``name.a["b"][0]: v``: the container is changed in place, in its own scope."""
        if not target.path:
            scope.set(target.name, value)
            return
        holder = scope.writable(target.name)
        if holder is None:
            raise error("KeyError", f"variable {target.name!r} is not defined (assigning {target.text!r})")
        container = holder.vars[target.name]
        keys = [self.render(Expr(node, target.text), scope, frame) for node in target.path]
        for depth, key in enumerate(keys):
            last = depth == len(keys) - 1
            if isinstance(container, dict):
                if not isinstance(key, str):
                    raise error("TypeError", f"map keys are strings; {target.text!r} used a {type_name(key)}")
                if last:
                    container[key] = value
                elif key not in container:
                    raise error("KeyError", f"key not found: {key} (assigning {target.text!r})")
                else:
                    container = container[key]
            elif isinstance(container, list):
                if not is_int(key):
                    raise error("TypeError", f"list index must be an integer in {target.text!r}")
                if key < 0 or key >= len(container):
                    raise error("IndexError", f"list index {key} out of range in {target.text!r}")
                if last:
                    container[key] = value
                else:
                    container = container[key]
            else:
                raise error("TypeError", f"cannot assign into a {type_name(container)} ({target.text!r})")

    # ---------------------------------------------------------------------------------------- loops

    def loop_items(self, loop: ForLoop, scope: Scope, frame: Frame) -> Iterator[Any]:
        if loop.items is not None:
            items = self.render(loop.items, scope, frame)
            if not isinstance(items, list):
                raise error("TypeError", f"'for ... in' needs a list, got {type_name(items)}")
            return iter(list(items))  # the list as it was when the loop started
        bounds = self.render(loop.range, scope, frame)
        if not (isinstance(bounds, list) and len(bounds) == 2 and all(is_number(b) for b in bounds)):
            raise error("TypeError", "'range' needs two numbers")
        start, end = bounds
        return _number_range(start, end)

    def exec_for(self, loop: ForLoop, scope: Scope, frame: Frame) -> None:
        for i, item in enumerate(self.loop_items(loop, scope, frame)):
            iteration = Scope(scope)  # variables created in the body live for one iteration only
            iteration.vars[loop.value] = copy_value(item)
            if loop.index is not None:
                iteration.vars[loop.index] = i
            try:
                self.run_steps(loop.steps, iteration, frame)
            except _Break:
                break
            except _Continue:
                continue

    def exec_parallel(self, par: Parallel, scope: Scope, frame: Frame) -> None:
        limit = None
        if par.concurrency_limit is not None:
            limit = self.render(par.concurrency_limit, scope, frame)
            if not is_int(limit) or limit < 1:
                raise error("ValueError", f"concurrency_limit must be a positive integer, got {limit!r}")
        shared = frozenset(par.shared)
        for name in shared:
            if scope.find(name) is None:
                raise error("KeyError", f"shared variable {name!r} is not defined")

        def branches() -> Iterator[tuple[str, Scope, list[Step]]]:
            if par.branches is not None:
                for branch in par.branches:
                    yield branch.name, Scope(scope, isolated=True, shared=shared), branch.steps
                return
            assert par.loop is not None
            for i, item in enumerate(self.loop_items(par.loop, scope, frame)):
                iteration = Scope(scope, isolated=True, shared=shared)
                iteration.vars[par.loop.value] = copy_value(item)
                if par.loop.index is not None:
                    iteration.vars[par.loop.index] = i
                yield str(i), iteration, par.loop.steps

        if self.parallel_depth >= MAX_PARALLEL_DEPTH:
            raise error("ParallelNestingError", f"parallel steps nest more than {MAX_PARALLEL_DEPTH} deep (a parallel "
                                                f"step runs inside {self.parallel_depth} others)")
        limit = min(limit or MAX_CONCURRENT_BRANCHES, MAX_CONCURRENT_BRANCHES)  # the rest queue
        start = self.clock.now()
        slots: list[float] = [start] * limit
        ends: list[float] = []
        failures: list[dict[str, Any]] = []
        unhandled = 0
        self.parallel_depth += 1
        try:
            for branch_id, branch_scope, steps in branches():
                self.clock.set_time(heapq.heappop(slots))
                try:
                    self.run_steps(steps, branch_scope, frame)
                except _Continue:
                    pass  # `next: continue` ends this iteration of a parallel for
                except WorkflowError as exc:  # continueAll: the other branches still run
                    unhandled += 1
                    if len(failures) < MAX_UNHANDLED_BRANCH_ERRORS:
                        failures.append({"id": branch_id, "error": exc.value})
                finish = self.clock.now()
                ends.append(finish)
                heapq.heappush(slots, finish)
        finally:
            self.parallel_depth -= 1
        self.clock.set_time(max(ends, default=start))
        if failures:
            raise WorkflowError({"message": UNHANDLED_BRANCH_MESSAGE, "tags": ["UnhandledBranchError"],
                                 "branches": failures, "truncated": unhandled > len(failures)})

    # -------------------------------------------------------------------------------- try / retry

    def exec_try(self, step: Step, scope: Scope, frame: Frame) -> str | None:
        assert step.body is not None
        retries = 0
        policy: _Policy | None = None
        while True:
            try:
                return self.exec_step(step.body, scope, frame, counted=False)
            except WorkflowError as exc:
                caught = exc
            if step.retry is not None:
                if policy is None:
                    policy = self.resolve_retry(step.retry, scope, frame)
                if retries < policy.max_retries and self.retry_wanted(policy.predicate, caught.value, frame):
                    retries += 1
                    self.count_step()  # the reference: a retry counts as another step execution
                    delay = min(policy.initial_delay * policy.multiplier ** (retries - 1), policy.max_delay)
                    self.wait(delay, "retry", step.name, frame)
                    continue
            if step.except_ is None:
                raise caught
            # Syntax reference, "Catch errors" > "Variable scope" and "Variables" > "Variable scope"
            # (https://cloud.google.com/workflows/docs/reference/syntax/catching-errors,
            # https://cloud.google.com/workflows/docs/reference/syntax/variables#variable-scope): a variable
            # created inside an except block, the `as` variable included, belongs to that block only.
            # Assignments to variables that exist outside still write through.
            block = Scope(scope)
            if step.except_.as_name is not None:
                block.vars[step.except_.as_name] = copy_value(caught.value)
            self.run_steps(step.except_.steps, block, frame)
            return None

    def resolve_retry(self, retry: Retry, scope: Scope, frame: Frame) -> _Policy:
        if retry.policy is not None:
            policy = self.render(retry.policy, scope, frame)
            if not isinstance(policy, RetryPolicy):
                raise error("TypeError", f"retry: expected a default retry policy, got {type_name(policy)}")
            return _Policy(policy.predicate, policy.max_retries, policy.initial_delay, policy.max_delay,
                           policy.multiplier)
        predicate = self.render(retry.predicate, scope, frame)
        if not isinstance(predicate, FunctionRef | SubworkflowRef):
            raise error("TypeError", f"retry predicate must be a function or a subworkflow, got {predicate!r}")
        max_retries = self.render(retry.max_retries, scope, frame)
        if not is_int(max_retries) or max_retries < 0:
            raise error("ValueError", f"max_retries must be a non-negative integer, got {max_retries!r}")
        if retry.max_delay is None and retry.multiplier is None:  # backoff: ${retry.default_backoff}
            backoff = self.render(retry.initial_delay, scope, frame)
            if not isinstance(backoff, dict):
                raise error("TypeError", "backoff must be a map")
            values: list[Any] = [backoff.get(k) for k in ("initial_delay", "max_delay", "multiplier")]
        else:
            values = [self.render(t, scope, frame) for t in (retry.initial_delay, retry.max_delay, retry.multiplier)]
        numbers: list[float] = []
        for label, value in zip(("initial_delay", "max_delay", "multiplier"), values, strict=True):
            if not isinstance(value, (int, float)) or not is_number(value) or value < 0:
                raise error("ValueError", f"backoff {label} must be a non-negative number, got {value!r}")
            numbers.append(float(value))
        return _Policy(predicate, max_retries, numbers[0], numbers[1], numbers[2])

    def retry_wanted(self, predicate: Any, err: Any, frame: Frame) -> bool:
        if isinstance(predicate, SubworkflowRef):
            answer = self.call_subworkflow(predicate.name, positional=[copy_value(err)], depth=frame.depth)
        else:
            answer = self.stdlib_call(predicate.name, [copy_value(err)])
        if not isinstance(answer, bool):
            raise error("TypeError", f"retry predicate must return a boolean, got {type_name(answer)}")
        return answer

    def wait(self, seconds: float, reason: str, step: str, frame: Frame) -> None:
        self.waits.append(Sleep(self.clock.now(), seconds, reason, f"{frame.sub}.{step}"))
        self.clock.sleep(seconds)

    # ---------------------------------------------------------------------------------------- calls

    def do_call(self, step: Step, scope: Scope, frame: Frame) -> Any:
        name = step.call
        assert name is not None
        args = self.render(step.args, scope, frame)
        if name in self.program.subworkflows:
            return self.call_subworkflow(name, named=args, depth=frame.depth)
        if name in HTTP_METHODS or name == "http.request":
            return self.http(name, args)
        if name == RUN_EXECUTION:
            return self.run_execution(args)
        if name == "sys.sleep":
            seconds = args.get("seconds")
            if not is_number(seconds):
                raise error("TypeError", f"sys.sleep: seconds must be a number, got {type_name(seconds)}")
            if seconds < 0:
                raise error("ValueError", "sys.sleep: seconds must not be negative")
            self.wait(seconds, "sys.sleep", step.name, frame)
            return None
        if name == "sys.sleep_until":
            until = stdlib.time_parse(args.get("time"))
            self.wait(max(0.0, until - self.clock.now()), "sys.sleep_until", step.name, frame)
            return None
        if name == "sys.log":
            entry = {"at": self.clock.now(), "step": f"{frame.sub}.{step.name}",
                     "severity": args.get("severity", "DEFAULT")}
            entry.update({k: copy_value(args[k]) for k in ("data", "text", "json") if k in args})
            self.logs.append(entry)
            return None
        if name in FUNCTIONS:
            return self.stdlib_call(name, args)
        raise error("TypeError", f"cannot call {name!r}")  # pragma: no cover - excluded by validation

    def run_execution(self, args: dict[str, Any]) -> Any:
        """The connector's ``executions.run``: another deployed workflow runs to its end as a new execution
        (its own steps, memory and call stack, the same clock and transport); its result is returned, a
        failure raises ``OperationError`` with the child's error, as the connector page lists."""
        workflow_id = args.get("workflow_id")
        if not isinstance(workflow_id, str):
            raise error("TypeError", f"{RUN_EXECUTION}: workflow_id must be a string, got {type_name(workflow_id)}")
        params = args.get("connector_params") or {}
        timeout: Any = params.get("timeout", CONNECTOR_DEFAULT_TIMEOUT) if isinstance(params, dict) else None
        if not is_number(timeout) or not 0 < float(timeout) <= CONNECTOR_MAX_TIMEOUT:
            raise error("ValueError", f"{RUN_EXECUTION}: connector_params.timeout must be a number of seconds in "
                                      f"(0, {CONNECTOR_MAX_TIMEOUT:g}]")
        program = self.deployed.get(workflow_id)
        if program is None:
            raise error("HttpError", f"workflow {workflow_id!r} not found in this project and location", code=404)
        argument = args.get("argument")
        size = _json_bytes(argument)
        if size > MAX_ARGUMENT_BYTES:
            raise error("HttpError", f"the argument of an execution of {workflow_id!r} is {size:,} bytes, over the "
                                     f"{MAX_ARGUMENT_BYTES:,}-byte limit (https://cloud.google.com/workflows/quotas)",
                        code=400)
        env = {**self.env, "GOOGLE_CLOUD_WORKFLOW_ID": workflow_id,
               "GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID": str(uuid.uuid4())}
        child = Engine(program, transport=self.transport, clock=self.clock, env=env, max_steps=self.max_steps,
                       max_depth=self.max_depth, deployed=self.deployed)
        started = self.clock.now()
        execution = child.run(argument)
        self.waits.extend(execution.waits)
        self.logs.extend(execution.logs)
        if self.clock.now() - started > timeout:
            raise error("TimeoutError", f"the execution of {workflow_id!r} did not finish within {timeout:g}s")
        if execution.state != "SUCCEEDED":
            raise error("OperationError", f"the execution of {workflow_id!r} failed", operation={
                "state": "FAILED", "error": copy_value(execution.error)})
        return execution.result

    def http(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        method = HTTP_METHODS.get(name) or args.get("method")
        if not isinstance(method, str) or method.upper() not in HTTP_ALLOWED_METHODS:
            raise error("ValueError", f"{name}: method must be one of {', '.join(HTTP_ALLOWED_METHODS)}")
        method = method.upper()
        url = args.get("url")
        if not isinstance(url, str):
            raise error("TypeError", f"{name}: url must be a string, got {type_name(url)}")
        headers = args.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise error("TypeError", f"{name}: headers must be a map of strings")
        headers = dict(headers)
        query = args.get("query")
        if query is not None:
            url = _with_query(url, query, name)
        body = _encode_request_body(args.get("body"), headers, name) if "body" in args else None
        timeout = args.get("timeout", HTTP_DEFAULT_TIMEOUT)
        if not is_number(timeout) or timeout <= 0 or timeout > HTTP_MAX_TIMEOUT:
            raise error("ValueError", f"{name}: timeout must be a number of seconds in (0, {HTTP_MAX_TIMEOUT:g}]")
        auth = args.get("auth")
        if auth is not None and (not isinstance(auth, dict) or auth.get("type") not in ("OIDC", "OAuth2")):
            raise error("ValueError", f"{name}: auth must be a map with type OIDC or OAuth2")
        try:
            code, response_headers, payload = self.transport.request(method, url, headers, body, float(timeout),
                                                                     copy_value(auth))
        except TransportError as exc:
            raise error(exc.tag, f"{method} {url}: {exc}") from None
        except OSError as exc:
            mapped = map_os_error(exc)
            raise error(mapped.tag, f"{method} {url}: {mapped}") from None
        if len(payload) > MAX_RESPONSE_BYTES:
            raise error("ResourceLimitError", f"{method} {url}: the response is {len(payload):,} bytes, over the "
                                              f"{MAX_RESPONSE_BYTES:,}-byte limit of an HTTP response "
                                              "(https://cloud.google.com/workflows/quotas)")
        decoded = _decode_response_body(response_headers, payload)
        if code >= 400:
            raise WorkflowError({"message": f"HTTP server responded with error code {code}", "code": code,
                                 "headers": dict(response_headers), "body": decoded, "tags": ["HttpError"]})
        return {"body": decoded, "code": code, "headers": dict(response_headers)}


@dataclass(frozen=True)
class _Policy:
    predicate: Any
    max_retries: int
    initial_delay: float
    max_delay: float
    multiplier: float


def _number_range(start: int | float, end: int | float) -> Iterator[int | float]:
    """``range: [a, b]``: both ends inclusive, step 1; doubles when either end is a double."""
    value: int | float = start if is_int(start) and is_int(end) else float(start)
    while value <= end:
        yield value
        value += 1


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _with_query(url: str, query: Any, name: str) -> str:
    if not isinstance(query, dict):
        raise error("TypeError", f"{name}: query must be a map")
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        for item in value if isinstance(value, list) else [value]:
            if item is None or isinstance(item, dict | list | bytes):
                raise error("TypeError", f"{name}: query values must be strings, numbers, booleans or lists of them")
            pairs.append((key, to_string(item)))
    encoded = urllib.parse.urlencode(pairs)
    return url + ("&" if "?" in url else "?") + encoded if encoded else url


def _encode_request_body(body: Any, headers: dict[str, str], name: str) -> bytes | None:
    """The reference: without Content-Type, bytes go as application/octet-stream and anything else as JSON."""
    if body is None:
        return None
    content_type = _header(headers, "Content-Type")
    if content_type is None:
        if isinstance(body, bytes):
            headers["Content-Type"] = "application/octet-stream"
            return body
        headers["Content-Type"] = "application/json; charset=utf-8"
        return stdlib.json_encode(body)
    kind = content_type.split(";")[0].strip().lower()
    if isinstance(body, bytes):
        return body
    if kind == "application/json" or kind.endswith("+json"):
        return stdlib.json_encode(body)
    if kind == "application/x-www-form-urlencoded" and isinstance(body, dict):
        return urllib.parse.urlencode({k: to_string(v) for k, v in body.items()}).encode("ascii")
    if isinstance(body, str):
        return body.encode("utf-8")
    raise error("TypeError", f"{name}: cannot encode a {type_name(body)} body as {content_type}")


def _decode_response_body(headers: Mapping[str, str], payload: bytes) -> Any:
    """JSON responses are parsed, text is decoded, anything else stays bytes; an empty body is null."""
    if not payload:
        return None
    content_type = (_header(headers, "Content-Type") or "").lower()
    kind = content_type.split(";")[0].strip()
    charset = "utf-8"
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key == "charset" and value:
            charset = value.strip('"')
    if kind == "application/json" or kind.endswith("+json"):
        try:
            return json.loads(payload.decode(charset))
        except (ValueError, LookupError):
            return payload.decode("utf-8", errors="replace")
    if kind.startswith("text/"):
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            return payload.decode("utf-8", errors="replace")
    return payload
