"""What every cloud's deployment package is made of, and how it is written byte for byte the same.

A package is the user's project (the directory their pipeline module is imported from), Strato's own
files (copied from this installation: the cloud cannot install ``strato`` from a registry), and the
dependencies both declare, installed with pip for the cloud's platform so it builds the same from
any machine. The zip is deterministic: sorted entries, one fixed timestamp, fixed permissions, so an
unchanged project gives the same bytes and ``pulumi up`` shows no false diff.

The per-cloud parts (what goes where, which limits apply) live in each cloud's ``package.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

from strato.errors import Diagnostic, StratoError, UsageError

PLATFORM = "manylinux2014_x86_64"  # Lambda (x86_64) and Azure Functions on Linux
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
FILE_MODE = 0o644
MB = 1024 * 1024
# Never part of a project's code: caches, virtual environments, build output, version control.
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "build", "dist", "site-packages"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")
REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass
class PackageResult:
    """The package written, its sizes, and what the user should know."""

    path: Path
    zipped_bytes: int
    unzipped_bytes: int
    files: int
    warnings: list[Diagnostic] = field(default_factory=list)


def megabytes(size: int) -> str:
    return f"{size / MB:.1f} MB"


# ------------------------------------------------------------------------------------ requirements
def _name(requirement: str) -> str:
    match = REQUIREMENT_NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def strato_requirements(extra: str | None = None, only: Iterable[str] | None = None) -> list[str]:
    """Strato's own dependencies as this installation declares them: the core ones, plus those of
    ``extra`` (restricted to the distributions named in ``only`` when given), in declared order."""
    try:
        declared = requires("strato") or []
    except PackageNotFoundError:
        raise StratoError("strato is not installed as a distribution (no metadata found), so its dependencies "
                          "are unknown; install it with pip (pip install -e . in a checkout)") from None
    wanted = {_name(n) for n in only} if only is not None else None
    out = []
    for line in declared:
        spec, _, marker = (part.strip() for part in line.partition(";"))
        in_extra = re.search(r'extra\s*==\s*"([^"]+)"', marker)
        if in_extra is None and not marker:
            out.append(spec)
        elif extra is not None and in_extra and in_extra.group(1) == extra and _name(spec) != "strato":
            if wanted is None or _name(spec) in wanted:
                out.append(spec)
    return out


def project_requirements(project: Path) -> tuple[list[str], str | None]:
    """The dependencies a project declares (``requirements.txt``, else ``pyproject.toml``'s
    ``[project] dependencies``) and the file they came from. ``strato`` itself is left out: the package
    carries this installation's copy, since no registry has it. Nested ``-r`` files are inlined."""
    requirements = project / "requirements.txt"
    if requirements.is_file():
        return _requirement_lines(requirements, set()), "requirements.txt"
    pyproject = project / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{pyproject}: cannot read its dependencies ({exc})") from None
        deps = data.get("project", {}).get("dependencies", [])
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise UsageError(f"{pyproject}: [project] dependencies must be a list of requirement strings")
        return [d for d in deps if _name(d) != "strato"], "pyproject.toml"
    return [], None


def _requirement_lines(path: Path, seen: set[Path]) -> list[str]:
    if path.resolve() in seen:
        return []
    seen.add(path.resolve())
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({exc})") from None
    out: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        nested = re.match(r"^(-r|--requirement)[\s=]+(.+)$", line)
        if nested:
            out += _requirement_lines(path.parent / nested.group(2).strip(), seen)
        elif line.startswith(("-e", "--editable")) or (not line.startswith("-") and _name(line) == ""):
            raise UsageError(f"{path}:{number}: {line!r} is not a requirement a deployment can install (a local or "
                             "editable path); build a wheel of it or list it by name and version")
        elif not line.startswith("-") and _name(line) == "strato":
            continue  # the package carries Strato itself
        else:
            out.append(line)
    return out


def pip_install(requirements: list[str], target: Path, *, python_version: str, platform: str = PLATFORM) -> None:
    """Install ``requirements`` into ``target`` for ``platform`` and CPython ``python_version``, binary wheels
    only, so the result is what the cloud's Linux runs whatever this machine is. Console scripts (which
    would carry this machine's interpreter path) are removed."""
    if not requirements:
        return
    with tempfile.TemporaryDirectory(prefix="strato-pip-") as tmp:
        listing = Path(tmp) / "requirements.txt"
        listing.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
                   "--no-compile", "--no-warn-conflicts", "--target", str(target), "--platform", platform,
                   "--implementation", "cp",
                   "--python-version", python_version, "--only-binary=:all:", "-r", str(listing)]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
        except FileNotFoundError:
            raise StratoError(f"cannot run pip with {sys.executable}; install pip in this environment") from None
        if proc.returncode != 0:
            detail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
            raise StratoError(f"installing the package's dependencies for CPython {python_version} on {platform} "
                              f"failed (each needs a binary wheel for that platform, or a pure-Python one):\n"
                              f"{detail}")
    shutil.rmtree(target / "bin", ignore_errors=True)


# ------------------------------------------------------------------------------------------- files
def _is_tooling(path: Path) -> bool:
    """A virtual environment, or a Pulumi project (it deploys the package; it is not part of it)."""
    return (path / "pyvenv.cfg").is_file() or (path / "Pulumi.yaml").is_file()


def project_files(project: Path, skip: Iterable[Path] = ()) -> dict[str, Path]:
    """The project's files by their path in the package: everything under ``project`` except hidden
    entries, caches, virtual environments, Pulumi projects, build output and the ``skip`` paths (e.g.
    ``--out``)."""
    skipped = {p.resolve() for p in skip}
    found: dict[str, Path] = {}
    for directory, dirs, files in os.walk(project):
        here = Path(directory)
        dirs[:] = sorted(d for d in dirs if not (
            d.startswith(".") or d in SKIPPED_DIRS or d.endswith(".egg-info") or (here / d).resolve() in skipped
            or _is_tooling(here / d)))
        for name in sorted(files):
            path = here / name
            if name.startswith(".") or name.endswith(SKIPPED_SUFFIXES) or path.resolve() in skipped:
                continue
            found[path.relative_to(project).as_posix()] = path
    return found


def strato_files() -> dict[str, Path]:
    """This installation's ``strato`` package files by their path in a package (``strato/...``), with
    ``strato.infra`` (deployment tooling), ``strato.ui`` (the local web app) and caches left out,
    wherever the folders are installed (a wheel, or an editable checkout mapping ``framework/`` and
    ``adapters/``)."""
    import strato
    import strato.adapters

    roots = {"strato": Path(strato.__file__).parent, "strato/adapters": Path(strato.adapters.__file__).parent}
    found: dict[str, Path] = {}
    for prefix, root in roots.items():
        for directory, dirs, files in os.walk(root):
            here = Path(directory)
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not (
                here == roots["strato"] and d in ("adapters", "infra", "ui")))
            for name in sorted(files):
                if not name.endswith(SKIPPED_SUFFIXES):
                    found[f"{prefix}/{(here / name).relative_to(root).as_posix()}"] = here / name
    return found


def strato_metadata(requirements: list[str]) -> dict[str, bytes]:
    """A ``dist-info`` for the copied files, so ``importlib.metadata`` knows Strato's version there too."""
    try:
        strato_version = version("strato")
    except PackageNotFoundError:
        strato_version = "0"
    lines = ["Metadata-Version: 2.1", "Name: strato", f"Version: {strato_version}",
             *(f"Requires-Dist: {r}" for r in requirements), ""]
    info = f"strato-{strato_version}.dist-info"
    return {f"{info}/METADATA": "\n".join(lines).encode(), f"{info}/INSTALLER": b"strato package\n"}


def stage(files: Mapping[str, Path | bytes], root: Path) -> None:
    """Write ``files`` (paths to copy, or contents) under ``root``."""
    for name, source in files.items():
        destination = root / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            destination.write_bytes(source)
        else:
            shutil.copyfile(source, destination)


def refuse_conflicts(project: Mapping[str, Path], reserved: Iterable[str], target: str) -> None:
    """A project file the package writes itself (an entry point, ``strato/``) would be shadowed: say so."""
    clash = sorted(name for name in project for r in reserved if name == r or name.startswith(r.rstrip("/") + "/"))
    if clash:
        raise UsageError(f"the project has {', '.join(clash[:5])}, which the {target} package writes itself; rename "
                         "or move it")


def tree_size(root: Path) -> tuple[int, int]:
    """(bytes, files) under ``root``."""
    sizes = [p.stat().st_size for p in root.rglob("*") if p.is_file()]
    return sum(sizes), len(sizes)


def write_zip(root: Path, out: Path) -> int:
    """Zip the tree under ``root`` into ``out`` deterministically (sorted entries, fixed timestamp and
    permissions, no directory entries, no caches); returns the zip's size. Written beside ``out`` and
    renamed, so a failure leaves no half-written package."""
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(SKIPPED_SUFFIXES))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name in names:
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the permissions below apply when unzipped
            info.external_attr = (0o100000 | FILE_MODE) << 16
            archive.writestr(info, (root / name).read_bytes(), compresslevel=6)
    partial.replace(out)
    return out.stat().st_size


def assemble(root: Path, project: Mapping[str, Path], site: str, requirements: list[str], runtime: list[str],
             python_version: str | None) -> None:
    """Lay a package out under ``root``: dependencies installed into ``root/site`` (skipped when
    ``python_version`` is None: the cloud installs them), Strato's files beside them, the project's
    files at the top (last, so the project's own files win)."""
    site_dir = root / site if site else root
    site_dir.mkdir(parents=True, exist_ok=True)
    if python_version is not None:
        pip_install(requirements, site_dir, python_version=python_version)
    stage(strato_files(), site_dir)
    stage(strato_metadata(runtime), site_dir)
    stage(project, root)


def check_python_version(python_version: str) -> str:
    if not re.fullmatch(r"3\.\d{1,2}", python_version):
        raise UsageError(f"--python-version {python_version!r}: give the cloud's Python as major.minor, e.g. 3.12")
    return python_version


def project_of(module: str, module_file: str | None) -> Path:
    """The directory a module is imported from (what a package puts at its root): the file's folder for
    a top-level module, further up for each package level."""
    if not module_file:
        raise UsageError(f"module {module!r} has no file, so its project cannot be packaged")
    path = Path(module_file).resolve().parent
    levels = module.count(".") + (1 if Path(module_file).name == "__init__.py" else 0)
    for _ in range(levels):
        path = path.parent
    return path


__all__ = ["PLATFORM", "PackageResult", "assemble", "check_python_version", "megabytes", "pip_install",
           "project_files", "project_of", "project_requirements", "refuse_conflicts", "stage", "strato_files",
           "strato_metadata", "strato_requirements", "tree_size", "write_zip"]
