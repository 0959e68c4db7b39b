"""Secrets by reference: ``Secret("db-password")`` passed to a task is resolved when the task is called.

Everywhere a value can be seen (the IR and compiled artifacts, execution state and history, the run
store, logs, lineage events) a secret is its reference, ``{"$strato_secret": "db-password"}``; only
the task's argument holds the value, resolved at the task boundary
(:func:`strato.runtime.invoke.invoke`) from the environment variable ``STRATO_SECRET_DB_PASSWORD``
locally and in emulation, or from the cloud's secret store in a deployed shim. A shim resolves only
the names the IR declares for that task, so a payload cannot ask for another secret.
"""

from __future__ import annotations

import contextvars
import graphlib
import itertools
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._record import record

if TYPE_CHECKING:
    from .ir import PipelineIR

MARKER = "$strato_secret"
ENV_PREFIX = "STRATO_SECRET_"
# Portable across AWS Secrets Manager, GCP Secret Manager and Azure Key Vault, which allows only
# letters, digits and hyphens, 1-127 characters:
# https://learn.microsoft.com/azure/key-vault/general/about-keys-secrets-certificates
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,126}$")

SecretSource = Callable[[str], str]  # a secret's name -> its value


class SecretUnavailable(Exception):
    """A secret a task needs cannot be read; the message names it and where it was looked for."""


@record
class Secret:
    """A reference to a secret in the platform's secret store, passed to a task as an argument."""

    name: str

    def problem(self) -> str | None:
        if not isinstance(self.name, str) or not NAME.match(self.name):
            return (f"secret name {self.name!r} must start with a letter and use only letters, digits and "
                    "hyphens (at most 127 characters), so every cloud's secret store can hold it")
        return None

    @property
    def env_var(self) -> str:
        return env_var(self.name)

    def to_json(self) -> dict[str, str]:
        return {MARKER: self.name}


def env_var(name: str) -> str:
    """``db-password`` -> ``STRATO_SECRET_DB_PASSWORD``."""
    return ENV_PREFIX + name.upper().replace("-", "_")


def as_json(value: Any) -> Any:
    """A :class:`Secret` as its reference (a parameter default, say); anything else unchanged."""
    return value.to_json() if isinstance(value, Secret) else value


def is_secret_ref(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(MARKER), str)


def secret_names(value: Any) -> Iterator[str]:
    """The secret references inside a JSON value."""
    if is_secret_ref(value):
        yield value[MARKER]
    elif isinstance(value, dict):
        for item in value.values():
            yield from secret_names(item)
    elif isinstance(value, list):
        for item in value:
            yield from secret_names(item)


def from_environment(name: str) -> str:
    """The local source: ``STRATO_SECRET_<NAME>``."""
    value = os.environ.get(env_var(name))
    if value is None:
        raise SecretUnavailable(f"secret {name!r} is not set: export {env_var(name)} with its value")
    return value


_source: contextvars.ContextVar[SecretSource | None] = contextvars.ContextVar("strato_secret_source", default=None)


@contextmanager
def secret_source(source: SecretSource) -> Iterator[None]:
    """Within the block, secrets come from ``source`` (a cloud shim's secret store)."""
    token = _source.set(source)
    try:
        yield
    finally:
        _source.reset(token)


def resolve(value: Any, allowed: frozenset[str] | None = None) -> Any:
    """``value`` with each secret reference replaced by the secret's value.

    ``allowed`` (the names the IR declares for the task) limits what may be read; any other reference
    is refused, so data from an event or a result cannot ask for a secret the task was not given.
    """
    if is_secret_ref(value):
        name = value[MARKER]
        if allowed is not None and name not in allowed:
            raise SecretUnavailable(f"secret {name!r} is not one this task was given; pass Secret({name!r}) to it "
                                    "in the pipeline")
        return (_source.get() or from_environment)(name)
    if isinstance(value, dict):
        return {k: resolve(v, allowed) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, allowed) for v in value]
    return value


# ------------------------------------------------------------------------- credential heuristics
# Patterns as text: the re module compiles (and caches) them on first use, so importing strato, as every
# task shim does, pays nothing for heuristics only validation runs.
_CREDENTIAL_KEYS = (r"(?i)(pass(word|wd)?|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|"
                    r"credential|auth)")
_TOKEN_CHARS = r"^[A-Za-z0-9+/=_\-.]{20,}$"
_USERINFO = r"(?i)^[a-z][a-z0-9+.-]*://[^/@:\s]+:[^/@\s]+@"
_HEX = r"^[0-9a-fA-F]+$"
# Well-known credential formats: AWS access key ids, GitHub, Slack and Stripe tokens, PEM private keys.
_KNOWN = (r"(^|[^A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}|^gh[pousr]_[A-Za-z0-9]{20,}|^xox[abposr]-|^sk_live_|"
          r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def looks_like_credential(key: str | None, value: Any) -> bool:
    """A literal that should probably be a :class:`Secret`: a non-empty string under a credential-like
    name (``password``, ``token``, ``api_key`` ...), or a long random-looking token (high entropy)."""
    if not isinstance(value, str) or not value or is_secret_ref(value):
        return False
    if re.search(_USERINFO, value):  # a URL with a password in it
        return True
    if key is not None and re.search(_CREDENTIAL_KEYS, key) and "://" not in value and not value.startswith(("$", "{")):
        return True
    if re.search(_KNOWN, value):
        return True
    if len(value) < 24 or not re.match(_TOKEN_CHARS, value) or value.startswith("/") or "://" in value:
        return False
    if re.match(_HEX, value):  # a long hex key or token
        return len(value) >= 32 and any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
    # random-looking: upper and lower case and digits mixed, switching often (identifiers such as
    # orders_daily_v2 or DailyReport2024 switch rarely)
    mixed = any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value)
    return mixed and _entropy(value) >= 3.5 and _switches(value) >= 0.4


def _switches(text: str) -> float:
    """The share of neighbouring characters of different kinds (upper, lower, digit, other)."""
    kinds = ["u" if c.isupper() else "l" if c.islower() else "d" if c.isdigit() else "o" for c in text]
    return sum(a != b for a, b in itertools.pairwise(kinds)) / max(1, len(text) - 1)


def credential_places(value: Any, where: str, key: str | None = None) -> Iterator[str]:
    """Where inside a literal ``value`` something looks like a credential (for a validation warning)."""
    if is_secret_ref(value):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            yield from credential_places(v, f"{where}[{k!r}]", str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from credential_places(v, f"{where}[{i}]", key)
    elif looks_like_credential(key, value):
        yield where


def environment_source(env: Mapping[str, str]) -> SecretSource:
    """Secrets from a mapping of ``STRATO_SECRET_<NAME>`` variables (an emulator's settings)."""

    def read(name: str) -> str:
        if env_var(name) not in env:
            raise SecretUnavailable(f"secret {name!r} is not set: export {env_var(name)} with its value")
        return env[env_var(name)]

    return read


# ------------------------------------------------------------------------------- grants in the IR
def _add_value_secrets(ir: Any, value: Any, param_secrets: Mapping[str, set[str]], found: set[str]) -> None:
    """Add to ``found`` the secrets ``value`` hands over: references in its literals, and those of the
    parameters it reads (``ir`` is :mod:`strato.ir`, imported once by the caller). It runs for every
    argument of every node, so it makes no set per value."""
    if isinstance(value, ir.Literal):
        if isinstance(value.value, (dict, list)):  # a scalar holds no reference
            found.update(secret_names(value.value))
    elif isinstance(value, ir.Param):
        found.update(param_secrets.get(value.name, ()))
    elif isinstance(value, ir.ListOf):
        for item in value.items:
            _add_value_secrets(ir, item, param_secrets, found)
    elif isinstance(value, ir.DictOf):
        for _, item in value.entries:
            _add_value_secrets(ir, item, param_secrets, found)


def with_grants(root: PipelineIR) -> PipelineIR:
    """``root`` with each task's ``secrets``: the names that reach its arguments, through literals,
    parameter defaults and the arguments of sub-pipeline calls (a sub-pipeline called from several
    places is granted the union). What a shim may resolve for a task, and what infra lets it read."""
    from dataclasses import replace

    from . import ir

    pipelines = {root.name: root, **root.subpipelines}
    passed: dict[str, dict[str, set[str]]] = {name: {} for name in pipelines}
    grants: dict[str, dict[str, set[str]]] = {name: {} for name in pipelines}
    callers: dict[str, set[str]] = {name: set() for name in pipelines}  # a pipeline after all that call it
    for name, p in pipelines.items():
        for node in p.nodes:
            if isinstance(node, ir.SubPipelineNode) and node.pipeline in callers:
                callers[node.pipeline].add(name)
    try:
        order = list(graphlib.TopologicalSorter(callers).static_order())
    except graphlib.CycleError:  # recursion is refused by validation; grant what can be seen
        order = list(pipelines)
    for name in order:
        p = pipelines[name]
        params = {spec.name: set(secret_names(spec.default)) | passed[name].get(spec.name, set()) for spec in p.params}
        for node in p.nodes:
            args = dict(node.args) if hasattr(node, "args") else {}
            if isinstance(node, ir.SubPipelineNode):
                for arg, value in args.items():
                    _add_value_secrets(ir, value, params, passed.setdefault(node.pipeline, {}).setdefault(arg, set()))
                continue
            if isinstance(node, (ir.TaskNode, ir.MapNode)):
                found = grants[name].setdefault(node.task, set())
                for value in args.values():
                    _add_value_secrets(ir, value, params, found)
                if isinstance(node, ir.MapNode):
                    _add_value_secrets(ir, node.items, params, found)

    for hook in root.hooks.values():  # a hook's literal arguments (a webhook's URL) are granted to it
        found = grants[root.name].setdefault(hook.task, set())
        for value in hook.args.values():
            _add_value_secrets(ir, value, {}, found)

    def granted(p: PipelineIR) -> PipelineIR:
        tasks = {}
        for task_name, spec in p.tasks.items():
            names = tuple(sorted(set(spec.secrets) | grants.get(p.name, {}).get(task_name, set())))
            tasks[task_name] = spec if names == spec.secrets else replace(spec, secrets=names)
        return replace(p, tasks=tasks) if tasks != p.tasks else p

    children = {name: granted(child) for name, child in root.subpipelines.items()}
    top = granted(root)
    return top if children == root.subpipelines else replace(top, subpipelines=children)
