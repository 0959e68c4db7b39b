"""A Distributed Map's ``ResultWriter`` as Step Functions writes it, for emulators that write less.

moto 5.2 and LocalStack (the same interpreter) write only a manifest listing no result files, and
record a failed child as a ``null`` result. :func:`writing_result_files` gives a replacement for their
``ResourceEvalS3._handle_put_object`` that writes each result as an entry of ``SUCCEEDED_0.json``
(``Status``, ``Output`` as JSON text) and each ``null`` one as an entry of ``FAILED_0.json`` (no error
is kept for it), named in the manifest as AWS names them; only the fields Strato's runtime function
reads are filled. https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html

Imports nothing but the standard library: LocalStack's own interpreter loads it by path
(:mod:`strato.adapters.aws.localstack_main`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

_started = threading.local()  # the map run each thread started last: the one its ResultWriter writes


def writing_result_files(evaluator: Any) -> Callable[[Any, Any, Any], None]:
    """``_handle_put_object`` for the emulator's ``ResourceEvalS3`` class ``evaluator``."""

    def put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        parameters = env.stack.pop()
        results = env.stack.pop()
        s3 = evaluator._get_s3_client(resource_runtime_part=resource_runtime_part,
                                      state_credentials=state_credentials)
        # the emulators take the execution's newest map run, another map's when two ran (in parallel
        # branches, or one after the other); AWS writes each map run under its own id
        record = getattr(_started, "record", None) or env.map_run_record_pool_manager.get_all().pop()
        _started.record = None
        prefix = parameters.get("Prefix", "")
        prefix = f"{prefix}/" if prefix and not prefix.endswith("/") else prefix
        run = f"{prefix}{record.map_run_arn.split(':')[-1]}/"
        files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        entries = {"SUCCEEDED": [{"Status": "SUCCEEDED", "Output": json.dumps(r)} for r in results if r is not None],
                   "FAILED": [{"Status": "FAILED", "Error": "States.Runtime",
                               "Cause": "a child execution of the map failed"} for r in results if r is None]}
        for status, items in entries.items():
            if items:
                body = json.dumps(items).encode()
                s3.put_object(Bucket=parameters["Bucket"], Key=f"{run}{status}_0.json", Body=body)
                files[status].append({"Key": f"{run}{status}_0.json", "Size": len(body)})
        manifest = {"DestinationBucket": parameters["Bucket"], "MapRunArn": record.map_run_arn, "ResultFiles": files}
        s3.put_object(Bucket=parameters["Bucket"], Key=f"{run}manifest.json", Body=json.dumps(manifest).encode())
        env.stack.append({"MapRunArn": record.map_run_arn,
                          "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": f"{run}manifest.json"}})

    return put_object


def remembering_map_runs(pool_manager: Any) -> Callable[[Any, Any], None]:
    """``add`` for the emulator's ``MapRunRecordPoolManager`` that also notes, per thread, the map run
    just started: a Map state starts its run, waits for its items and evaluates its ResultWriter on
    one thread, so the ResultWriter finds its own run (:func:`writing_result_files`)."""
    original = pool_manager.add

    def add(self: Any, record: Any) -> None:
        original(self, record)
        _started.record = record

    return add
