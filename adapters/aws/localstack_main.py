"""Start LocalStack (host mode) with a Distributed Map's ``ResultWriter`` writing its result files.

Run with LocalStack's own interpreter, by path, in place of ``python -m localstack.runtime.main``::

    .venv-localstack/bin/python adapters/aws/localstack_main.py

LocalStack's ``ResultWriter`` writes a manifest listing no result files (see
:mod:`strato.adapters.aws.result_files`), so a map over a computed list would come back empty.
"""

from __future__ import annotations

import importlib.util
import runpy
import sys
from pathlib import Path


def main() -> None:
    here = Path(__file__).resolve().parent
    # Running a file puts its folder first on the path, where this folder's secrets.py would shadow the
    # standard library's for everything LocalStack imports.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    spec = importlib.util.spec_from_file_location("strato_result_files", here / "result_files.py")
    assert spec is not None and spec.loader is not None
    result_files = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(result_files)  # by path: LocalStack's virtualenv has no strato

    from localstack.services.stepfunctions.asl.component.state.state_execution.state_map.iteration.itemprocessor.map_run_record import (  # noqa: E501
        MapRunRecordPoolManager,
    )
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_map.result_writer.resource_eval import (  # noqa: E501
        resource_eval_s3,
    )

    evaluator = resource_eval_s3.ResourceEvalS3
    evaluator._handle_put_object = staticmethod(result_files.writing_result_files(evaluator))
    MapRunRecordPoolManager.add = result_files.remembering_map_runs(MapRunRecordPoolManager)
    runpy.run_module("localstack.runtime.main", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
