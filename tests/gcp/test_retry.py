"""Conformance of try/retry/except with the reference's "Retry steps" page and the http.default_retry* docs.

Backoff: "initial_delay: delay between the initial failure and the first retry; multiplier: applied to
the previous delay to calculate the delay for the subsequent retry; max_delay: maximum delay between
retries". So retry n waits ``min(initial_delay * multiplier**(n-1), max_delay)``, and ``max_retries``
counts retries after the first attempt. Waits go to the virtual clock and are recorded exactly.
"""

from __future__ import annotations

import time

import pytest

from strato.adapters.gcp.interpreter import (
    FunctionTransport,
    HttpRequest,
    HttpResponse,
    VirtualClock,
    WorkflowSyntaxError,
    load_workflow,
    run_workflow,
)

from .helpers import failure, result, run, tags


def flaky(codes: list[int]) -> FunctionTransport:
    """Answers with each status code in turn (then 200 forever)."""
    remaining = list(codes)

    def handler(request: HttpRequest) -> HttpResponse:
        code = remaining.pop(0) if remaining else 200
        return HttpResponse(code, {"attempt": len(transport.requests)})

    transport = FunctionTransport(handler)
    return transport


CUSTOM_BACKOFF = """
main:
  steps:
    - fetch:
        try:
          call: http.get
          args:
            url: https://svc.example/data
          result: response
        retry:
          predicate: ${http.default_retry_predicate}
          max_retries: 5
          backoff:
            initial_delay: 1
            max_delay: 5
            multiplier: 2
    - done:
        return: ${response.body}
"""


def test_backoff_delays_are_exact_and_capped() -> None:
    transport = flaky([503] * 10)
    clock = VirtualClock(start=0)
    execution = run(CUSTOM_BACKOFF, transport=transport, clock=clock)
    assert execution.state == "FAILED"
    assert execution.error["code"] == 503 and tags(execution.error) == ["HttpError"]
    assert execution.sleeps == [1, 2, 4, 5, 5]  # 1*2**n capped at max_delay
    assert len(transport.requests) == 6  # the first attempt plus max_retries
    assert [w.reason for w in execution.waits] == ["retry"] * 5
    assert [w.at for w in execution.waits] == [0, 1, 3, 7, 12]
    assert clock.now() == 17


def test_retry_until_success() -> None:
    transport = flaky([503, 502])
    execution = run(CUSTOM_BACKOFF, transport=transport)
    assert execution.result == {"attempt": 3}
    assert execution.sleeps == [1, 2]


def test_non_retriable_error_is_not_retried() -> None:
    transport = flaky([404])
    execution = run(CUSTOM_BACKOFF, transport=transport)
    assert execution.error["code"] == 404
    assert execution.sleeps == [] and len(transport.requests) == 1


def test_default_retry_policy() -> None:
    # http.default_retry: max_retries 5, retry.default_backoff (initial 1 s, multiplier 1.25, max 60 s).
    source = """
- fetch:
    try:
      call: http.get
      args:
        url: https://svc.example/data
      result: response
    retry: ${http.default_retry}
- done:
    return: ${response.body}
"""
    execution = run(source, transport=flaky([429, 503, 504]))
    assert execution.result == {"attempt": 4}
    assert execution.sleeps == [1, 1.25, 1.5625]
    exhausted = run(source, transport=flaky([503] * 10))
    assert exhausted.sleeps == [1, 1.25, 1.5625, 1.953125, 2.44140625]
    assert exhausted.error["code"] == 503


def test_default_predicates() -> None:
    # default_retry_predicate: 429, 502, 503, 504, ConnectionError, ConnectionFailedError, TimeoutError.
    # ..._non_idempotent: 429 and 503, and ConnectionFailedError only.
    def retried(predicate: str, codes: list[int]) -> int:
        source = CUSTOM_BACKOFF.replace("http.default_retry_predicate", predicate)
        return len(run(source, transport=flaky(codes)).sleeps)

    assert retried("http.default_retry_predicate", [502]) == 1
    assert retried("http.default_retry_predicate", [500]) == 0
    assert retried("http.default_retry_predicate_non_idempotent", [502]) == 0
    assert retried("http.default_retry_predicate_non_idempotent", [429, 503]) == 2
    assert retried("retry.always", [400, 401]) == 2
    assert retried("retry.never", [503]) == 0

    def network_failure(exc: Exception) -> FunctionTransport:
        calls: list[int] = []

        def handler(request: HttpRequest) -> HttpResponse:
            calls.append(1)
            if len(calls) == 1:
                raise exc
            return HttpResponse(200, "ok")

        return FunctionTransport(handler)

    for exc, idempotent, non_idempotent in ((TimeoutError("slow"), 1, 0), (ConnectionResetError("reset"), 1, 0),
                                            (ConnectionRefusedError("refused"), 1, 1)):
        for predicate, expected in (("http.default_retry_predicate", idempotent),
                                    ("http.default_retry_predicate_non_idempotent", non_idempotent)):
            source = CUSTOM_BACKOFF.replace("http.default_retry_predicate", predicate)
            assert len(run(source, transport=network_failure(exc)).sleeps) == expected, (exc, predicate)


CUSTOM_PREDICATE = """
main:
  steps:
    - init:
        assign:
          - attempts: 0
    - work:
        try:
          steps:
            - count:
                assign:
                  - attempts: ${attempts + 1}
            - fail:
                switch:
                  - condition: ${attempts < 3}
                    raise:
                      code: ${code}
                      message: "transient"
        retry:
          predicate: ${only_code_7}
          max_retries: ${limit}
          backoff:
            initial_delay: 10
            max_delay: 100
            multiplier: 3
    - done:
        return: ${attempts}
only_code_7:
  params: [e]
  steps:
    - check:
        switch:
          - condition: ${"code" in e and e.code == 7}
            return: true
    - no:
        return: false
"""


def test_custom_predicate_subworkflow() -> None:
    source = CUSTOM_PREDICATE.replace("${code}", "7").replace("${limit}", "${1 + 4}")
    execution = run(source)
    assert execution.result == 3
    assert execution.sleeps == [10, 30]
    other = run(CUSTOM_PREDICATE.replace("${code}", "8").replace("${limit}", "5"))
    assert other.error == {"code": 8, "message": "transient"}
    assert other.sleeps == []


def test_retries_exhausted_then_except() -> None:
    source = """
- work:
    try:
      raise:
        code: 503
        tags: ["HttpError"]
        message: "always"
    retry:
      predicate: ${http.default_retry_predicate}
      max_retries: 2
      backoff:
        initial_delay: 0.5
        max_delay: 10
        multiplier: 4
    except:
      as: e
      steps:
        - handled:
            return: '${"gave up - " + e.message}'
"""
    execution = run(source)
    assert execution.result == "gave up - always"
    assert execution.sleeps == [0.5, 2.0]


def test_predicate_must_answer_a_boolean() -> None:
    source = CUSTOM_PREDICATE.replace("${code}", "7").replace("${limit}", "5").replace("return: true", "return: 1")
    assert tags(failure(source)) == ["TypeError"]


def test_long_backoff_does_not_sleep_for_real() -> None:
    source = CUSTOM_BACKOFF.replace("initial_delay: 1", "initial_delay: 3600").replace("max_delay: 5",
                                                                                      "max_delay: 86400")
    began = time.monotonic()
    execution = run_workflow(source, transport=flaky([503] * 3))
    assert time.monotonic() - began < 30  # the virtual delay is hours: nothing slept for real
    assert execution.sleeps == [3600, 7200, 14400]
    assert execution.duration == 25200


def test_retry_counts_as_steps() -> None:
    execution = run(CUSTOM_BACKOFF, transport=flaky([503, 503]))
    assert execution.steps_executed == 2 + 2  # fetch, done, and each retry of fetch


def test_try_needs_retry_or_except() -> None:
    with pytest.raises(WorkflowSyntaxError, match=r"step 't' of 'main': 'try' needs 'retry' or 'except'"):
        load_workflow([{"t": {"try": {"return": 1}}}])
    with pytest.raises(WorkflowSyntaxError, match=r"needs 'backoff'"):
        load_workflow([{"t": {"try": {"return": 1}, "retry": {"predicate": "${retry.always}", "max_retries": 1}}}])
    assert result([{"t": {"try": {"return": 1}, "retry": "${http.default_retry}"}}]) == 1
