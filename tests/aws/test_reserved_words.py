"""A task, a parameter and a result key named like JSONPath operators (``where``) compile to paths moto
and LocalStack parse as AWS does: the emulated run gives what ``strato run`` gives."""

from __future__ import annotations

import pytest

from ..conftest import Cli, assert_emulation_matches_run

REF = "tests/pipelines/reserved_words.py:reserved_words"


@pytest.mark.parametrize("payload", [{}, {"n": 0, "where": "there"}])
def test_names_jsonpath_parsers_reserve_run_as_on_the_local_runner(cli: Cli, payload: dict) -> None:
    assert_emulation_matches_run(cli, REF, payload, "--target", "aws")
