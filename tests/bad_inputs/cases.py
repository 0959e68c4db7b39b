"""The bad-input corpus: every case is a user mistake the CLI must answer with a message, not a traceback.

A case names the command line, the files it needs, the exit code and a stable part of the message
(naming the place). ``writes`` says what the case may leave behind (nothing, unless a failed run is
the expected answer). ``{tmp}`` in arguments and environment is the case's own directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HEAD = "from strato import Retry, Schedule, otherwise, pipeline, task, when, wait\n\n"
STEP = "@task\ndef step(x: int = 0) -> int:\n    return x\n\n\n"


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: int
    message: str
    files: dict[str, str | bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    setup: str | None = None  # a named preparation in test_corpus.py
    writes: bool = False  # a failed run is recorded in the store: that is its answer
    skip_root: bool = False


def _pipeline(body: str, decorator: str = "@pipeline", tasks: str = STEP) -> str:
    return HEAD + tasks + f"{decorator}\ndef p():\n" + "".join(f"    {line}\n" for line in body.splitlines())


# (id, source, message): mistakes in a pipeline definition, each checked by validate, run and graph
DSL: list[tuple[str, str, str]] = [
    ("retry-negative", _pipeline("bad(1)", tasks="@task(retry=Retry(max_retries=-1))\ndef bad(x: int) -> int:\n"
                                 "    return x\n\n\n"), "task 'bad': retry.max_retries must be a whole number >= 0"),
    ("retry-backoff", _pipeline("bad(1)", tasks="@task(retry=Retry(backoff=0.5))\ndef bad(x: int) -> int:\n"
                                "    return x\n\n\n"), "task 'bad': retry.backoff must be a number >= 1"),
    ("retry-on-string", _pipeline("bad(1)", tasks="@task(retry=Retry(on='ValueError'))\ndef bad(x: int) -> int:\n"
                                  "    return x\n\n\n"),
     "task 'bad': retry.on must be a non-empty tuple of exception class names"),
    ("timeout-zero", _pipeline("bad(1)", tasks="@task(timeout=0)\ndef bad(x: int) -> int:\n    return x\n\n\n"),
     "task 'bad': timeout must be a number of seconds > 0"),
    ("memory-small", _pipeline("bad(1)", tasks="@task(memory=64)\ndef bad(x: int) -> int:\n    return x\n\n\n"),
     "task 'bad': memory is in MB"),
    ("tag-not-string", _pipeline("bad(1)", tasks="@task(tags={'env': 3})\ndef bad(x: int) -> int:\n"
                                 "    return x\n\n\n"), "task 'bad': tag 'env' has value 3; tag values are strings"),
    ("star-args", _pipeline("bad(1)", tasks="@task\ndef bad(x: int, *extra) -> int:\n    return x\n\n\n"),
     "task 'bad': parameter *extra: tasks take named parameters only"),
    ("cron-invalid", _pipeline("step(1)", "@pipeline(schedule=Schedule(cron='0 25 * * *'))"),
     "cron '0 25 * * *' is not a valid expression"),
    ("timezone-unknown", _pipeline("step(1)", "@pipeline(schedule=Schedule(cron='0 2 * * *', "
                                   "timezone='Mars/Olympus'))"), "unknown timezone 'Mars/Olympus'"),
    ("classification", _pipeline("step(1)", "@pipeline(tags={'data-classification': 'secret'})"),
     "data-classification 'secret' is not one of public, internal, confidential, restricted"),
    ("unknown-argument", _pipeline("step(1, region='eu')"), "task 'step': unknown argument 'region'; parameters are x"),
    ("set-argument", _pipeline("step({1, 2})"), "argument 'x' is a set, which is not JSON"),
    ("missing-argument", _pipeline("need()", tasks="@task\ndef need(rows: list) -> int:\n    return len(rows)\n\n\n"),
     "task 'need': missing argument(s) 'rows'"),
    ("when-handle", _pipeline("raw = step(1)\nwith when(raw):\n    step(2)"),
     "when() needs a comparison with a JSON literal"),
    ("when-two-handles", _pipeline("a = step(1)\nb = step(2)\nwith when(a > b):\n    step(3)"),
     "when() compares a result with a JSON literal"),
    ("cycle", _pipeline("first = step.alias('first')(1, wait_for=['later'])\nstep.alias('later')(first)"),
     "a call cannot wait for a call that waits for it; remove one of these wait_for entries"),
    ("cycle-three", _pipeline("a = step.alias('a')(1, wait_for=['c'])\nb = step.alias('b')(a)\nstep.alias('c')(b)"),
     "dependency cycle"),
    ("wait-for-itself", _pipeline("step.alias('a')(1, wait_for=['a'])"),
     "task 'a': waits for itself: wait_for names the call it is given to; remove that entry"),
    ("wait-for-unknown", _pipeline("step(1, wait_for=['nope'])"), "no call in pipeline 'p' has that name"),
    ("duplicate-name", _pipeline("step.alias('twice')(1)\nstep.alias('twice')(2)"), "two calls are named 'twice'"),
    ("if-on-handle", _pipeline("raw = step(1)\nif raw:\n    step(2)"), "p.py:"),
    ("otherwise-alone", _pipeline("step(1)\nwith otherwise():\n    step(2)"), "must directly follow"),
    ("and-not-amp", _pipeline("a = step(1)\nwith when((a > 1) and (a < 3)):\n    step(2)"), "p.py:"),
    ("map-not-list-literal", _pipeline("step.map(5)"), "p.py:"),
]

PIPELINE_OK = _pipeline("return {'x': step(1)}")
VALUES = HEAD + """@task
def nan() -> float:
    return float("nan")


@task
def inf() -> dict:
    return {"a": [1, float("inf")]}


@task
def aset() -> object:
    return {"s": {1, 2}}


@pipeline
def p_nan():
    return nan()


@pipeline
def p_inf():
    return inf()


@pipeline
def p_set():
    return aset()
"""
POLICIES = """from strato import Policy


class Raising(Policy):
    name = "raising"

    def check(self, pipeline):
        raise ValueError("boom")


raising = Raising()
not_a_policy = [42]
"""
BLOCK_SHIM = """import os, sys


class _Block:
    blocked = set(filter(None, os.environ.get("STRATO_TEST_BLOCK", "").split(",")))

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Block())
"""
OK = {"p.py": PIPELINE_OK}


def _cli_cases() -> list[Case]:
    cases: list[Case] = []
    for ident, source, message in DSL:
        files = {"p.py": source}
        cases.append(Case(f"validate-{ident}", ("validate", "{tmp}/p.py:p"), 1, message, files))
        cases.append(Case(f"run-{ident}", ("run", "{tmp}/p.py:p"), 1, message, files))
        cases.append(Case(f"graph-{ident}", ("graph", "{tmp}/p.py:p"), 1, message, files))
    big = "1" * 4301
    cases += [
        # the run store
        Case("store-garbage", ("runs", "list"), 1, "is not a usable SQLite database", setup="garbage_db"),
        Case("store-garbage-run", ("run", "{tmp}/p.py:p"), 1, "is not a usable SQLite database", OK,
             setup="garbage_db"),
        Case("store-truncated", ("runs", "list"), 1, "it may be corrupt or truncated", setup="truncated_db"),
        Case("store-truncated-show", ("runs", "show", "r1"), 1, "it may be corrupt or truncated", setup="truncated_db"),
        Case("store-newer", ("runs", "list"), 1, "was written by a newer strato (schema 99; this one reads up to 9)",
             setup="newer_db"),
        Case("store-newer-run", ("run", "{tmp}/p.py:p"), 1, "was written by a newer strato", OK, setup="newer_db"),
        Case("home-is-file", ("run", "{tmp}/p.py:p"), 1, "is a file, not a directory; point STRATO_HOME at a directory",
             OK, setup="home_file"),
        Case("home-under-file", ("run", "{tmp}/p.py:p"), 1, "lies under a file", OK,
             env={"STRATO_HOME": "{tmp}/afile/home"}, setup="afile"),
        Case("home-unwritable", ("run", "{tmp}/p.py:p"), 1, "cannot create STRATO_HOME /sys/strato-home", OK,
             env={"STRATO_HOME": "/sys/strato-home"}),
        Case("home-read-only", ("run", "{tmp}/p.py:p"), 1, "point STRATO_HOME at a writable directory", OK,
             setup="read_only_home", skip_root=True),
        Case("resume-no-store", ("resume", "nope"), 2, "no run 'nope': there is no run store at"),
        Case("show-no-store", ("runs", "show", "nope"), 2, "no run 'nope': there is no run store at"),
        Case("resume-unknown", ("resume", "nope"), 2, "no run 'nope' in", setup="empty_store"),
        Case("show-unknown", ("runs", "show", "nope"), 2, "no run 'nope' in", setup="empty_store"),
        # output directories
        Case("out-under-file", ("compile", "{tmp}/p.py:p", "--target", "aws", "--out", "{tmp}/afile/build"), 2,
             "--out {tmp}/afile/build: lies under {tmp}/afile, which is a file; give a directory", OK, setup="afile"),
        Case("out-is-file", ("compile", "{tmp}/p.py:p", "--target", "gcp", "--out", "{tmp}/afile"), 2,
             "error: --out: {tmp}/afile is a file; give a directory (see: strato compile --help)", OK, setup="afile"),
        Case("work-dir-under-file", ("emulate", "{tmp}/p.py:p", "--target", "gcp", "--work-dir", "{tmp}/afile/w"), 2,
             "--work-dir {tmp}/afile/w: lies under", OK, setup="afile"),
        # run input
        Case("input-huge-int", ("run", "{tmp}/p.py:p", "--input", '{"x": ' + big + "}"), 2,
             "--input has an integer of more than 4300 digits", OK),
        Case("input-binary", ("run", "{tmp}/p.py:p", "--input", "@{tmp}/input.bin"), 2,
             "--input @{tmp}/input.bin: not UTF-8 text", {**OK, "input.bin": b"\xff\xfe\x00\x01"}),
        Case("input-missing-file", ("run", "{tmp}/p.py:p", "--input", "@{tmp}/none.json"), 2,
             "--input @{tmp}/none.json: No such file or directory", OK),
        Case("input-not-json", ("run", "{tmp}/p.py:p", "--input", "{day: 1}"), 2, "--input is not valid JSON", OK),
        Case("input-array", ("run", "{tmp}/p.py:p", "--input", "[1]"), 2, "--input must be a JSON object", OK),
        Case("input-deep", ("run", "{tmp}/p.py:p", "--input", "[" * 100000), 2, "--input", OK),
        Case("emulate-input-binary", ("emulate", "{tmp}/p.py:p", "--target", "gcp", "--input", "@{tmp}/input.bin"), 2,
             "not UTF-8 text", {**OK, "input.bin": b"\xff\xfe"}),
        Case("input-unknown-param", ("run", "{tmp}/p.py:p", "--input", '{"nope": 1}'), 2, "nope", OK),
        # the environment
        Case("workers-abc", ("run", "{tmp}/p.py:p"), 2, "STRATO_WORKERS='abc': set it to a whole number", OK,
             env={"STRATO_WORKERS": "abc"}),
        Case("workers-zero", ("run", "{tmp}/p.py:p"), 2, "STRATO_WORKERS='0'", OK, env={"STRATO_WORKERS": "0"}),
        Case("workers-negative", ("run", "{tmp}/p.py:p"), 2, "STRATO_WORKERS='-4'", OK, env={"STRATO_WORKERS": "-4"}),
        Case("workers-option-zero", ("run", "{tmp}/p.py:p", "--workers", "0"), 2, "--workers", OK),
        # policies
        Case("policy-raises", ("validate", "{tmp}/p.py:p", "--policy", "policies:raising"), 1,
             "policy 'raising' raised ValueError: boom", {**OK, "policies.py": POLICIES}),
        Case("policy-raises-run", ("run", "{tmp}/p.py:p", "--policy", "policies:raising"), 1,
             "policy 'raising' raised ValueError: boom", {**OK, "policies.py": POLICIES}),
        Case("policy-not-policy", ("validate", "{tmp}/p.py:p", "--policy", "policies:not_a_policy"), 2,
             "42 is not a Policy", {**OK, "policies.py": POLICIES}),
        Case("policy-no-attr", ("validate", "{tmp}/p.py:p", "--policy", "policies"), 2, "write module:attribute",
             {**OK, "policies.py": POLICIES}),
        Case("policy-missing-module", ("validate", "{tmp}/p.py:p", "--policy", "nowhere:x"), 2, "nowhere", OK),
        # references and modules
        Case("module-exits", ("validate", "{tmp}/exits.py:p"), 1,
             "importing exits.py called sys.exit(3); a pipeline module must not exit when imported",
             {"exits.py": "import sys\nsys.exit(3)\n"}),
        Case("module-exits-run", ("run", "{tmp}/exits.py:p"), 1, "called sys.exit(3)",
             {"exits.py": "import sys\nsys.exit(3)\n"}),
        Case("module-exits-dotted", ("validate", "exits_mod:p"), 1, "importing exits_mod called sys.exit('bye')",
             {"exits_mod.py": "import sys\nsys.exit('bye')\n"}),
        Case("module-raises", ("validate", "{tmp}/raises.py:p"), 1, "raises.py:1: importing",
             {"raises.py": "raise RuntimeError('nope')\n"}),
        Case("module-syntax", ("validate", "{tmp}/syntax.py:p"), 1, "syntax.py:1: syntax error",
             {"syntax.py": "def (:\n"}),
        Case("relative-import", ("validate", "{tmp}/pkg/flows.py:p"), 2,
             "uses relative imports, so it cannot be loaded as a file; use the dotted module reference",
             {"pkg/__init__.py": "", "pkg/helpers.py": "X = 1\n", "pkg/flows.py": "from .helpers import X\n"}),
        Case("no-such-file", ("validate", "{tmp}/none.py:p"), 2, "no such file: {tmp}/none.py"),
        Case("no-such-module", ("validate", "no_such_module_x:p"), 2, "no module named 'no_such_module_x'"),
        Case("no-such-pipeline", ("validate", "{tmp}/p.py:q"), 2, "has no pipeline named 'q' (pipelines found: p)", OK),
        Case("empty-ref", ("validate", ":p"), 2, "is not a pipeline reference"),
        Case("bad-target", ("compile", "{tmp}/p.py:p", "--target", "mars"), 2, "'mars' is not one of", OK),
        # results that are not JSON (the run records its failure: that is the answer)
        Case("result-nan", ("run", "{tmp}/v.py:p_nan"), 1, "task 'nan' returned nan, which is not JSON",
             {"v.py": VALUES}, writes=True),
        Case("result-infinity", ("run", "{tmp}/v.py:p_inf", "--json"), 1,
             "task 'inf' returned inf at result['a'][1], which is not JSON", {"v.py": VALUES}, writes=True),
        Case("result-set", ("run", "{tmp}/v.py:p_set"), 1,
             "task 'aset' returned a set at result['s'], which is not JSON and has no stable order",
             {"v.py": VALUES}, writes=True),
        # a cloud extra that is not installed
        Case("missing-moto", ("emulate", "{tmp}/p.py:p", "--target", "aws"), 1,
             "install it with: pip install 'strato[emulate-aws]'", {**OK, "shim/sitecustomize.py": BLOCK_SHIM},
             env={"PYTHONPATH": "{tmp}/shim", "STRATO_TEST_BLOCK": "moto"}),
        Case("missing-boto3", ("emulate", "{tmp}/p.py:p", "--target", "aws"), 1,
             "install it with: pip install 'strato[emulate-aws]'", {**OK, "shim/sitecustomize.py": BLOCK_SHIM},
             env={"PYTHONPATH": "{tmp}/shim", "STRATO_TEST_BLOCK": "boto3,botocore,moto"}),
        Case("missing-yaml", ("compile", "{tmp}/p.py:p", "--target", "gcp", "--out", "{tmp}/build"), 1,
             "install it with: pip install 'strato[gcp]'", {**OK, "shim/sitecustomize.py": BLOCK_SHIM},
             env={"PYTHONPATH": "{tmp}/shim", "STRATO_TEST_BLOCK": "yaml"}),
        Case("missing-azure", ("emulate", "{tmp}/p.py:p", "--target", "azure"), 1,
             "install it with: pip install 'strato[emulate-azure]'", {**OK, "shim/sitecustomize.py": BLOCK_SHIM},
             env={"PYTHONPATH": "{tmp}/shim", "STRATO_TEST_BLOCK": "azure"}),
    ]
    return cases


CASES = _cli_cases()
