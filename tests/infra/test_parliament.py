"""Every IAM policy document the AWS component creates for the example pipelines passes ``parliament``
(https://github.com/duo-labs/parliament), the IAM linter: known actions, resources of the right type
for each action, no over-broad grants, well-formed conditions."""

from __future__ import annotations

import ast
import importlib
import importlib.resources
import importlib.util
import json
import sys
import types
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi")
pytest.importorskip("pulumi_aws")
if importlib.util.find_spec("parliament") is None:  # importorskip would fail on its import: see analyzer()
    pytest.skip("parliament is not installed (the dev extra)", allow_module_level=True)

from ..conftest import ROOT  # noqa: E402
from . import test_aws as aws_mocks  # noqa: E402

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
EXTRA = ["tests/infra/datasets.py:datasets", "tests/infra/secured.py:secured"]  # S3 datasets, secrets

# Findings parliament reports that are wrong about these documents, each with why; nothing else may appear.
EXPRESS = {"action": "states:DescribeExecution", "required_format": "arn:*:states:*:*:express:*:*:*"}
FALSE_POSITIVES: list[tuple[str, str, Any, str]] = [  # (document kind, issue, detail, why)
    ("trust", "MALFORMED", "Statement contains neither Resource nor NotResource",
     "parliament reads every document as an identity policy; a role's trust policy names a Principal and "
     "never a Resource (IAM refuses one in AssumeRolePolicyDocument)"),
    ("policy", "RESOURCE_MISMATCH", [EXPRESS],
     "the Service Authorization Reference lists both execution* and express* for states:DescribeExecution, "
     "and parliament wants both matched; an execution is one or the other, and the component's state "
     "machines are all STANDARD, whose executions are arn:...:execution:<machine>:<id>, the ARN granted"),
]


def false_positive(kind: str, finding: Any) -> bool:
    return any(kind == k and finding.issue == issue and finding.detail == detail
               for k, issue, detail, _ in FALSE_POSITIVES)


def analyzer() -> Any:
    """parliament's ``analyze_policy_string``. parliament 1.6.4 imports ``pkg_resources`` only to find its
    own data files, and setuptools 82 removed that module (duo-labs/parliament#247, open): when it is
    missing, the one function used is provided from ``importlib.resources`` for the import, then dropped."""
    try:
        import pkg_resources  # noqa: F401
    except ModuleNotFoundError:
        shim = types.ModuleType("pkg_resources")
        shim.resource_filename = lambda package, name: str(importlib.resources.files(package) / name)  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
        try:
            importlib.import_module("parliament")
        finally:
            del sys.modules["pkg_resources"]
    from parliament import analyze_policy_string

    return analyze_policy_string


def example_refs() -> list[str]:
    """Every ``@pipeline`` of ``examples/*.py``, as ``path:name``."""
    refs = []
    for path in EXAMPLES:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and any(
                    (d.func if isinstance(d, ast.Call) else d).id == "pipeline"  # type: ignore[attr-defined]
                    for d in node.decorator_list if isinstance(d.func if isinstance(d, ast.Call) else d, ast.Name)):
                refs.append(f"{path}:{node.name}")
    return refs


def test_the_examples_are_found() -> None:
    names = {ref.rsplit(":", 1)[1] for ref in example_refs()}
    assert {"daily_sales", "ingest_file", "exchange_rates", "revenue_report"} <= names


@pytest.fixture
def recorder() -> Any:
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())
    mocks = aws_mocks.Recorder()
    pulumi.runtime.set_mocks(mocks, preview=False)
    return mocks


def documents(recorder: Any) -> dict[str, str]:
    """Every IAM document the component made: role policies and trust policies, by resource name."""
    out = {f"policy {r.name}": r.inputs["policy"] for r in recorder.of("aws:iam/rolePolicy:RolePolicy")}
    out.update({f"trust {r.name}": r.inputs["assumeRolePolicy"] for r in recorder.of("aws:iam/role:Role")})
    return out


@pytest.mark.parametrize("ref", [*example_refs(), *EXTRA], ids=lambda r: r.rsplit(":", 1)[1])
@pulumi.runtime.test
def test_every_iam_document_passes_parliament(recorder: Any, ref: str) -> Any:
    analyze = analyzer()
    deployed = aws_mocks.deploy(ref)

    def check(_: Any) -> None:
        docs = documents(recorder)
        assert any(name.startswith("policy app-states") for name in docs) and len(docs) >= 4
        findings = []
        for name, text in sorted(docs.items()):
            for finding in analyze(text).findings:
                if not false_positive(name.split()[0], finding):
                    findings.append(f"{name}: {finding.issue} {finding.detail} {finding.location}")
        assert findings == []
        statements = [s for text in docs.values() for s in json.loads(text)["Statement"]]
        assert statements  # the documents were read, not skipped

    return aws_mocks.settled(deployed).apply(check)


def test_parliament_does_find_what_it_should() -> None:
    """The check above can fail: a wildcard, an unknown action and a mismatched resource are reported."""
    analyze = analyzer()
    bad = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b"}]}
    issues = {f.issue for f in analyze(json.dumps(bad)).findings}
    assert {"UNKNOWN_ACTION", "RESOURCE_MISMATCH"} <= issues


def test_each_documented_false_positive_still_occurs() -> None:
    """A false positive that parliament stopped reporting is dropped from the list, not kept as cover."""
    from strato.infra.aws.component import _assume, _policy

    analyze = analyzer()
    trust = analyze(_assume("lambda.amazonaws.com", "123456789012")).findings
    assert [f.issue for f in trust] == ["MALFORMED"] and false_positive("trust", trust[0])
    describe = analyze(_policy({"Effect": "Allow", "Action": "states:DescribeExecution",
                                "Resource": "arn:aws:states:eu-west-1:123456789012:execution:m:*"})).findings
    assert [f.issue for f in describe] == ["RESOURCE_MISMATCH"] and false_positive("policy", describe[0])
    assert not false_positive("policy", trust[0])  # a trust policy's exemption never covers a role policy
