"""Deployment packages: the runtime extras hold no emulator, and `strato package` builds what each cloud runs."""

from __future__ import annotations

import re
from importlib.metadata import requires

EMULATORS = {"moto", "statelint", "jsonschema", "localstack-core", "localstack-client"}


def _extra(name: str) -> set[str]:
    """The distributions strato's ``name`` extra names directly."""
    found = set()
    for line in requires("strato") or []:
        spec, _, marker = line.partition(";")
        if re.search(rf'extra\s*==\s*"{re.escape(name)}"', marker):
            found.add(re.split(r"[\s\[<>=!~;]", spec.strip(), maxsplit=1)[0].lower())
    return found


def test_runtime_extras_hold_no_emulator_and_emulation_extras_bring_the_runtime() -> None:
    for cloud in ("aws", "gcp", "azure"):
        runtime = _extra(cloud)
        assert runtime and not runtime & EMULATORS, f"strato[{cloud}] holds {sorted(runtime & EMULATORS)}"
        assert "strato" in _extra(f"emulate-{cloud}"), f"emulate-{cloud} does not bring strato[{cloud}]"
    assert "moto" in _extra("emulate-aws") and "jsonschema" in _extra("emulate-gcp")
    assert "boto3" not in _extra("gcp") | _extra("azure")
    assert _extra("emulate") == {"strato"}


# --------------------------------------------------------------------------------- strato package
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import zipfile  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from strato.adapters.common import packaging  # noqa: E402

from .conftest import ROOT  # noqa: E402

DAILY_SALES = f"{ROOT / 'examples' / 'daily_sales.py'}:daily_sales"
INGEST = f"{ROOT / 'examples' / 'file_ingestion.py'}:ingest_file"
HERE = f"{sys.version_info[0]}.{sys.version_info[1]}"  # built for this interpreter, so the test can import it


@pytest.fixture(scope="session", autouse=True)
def pip_cache(request: pytest.FixtureRequest) -> Iterator[None]:
    """pip's downloads cached under the pytest cache, so a second run builds without downloading."""
    before = os.environ.get("PIP_CACHE_DIR")
    os.environ["PIP_CACHE_DIR"] = str(request.config.cache.mkdir("strato-pip"))
    yield
    if before is None:
        os.environ.pop("PIP_CACHE_DIR", None)
    else:
        os.environ["PIP_CACHE_DIR"] = before


def strato(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "strato", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env={**os.environ, "STRATO_NO_PROGRESS": "1"})


def built(args: list[str]) -> Path:
    proc = strato("package", *args)
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert path.is_file()
    return path


@pytest.fixture(scope="module")
def lambda_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built([DAILY_SALES, "--target", "aws", "--out", str(tmp_path_factory.mktemp("aws")),
                  "--python-version", HERE])


def tops(names: list[str], under: str = "") -> set[str]:
    return {n[len(under):].split("/")[0] for n in names if n.startswith(under)}


def test_the_lambda_package_holds_the_project_strato_and_its_runtime_but_no_emulator_or_boto3(
        lambda_zip: Path) -> None:
    with zipfile.ZipFile(lambda_zip) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names) and len(names) == len(set(names))
    assert {"daily_sales.py", "data/sales/2024-03-01/north.csv", "strato/adapters/aws/shim.py",
            "strato/__init__.py"} <= set(names)
    top = tops(names)
    assert {"pydantic", "pydantic_core", "croniter", "rich"} <= top
    assert not top & {"moto", "boto3", "botocore", "s3transfer", "statelint", "jsonschema", "yaml", "pulumi",
                      "bin"}, top
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("strato/infra/")]
    assert {i.date_time for i in infos} == {packaging.ZIP_TIME}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert lambda_zip.stat().st_size < 50 * packaging.MB


def test_the_unzipped_lambda_package_runs_a_task_with_nothing_but_the_standard_library(lambda_zip: Path,
                                                                                       tmp_path: Path) -> None:
    """The handler Lambda calls, importing only from the package (``-S``: no site-packages at all)."""
    from strato.adapters.common.tasks import manifest
    from strato.loader import load

    zipfile.ZipFile(lambda_zip).extractall(tmp_path)
    catalog = json.dumps(manifest(load(DAILY_SALES).definition.ir, ["extract"]))
    code = ("import importlib.util, json, strato, pydantic; from strato.adapters.aws.shim import handler; "
            "print(json.dumps({'strato': strato.__file__, 'boto3': importlib.util.find_spec('boto3') is not None, "
            "'result': handler({'task': 'extract', 'args': {'day': {'literal': '2024-03-01'}}}, None)}))")
    env = {"PYTHONPATH": str(tmp_path), "STRATO_TASKS": catalog, "LAMBDA_TASK_ROOT": str(tmp_path),
           "PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["strato"] == str(tmp_path / "strato" / "__init__.py") and out["boto3"] is False
    assert "'count': 3" in repr(out["result"]) or '"count": 3' in json.dumps(out["result"])


def test_a_package_is_the_same_bytes_when_built_again(lambda_zip: Path, tmp_path: Path) -> None:
    again = built([DAILY_SALES, "--target", "aws", "--out", str(tmp_path), "--python-version", HERE])
    assert again.read_bytes() == lambda_zip.read_bytes()


def _project(tmp_path: Path, extra: dict[str, str | bytes] | None = None) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "flow.py").write_text(
        "from strato import pipeline, task\n\n@task\ndef one() -> int:\n    return 1\n\n@pipeline\ndef flow():\n"
        "    return {'one': one()}\n")
    for name, content in (extra or {}).items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return project


def test_lambda_refuses_a_package_over_50_mb_zipped_and_over_250_mb_unzipped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The limits, with sizes in the message and nothing written (dependencies stubbed: this is about size)."""
    from strato.adapters.aws.package import build_package
    from strato.errors import StratoError
    from strato.loader import load

    monkeypatch.setattr(packaging, "pip_install", lambda *a, **k: None)
    project = _project(tmp_path, {"blob.bin": os.urandom(51 * packaging.MB)})
    pipeline = load(f"{project / 'flow.py'}:flow").definition.ir
    out = tmp_path / "out"
    with pytest.raises(StratoError, match=r"is 51\.\d MB zipped .*at most 50\.0 MB zipped by direct upload\. "
                                          r"Upload it through S3"):
        build_package(pipeline, project, out, python_version=HERE)
    assert not out.exists() or not list(out.iterdir())
    assert build_package(pipeline, project, out, python_version=HERE, via_s3=True).zipped_bytes > 50 * packaging.MB
    (project / "blob.bin").unlink()
    with open(project / "huge.bin", "wb") as sparse:  # 251 MB without writing them
        sparse.truncate(251 * packaging.MB)
    with pytest.raises(StratoError, match=r"would be 25[12]\.\d MB unzipped; Lambda takes at most 250\.0 MB"):
        build_package(pipeline, project, tmp_path / "out2", python_version=HERE, via_s3=True)
    assert not (tmp_path / "out2").exists() or not list((tmp_path / "out2").iterdir())


def test_the_cloud_functions_source_holds_main_strato_and_merged_requirements(tmp_path: Path) -> None:
    project = _project(tmp_path, {"requirements.txt": "strato[gcp]==0.1.0\n-r more.txt\nrequests>=2  # http\n",
                                  "more.txt": "humanize==4.9.0\n", ".env": "SECRET=1\n",
                                  "lib/__pycache__/x.cpython-311.pyc": b"\0"})
    path = built([f"{project / 'flow.py'}:flow", "--target", "gcp", "--out", str(tmp_path / "out")])
    archive = zipfile.ZipFile(path)
    names = archive.namelist()
    assert {"flow.py", "main.py", "requirements.txt", "strato/adapters/gcp/shim.py", "more.txt"} <= set(names)
    assert not [n for n in names if n.startswith((".env", "lib/"))]
    assert "from strato.adapters.gcp.shim import handler" in archive.read("main.py").decode()
    requirements = archive.read("requirements.txt").decode().splitlines()
    assert "functions-framework>=3.5" in requirements and "pydantic>=2.6" in requirements
    assert requirements[-2:] == ["humanize==4.9.0", "requests>=2"]
    assert not [r for r in requirements if r.startswith(("strato", "moto", "jsonschema", "boto3", "PyYAML"))]
    assert built([f"{project / 'flow.py'}:flow", "--target", "gcp", "--out", str(tmp_path / "again")]).read_bytes() \
        == path.read_bytes()


@pytest.mark.parametrize(("extra", "args", "code", "message"), [
    ({"main.py": "x = 1\n"}, ["--target", "gcp"], 2, "the project has main.py, which the Cloud Functions package "
                                                     "writes itself"),
    ({"requirements.txt": "-e ./lib\n"}, ["--target", "aws"], 2, "requirements.txt:1: '-e ./lib' is not a "
                                                                 "requirement a deployment can install"),
    ({}, ["--target", "gcp", "--s3"], 2, "--s3 is for --target aws"),
    ({}, ["--target", "aws", "--python-version", "312"], 2, "--python-version '312': give the cloud's Python"),
    ({"requirements.txt": "no-such-distribution-strato-test==0.0.1\n"}, ["--target", "aws"], 1,
     "installing the package's dependencies for CPython 3.12 on manylinux2014_x86_64 failed"),
])
def test_packaging_mistakes_get_a_message_and_write_nothing(tmp_path: Path, extra: dict[str, str], args: list[str],
                                                             code: int, message: str) -> None:
    project = _project(tmp_path, extra)
    proc = strato("package", f"{project / 'flow.py'}:flow", *args, "--out", str(tmp_path / "out"))
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_declared_dependencies_come_from_pyproject_without_strato(tmp_path: Path) -> None:
    project = _project(tmp_path, {"pyproject.toml": "[project]\nname = 'p'\nversion = '1'\ndependencies = "
                                                    "['strato[aws]>=0.1', 'humanize>=4']\n"})
    assert packaging.project_requirements(project) == (["humanize>=4"], "pyproject.toml")


def test_the_azure_app_package_installs_what_its_requirements_say_for_run_from_package(tmp_path: Path) -> None:
    """The slow one: every dependency of the app for Linux, and the compiled app at the top."""
    path = built([INGEST, "--target", "azure", "--out", str(tmp_path), "--python-version", HERE])
    archive = zipfile.ZipFile(path)
    names = archive.namelist()
    site = ".python_packages/lib/site-packages/"
    assert {"function_app.py", "host.json", "requirements.txt", "file_ingestion.py"} <= set(names)
    compiled = subprocess.run([sys.executable, "-m", "strato", "compile", INGEST, "--target", "azure", "--out",
                               str(tmp_path / "app")], capture_output=True, text=True, check=True)
    app_dir = Path(compiled.stdout.splitlines()[0]).parent
    assert archive.read("function_app.py") == (app_dir / "function_app.py").read_bytes()
    assert archive.read("requirements.txt") == (app_dir / "requirements.txt").read_bytes()
    installed = {n[len(site):].split("/")[0].split("-")[0].lower().replace("_", "-") for n in names
                 if n.startswith(site) and ".dist-info/" in n}
    wanted = [line for line in archive.read("requirements.txt").decode().splitlines() if not line.startswith("#")]
    assert wanted and {packaging._name(r) for r in wanted} <= installed
    assert {"strato", "azure-functions-durable", "pydantic-core"} <= installed
    assert not installed & {"moto", "boto3", "jsonschema", "statelint", "pulumi"}
    assert not [n for n in names if "__pycache__" in n or n.startswith(f"{site}bin/")]
    zip_root = tmp_path / "unzipped"
    archive.extractall(zip_root)
    code = "import strato.adapters.azure.shim, azure.durable_functions, azure.functions; print('ok')"
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(zip_root / site), "PATH": os.environ["PATH"]})
    assert proc.stdout.strip() == "ok", proc.stderr


def test_the_azure_app_bounds_the_durable_sdk_to_versions_whose_task_any_rescheduling_works() -> None:
    from importlib.metadata import version

    from strato.adapters.azure.compiler import requirements_txt

    assert "azure-functions-durable<2,>=1.2.6" in requirements_txt().splitlines()
    major, minor, patch = (int(p) for p in version("azure-functions-durable").split(".")[:3])
    assert (1, 2, 6) <= (major, minor, patch) < (2, 0, 0)  # what the emulator drives is what is deployed
