"""The ``strato`` command. Exit codes: 0 success, 1 failed run or invalid pipeline, 2 usage error.

Each command is a function registered by :func:`command` with its ``add_argument`` specs. :func:`main`
builds the argparse parser of the invoked command alone, and a command imports what it needs when it
runs (even :mod:`strato.errors`): ``strato --help`` loads argparse and this module, little more.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path
    from typing import Any, NoReturn, TypeVar

    from .errors import Diagnostic

    F = TypeVar("F", bound=Callable[..., Any])
    Arg = tuple[tuple[str, ...], dict[str, Any]]

FORMATS = ("mermaid", "dot")
# strato.targets.TARGETS, which cannot be imported for free: that module loads importlib.metadata
BUILTIN_TARGETS = ("aws", "gcp", "azure")


_JSON_OUT: list[Any] = []  # the real stdout while a --json command keeps it for its one object


def _echo_json(data: Any) -> None:
    import json

    print(json.dumps(data, indent=2, ensure_ascii=False), file=_JSON_OUT[-1] if _JSON_OUT else None)


class _json_only:
    """With ``--json``, stdout holds only the JSON object: anything else printed meanwhile (a module
    printing at import, a task's own thread) goes to stderr."""

    def __init__(self, active: bool) -> None:
        self.active = active

    def __enter__(self) -> None:
        if self.active:
            _JSON_OUT.append(sys.stdout)
            sys.stdout = sys.stderr

    def __exit__(self, *exc: object) -> None:
        if self.active:
            sys.stdout = _JSON_OUT.pop()


def _fail(message: str, code: int = 1) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


# "validate", "runs", "runs list", ...: the function each command runs, and its add_argument specs
_COMMANDS: dict[str, tuple[Callable[..., Any], tuple[Arg, ...]]] = {}


def command_names() -> set[str]:
    """Every command, subcommands as ``"runs list"``."""
    return set(_COMMANDS)


def arg(*flags: str, **options: Any) -> Arg:
    """One ``add_argument`` call. Besides argparse's keywords: ``env="VAR"`` makes the variable (read when
    parsing) the default; ``show_default=True`` ends the help with the default."""
    return flags, options


def command(*args: Arg, name: str | None = None) -> Callable[[F], F]:
    """Register ``fn`` as the command ``name`` (``"runs list"`` for a group's subcommand; by default the
    function's name). Its docstring's first line is its line in the list of commands, the rest its help."""

    def register(fn: F) -> F:
        _COMMANDS[name or fn.__name__] = (fn, args)
        return fn

    return register


def _ranged(kind: Callable[[str], float], low: float | None = None, high: float | None = None) -> Callable[[str], Any]:
    """``type=``: an int or float, within [low, high] where given."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
            if value != value:  # NaN
                raise ValueError(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{low}<=x<={high}" if low is not None and high is not None else (
                f"x>={low}" if low is not None else f"x<={high}")
            raise argparse.ArgumentTypeError(f"{text} is not in the range {bounds}")
        return value

    return convert


def _one_of(choices: Sequence[str], value: str, given: str | None = None) -> str:
    if value not in choices:
        raise argparse.ArgumentTypeError(f"{given or value!r} is not one of {', '.join(map(repr, choices))}")
    return value


def _format(text: str) -> str:
    """``graph --format``."""
    return _one_of(FORMATS, text)


def _status(text: str) -> str:
    """``runs list --status``: in any case."""
    return _one_of(_STATUSES, text.upper(), text)


def _target(text: str) -> str:
    """``--target``: a built-in target, or one installed through the ``strato.adapters`` entry points (whose
    names are read, from package metadata, only for another name)."""
    if text in BUILTIN_TARGETS:
        return text
    from .targets import target_names

    return _one_of(target_names(), text)


def _directory(text: str) -> str:
    """``--out``, ``--work-dir``: a directory, which need not exist yet."""
    if os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text} is a file; give a directory")
    return text


class _Parser(argparse.ArgumentParser):
    """A usage error is one line on stderr: ``error:``, the option or argument, what is wrong, where to
    read more; exit code 2."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("argument "):  # "argument --target: 'mars' is not one of ..."
            message = message[len("argument "):]
        _fail(f"{message} (see: {self.prog} --help)", 2)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Docstrings keep their paragraphs; the width is the terminal's, found without shutil (which argparse
    would import for every argument added)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=_columns() - 2)


def _columns() -> int:
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 80
    return max(columns, 40)


class _Version(argparse.Action):
    """``--version``: the installed distribution's version, read only when asked for."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("strato")
        except PackageNotFoundError:
            from . import __version__ as number
        print(f"strato, version {number}")
        parser.exit()


def _doc(fn: Callable[..., Any]) -> str:
    """A function's docstring without its indentation."""
    first, *rest = (fn.__doc__ or "").expandtabs().splitlines() or [""]
    indent = min((len(line) - len(line.lstrip()) for line in rest if line.strip()), default=0)
    return "\n".join([first.strip(), *(line[indent:] for line in rest)]).strip()


def _commands_of(group: str) -> list[str]:
    """The commands of ``group`` ("" for strato itself): ``["list", "logs", ...]`` for ``"runs"``."""
    prefix = f"{group} " if group else ""
    return sorted(key[len(prefix):] for key in _COMMANDS if key.startswith(prefix) and " " not in key[len(prefix):])


def _parser(name: str, helping: bool = True) -> _Parser:
    """The parser of the command ``name`` alone ("" for strato itself): a group's takes one of its commands
    and that command's arguments, a command its own."""
    parser = _Parser(prog=f"strato {name}".rstrip(), description=_doc(_COMMANDS[name][0] if name else main),
                     formatter_class=_Formatter, allow_abbrev=False)
    commands = _commands_of(name)
    if not commands:
        for flags, options in _COMMANDS[name][1]:
            parser.add_argument(*flags, **_options(flags, options, helping))
        return parser
    if not name:
        parser.add_argument("--version", action=_Version, nargs=0, default=argparse.SUPPRESS,
                            help="Show the version and exit.")
    parser.usage = f"%(prog)s [-h]{'' if name else ' [--version]'} COMMAND ..."
    parser.add_argument("command", nargs="?", type=lambda text: _one_of(commands, text), metavar="COMMAND",
                        help=argparse.SUPPRESS)
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    if helping:  # a line each: the first of the command's docstring
        import textwrap

        pad, prefix = max(map(len, commands)) + 2, f"{name} " if name else ""
        parser.add_argument_group("commands", "\n".join(
            textwrap.fill(_doc(_COMMANDS[prefix + command][0]).split("\n")[0], _columns() - 4,
                          initial_indent=command.ljust(pad), subsequent_indent=" " * pad) for command in commands))
    return parser


def _options(flags: tuple[str, ...], options: dict[str, Any], helping: bool) -> dict[str, Any]:
    """The add_argument keywords of a spec (see :func:`arg`)."""
    options = dict(options)
    env = options.pop("env", None)
    if env is not None:
        options["default"] = os.environ.get(env) or None
    if options.pop("show_default", False):
        options["help"] = f"{options.get('help', '')} (default: {options['default']})".lstrip()
    if not flags[0].startswith("-"):
        options.setdefault("metavar", flags[0].upper())
    if options.get("type") is _target:  # the installed targets are read from package metadata for --help only
        names: Sequence[str] = BUILTIN_TARGETS
        if helping:
            from .targets import target_names

            names = tuple(target_names())
        options.setdefault("metavar", "{" + ",".join(names) + "}")
    return options


def _show_help(group: str) -> NoReturn:
    """A group invoked without a command: its help, as a usage error."""
    _parser(group).print_help(sys.stderr)
    sys.exit(2)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Strato: define data pipelines once, run them locally or compile them to each cloud's state machine."""
    args = list(sys.argv[1:] if argv is None else argv)
    helping = "-h" in args or "--help" in args
    name, options = "", {}  # only the invoked command's parser is built (each costs 0.1-0.2 ms)
    while commands := _commands_of(name):
        if args and args[0] in commands:
            name, args = f"{name} {args[0]}".lstrip(), args[1:]
            continue
        level = _parser(name, helping).parse_args(args)  # --help, --version, a mistake, or `--` before a command
        if level.command is None:
            break  # a group alone: `strato runs` lists the runs, `strato` and `strato pools` show their help
        name, args = f"{name} {level.command}".lstrip(), level.args
    else:  # options and arguments in any order, as in `strato runs logs RUN_ID --json TASK`
        options = vars(_parser(name, helping).parse_intermixed_args(args))
    if not name:
        _show_help(name)
    try:
        try:  # repeated options (action="append") are tuples
            _COMMANDS[name][0](**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})
        finally:
            sys.stdout.flush()
            if argv is None:  # the process ends here: collecting cycles at exit only delays it (about 12 ms)
                store = sys.modules.get("strato.runtime.store")
                if store is not None:  # what the collection would have closed
                    store.close_all()
                gc.freeze()
    except (KeyboardInterrupt, EOFError):
        print("\nAborted!", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:  # `strato runs list | head -1`: the reader is gone, so is the output
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    sys.exit(0)


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the user's mistakes into messages and exit codes, never tracebacks."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .errors import DefinitionError, StratoError, UsageError

        try:
            return fn(*args, **kwargs)
        except UsageError as exc:
            _fail(str(exc), 2)
        except DefinitionError as exc:
            for diagnostic in exc.diagnostics + exc.warnings:
                print(str(diagnostic), file=sys.stderr)
            _fail(f"{len(exc.diagnostics)} error(s); nothing was run or written", 1)
        except StratoError as exc:
            _fail(str(exc), 1)
        except ModuleNotFoundError as exc:
            extra = _missing_extra(exc.name or "", emulating=fn.__name__ == "emulate")
            if extra is None:
                raise
            _fail(f"{fn.__name__}: this needs the {extra} extra, which is not installed (no module named "
                  f"{exc.name!r}); install it with: pip install 'strato[{extra}]'", 1)
        except Exception as exc:
            sqlite3 = sys.modules.get("sqlite3")  # not imported by the CLI itself: --help never loads it
            if sqlite3 is None or not isinstance(exc, sqlite3.Error):
                raise
            from .runtime.store import _store_error, store_path

            _fail(str(_store_error(str(store_path()), exc)), 1)

    return wrapper


# the top-level module of a cloud SDK or an emulator -> the extra that brings it
_EXTRAS = {"boto3": "aws", "botocore": "aws", "google": "gcp", "functions_framework": "gcp", "yaml": "gcp",
           "azure": "azure", "pulumi": "pulumi", "moto": "emulate-aws", "statelint": "emulate-aws",
           "jsonschema": "emulate-gcp", "starlette": "ui", "uvicorn": "ui"}


def _missing_extra(module: str, emulating: bool = False) -> str | None:
    """The extra to install for ``module``; when emulating, the cloud's emulation extra, which brings the
    cloud's runtime extra too (``pip install 'strato[aws]'`` alone would still miss moto)."""
    root = module.split(".", 1)[0]
    extra = "pulumi" if root.startswith("pulumi") else _EXTRAS.get(root)
    return f"emulate-{extra}" if emulating and extra in ("aws", "gcp", "azure") else extra


def _policies(specs: tuple[str, ...]) -> list[Any]:
    from .errors import UsageError
    from .governance import Policy

    found = []
    for spec in specs:
        module_name, _, attr = spec.partition(":")
        if not attr:
            raise UsageError(f"--policy {spec!r}: write module:attribute (a Policy or a list of them)")
        import importlib

        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise UsageError(f"--policy {spec!r}: {exc}") from None
        items = obj if isinstance(obj, (list, tuple)) else [obj]
        for item in items:
            if not isinstance(item, Policy):
                raise UsageError(f"--policy {spec!r}: {item!r} is not a Policy")
            found.append(item)
    return found


def _read_input(value: str | None) -> dict:
    if value is None:
        return {}
    import json
    from pathlib import Path

    from .errors import UsageError

    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"--input {value}: not UTF-8 text (byte {exc.start}); give a JSON file") from None
        except OSError as exc:
            raise UsageError(f"--input {value}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--input is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError as exc:
        if "digits" in str(exc):  # an integer longer than sys.get_int_max_str_digits()
            raise UsageError(f"--input has an integer of more than {sys.get_int_max_str_digits()} digits, which "
                             "cannot be read; pass such a number as a string") from None
        raise UsageError(f"--input cannot be read: {exc}") from None
    except RecursionError:
        raise UsageError("--input is nested too deeply to read") from None
    if not isinstance(data, dict):
        raise UsageError("--input must be a JSON object of the pipeline's parameters")
    return data


def _instant(option: str, value: str | None) -> Any:
    """An ISO 8601 option value as an aware UTC datetime (naive means UTC), or a usage error naming it."""
    from .errors import StratoError, UsageError
    from .run_context import parse_instant

    try:
        return parse_instant(value)
    except StratoError as exc:
        raise UsageError(f"{option}: {exc}") from None


def _writable_dir(option: str, value: str) -> Path:
    """Refuse an output directory that is, or lies under, a file, before anything is written."""
    from pathlib import Path

    from .errors import UsageError

    path = Path(value)
    for place in (path, *path.parents):
        if place.exists() and not place.is_dir():
            what = "is a file" if place == path else f"lies under {place}, which is a file"
            raise UsageError(f"{option} {value}: {what}; give a directory")
    return path


def _console() -> Any:
    """Rich output; when piped, wide enough that nothing is cut."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200, no_color=True)


def _print_warnings(warnings: list[Diagnostic]) -> None:
    for warning in warnings:
        print(str(warning), file=sys.stderr)


@command(arg("ref"),
         arg("--policy", dest="policy_refs", action="append", default=[], metavar="MODULE:ATTR",
             help="Extra policies to enforce."),
         arg("--json", dest="as_json", action="store_true", help="Print diagnostics as JSON."))
@_guard
def validate(ref: str, policy_refs: tuple[str, ...], as_json: bool) -> None:
    """Check a pipeline; print every problem as file:line: message."""
    from .loader import load
    from .validate import validate as run_validation

    loaded = load(ref)
    result, diagnostics = run_validation(loaded.definition, _policies(policy_refs))
    errors = [d for d in diagnostics if d.severity == "error"]
    if as_json:
        _echo_json({"valid": result is not None, "pipeline": loaded.definition.name,
                    "hash": result.ir.hash if result else None, "diagnostics": [d.to_dict() for d in diagnostics]})
    else:
        for diagnostic in diagnostics:
            print(str(diagnostic), file=sys.stderr if errors else sys.stdout)
        if result is not None:
            tasks = sum(1 for _ in result.ir.nodes)
            print(f"ok: pipeline {result.ir.name!r} is valid ({tasks} nodes, "
                  f"{len(result.ir.subpipelines)} sub-pipelines, hash {result.ir.hash[:12]})")
        else:
            print(f"{len(errors)} error(s) in {ref}", file=sys.stderr)
    sys.exit(0 if result is not None else 1)


@command(arg("ref"),
         arg("--target", required=True, type=_target),
         arg("--out", dest="out_dir", default="build", show_default=True, type=_directory, metavar="DIR"),
         arg("--policy", dest="policy_refs", action="append", default=[], metavar="MODULE:ATTR"))
@_guard
def compile(ref: str, target: str, out_dir: str, policy_refs: tuple[str, ...]) -> None:
    """Compile a pipeline into the target cloud's native artifacts."""
    from .errors import StratoError
    from .loader import load
    from .targets import get_adapter, passes_target_rules
    from .validate import validated

    loaded = load(ref)
    checked = validated(loaded.definition, _policies(policy_refs))
    adapter = get_adapter(target)
    warnings = passes_target_rules(checked.ir, adapter)
    out = _writable_dir("--out", out_dir)
    try:
        result = adapter.compile(checked.ir, out)
    except OSError as exc:
        raise StratoError(f"--out {out_dir}: cannot write the artifacts ({exc.strerror}: {exc.filename})") from None
    _print_warnings(checked.warnings + warnings + result.warnings)
    for path in result.paths:
        print(str(path))


@command(arg("ref"),
         arg("--target", required=True, type=_target),
         arg("--out", dest="out_dir", default="build", show_default=True, type=_directory, metavar="DIR"),
         arg("--python-version", default="3.12", show_default=True, help="The cloud's Python (major.minor)."),
         arg("--s3", dest="via_s3", action="store_true",
             help="aws: the zip goes to Lambda through S3 (over 50 MB zipped)."))
@_guard
def package(ref: str, target: str, out_dir: str, python_version: str, via_s3: bool) -> None:
    """Build the deployment package of a pipeline's project; print its path."""
    from pathlib import Path

    from .errors import StratoError
    from .loader import load
    from .targets import capable, get_adapter, passes_target_rules
    from .validate import validated

    adapter = capable(get_adapter(target), target, "package")
    loaded = load(ref)
    checked = validated(loaded.definition)
    warnings = passes_target_rules(checked.ir, adapter)
    out = _writable_dir("--out", out_dir)
    try:
        result = adapter.package(checked.ir, Path(loaded.sys_path[0]), out, python_version=python_version,
                                 via_s3=via_s3)
    except OSError as exc:
        raise StratoError(f"--out {out_dir}: cannot write the package ({exc.strerror}: {exc.filename})") from None
    _print_warnings(checked.warnings + warnings + result.warnings)
    print(f"{result.files} files, {result.unzipped_bytes / 2**20:.1f} MB unzipped, "
          f"{result.zipped_bytes / 2**20:.1f} MB zipped", file=sys.stderr)
    print(str(result.path))


class _stdout_to_stderr:
    """With ``--json``, what the emulated tasks and emulators print (on any thread, or from a process they
    start) goes to stderr, so stdout carries only the JSON object."""

    def __init__(self, active: bool) -> None:
        self.active, self.saved, self.real = active, -1, sys.stdout

    def __enter__(self) -> None:
        if self.active:
            sys.stdout.flush()
            self.saved, self.real = os.dup(1), sys.stdout
            os.dup2(2, 1)
            sys.stdout = sys.stderr

    def __exit__(self, *exc: object) -> None:
        if self.active:
            sys.stdout = self.real
            sys.stdout.flush()
            os.dup2(self.saved, 1)
            os.close(self.saved)


@command(arg("ref"),
         arg("--target", required=True, type=_target),
         arg("--input", dest="input_", metavar="JSON|@FILE", help="The run's input: a JSON object of parameters."),
         arg("--json", dest="as_json", action="store_true",
             help="Print one JSON object: run_id, status, output, error."),
         arg("--backend",
             help="Which emulator (aws: moto, moto-server, localstack; gcp: wsgi, http; azure: replay)."),
         arg("--endpoint", metavar="URL", help="A running emulator to use instead of starting one."),
         arg("--work-dir", type=_directory, metavar="DIR", help="Where compiled artifacts are written."))
@_guard
def emulate(ref: str, target: str, input_: str | None, as_json: bool, backend: str | None, endpoint: str | None,
            work_dir: str | None) -> None:
    """Compile a pipeline and run the artifact in the target cloud's emulator on this machine."""
    import tempfile
    from pathlib import Path

    from .loader import load
    from .runtime import prepare_input, resolver_for
    from .targets import get_adapter, passes_target_rules
    from .validate import validated

    started = time.monotonic()
    data = _read_input(input_)
    if work_dir:
        _writable_dir("--work-dir", work_dir)
    with _stdout_to_stderr(as_json):  # the pipeline's module and body print while loading, too
        loaded = load(ref)
        checked = validated(loaded.definition)
        adapter = get_adapter(target)
        passes_target_rules(checked.ir, adapter)
        params = prepare_input(checked.ir, data, loaded.definition.fn)
        with tempfile.TemporaryDirectory(prefix="strato-emulate-") as tmp:
            started_at = time.time()
            result = adapter.emulate(checked.ir, params, resolver_for(checked.ir), backend=backend,
                                     endpoint=endpoint, work_dir=Path(work_dir) if work_dir else Path(tmp))
    _record_external(checked.ir, ref, params, result, f"{target}:{backend or adapter.backends[0]}",
                     started_at)
    _report(result, as_json, started, resumable=False)


@command(arg("ref"),
         arg("--target", required=True, type=_target, help="A target that serves worker tasks (aws)."),
         arg("--endpoint", metavar="URL", help="The cloud API endpoint (e.g. LocalStack) instead of the default."),
         arg("--threads", default=2, show_default=True, type=_ranged(int, 1, 256), help="Polls per activity."))
@_guard
def worker(ref: str, target: str, endpoint: str | None, threads: int) -> None:
    """Serve the pipeline's runtime="worker" tasks (Step Functions Activities) until interrupted."""
    from .loader import load
    from .runtime import resolver_for
    from .targets import capable, get_adapter
    from .validate import validated

    adapter = capable(get_adapter(target), target, "worker")
    loaded = load(ref)
    checked = validated(loaded.definition)
    print(f"serving the worker tasks of {checked.ir.name!r} on {target}; Ctrl-C stops", file=sys.stderr)
    adapter.serve_worker(checked.ir, resolver_for(checked.ir), endpoint=endpoint, threads=threads)


@command(arg("ref"),
         arg("--local", action="store_true", help="Deploy to a local AWS this command starts (moto), or to "
                                                  "--endpoint; the cloud itself is deployed with `pulumi up`."),
         arg("--target", default="aws", show_default=True, type=_target, help="The cloud whose program to apply."),
         arg("--endpoint", metavar="URL", help="An AWS endpoint already running (LocalStack) to deploy to "
                                               "instead of starting moto."),
         arg("--port", default=0, type=_ranged(int, 0, 65535), help="The local AWS's port (0: any free one)."))
@_guard
def deploy(ref: str, local: bool, target: str, endpoint: str | None, port: int) -> None:
    """Apply the pipeline's Pulumi program to a local AWS and serve it until interrupted.

    Prints each resource created, then `endpoint: URL`; start runs from another shell with
    `strato invoke REF --target aws --endpoint URL`.
    """
    import signal
    import threading

    from .errors import UsageError
    from .targets import local_deployer

    if not local:
        raise UsageError("strato deploy deploys locally only (--local); deploy to the cloud with `pulumi up` "
                         "(the README's section \"pulumi up\" walks through it)")
    deployer = local_deployer(target)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def say(line: str) -> None:
        print(line)
        sys.stdout.flush()

    deployer.serve(ref, port=port, endpoint=endpoint, say=say, stop=stop)
    print("stopped; the local AWS and everything deployed to it are gone", file=sys.stderr)


@command(arg("ref"),
         arg("--target", required=True, type=_target, help="A target that can start deployed runs."),
         arg("--project", env="GOOGLE_CLOUD_PROJECT", help="gcp: the project [$GOOGLE_CLOUD_PROJECT]"),
         arg("--location", env="STRATO_GCP_LOCATION", help="gcp: the region [$STRATO_GCP_LOCATION]"),
         arg("--endpoint", metavar="URL", help="aws: the API endpoint (LocalStack, a moto server); azure: the "
                                               "function app's URL, e.g. https://APP.azurewebsites.net"),
         arg("--region", help="aws: the region (default: the AWS configuration's)"),
         arg("--state-machine-arn", metavar="ARN", help="aws: the root state machine (default: found by name)"),
         arg("--key", env="STRATO_AZURE_FUNCTION_KEY", help="azure: the starter's function key "
                                                            "[$STRATO_AZURE_FUNCTION_KEY]"),
         arg("--input", dest="input_", metavar="JSON|@FILE", help="The run's input: a JSON object of parameters."),
         arg("--json", dest="as_json", action="store_true",
             help="Print one JSON object: run_id, status, output, error."),
         arg("--timeout", type=_ranged(float), metavar="SECONDS",
             help="Stop waiting after this many seconds (the run goes on)."),
         arg("--poll", dest="poll_seconds", default=2.0, show_default=True, type=_ranged(float), metavar="SECONDS"))
@_guard
def invoke(ref: str, target: str, project: str | None, location: str | None, endpoint: str | None,
           region: str | None, state_machine_arn: str | None, key: str | None, input_: str | None, as_json: bool,
           timeout: float | None, poll_seconds: float) -> None:
    """Start a run of the deployed pipeline in the cloud, follow it to its end and record it in the run store."""
    from .errors import StratoError, UsageError
    from .loader import load
    from .runtime import prepare_input
    from .targets import capable, get_adapter
    from .validate import validated

    started = time.monotonic()
    adapter = capable(get_adapter(target), target, "invoke")
    given = {"project": project, "location": location, "endpoint": endpoint, "region": region,
             "state_machine_arn": state_machine_arn, "key": key}
    accepted = {"gcp": {"project", "location"}, "aws": {"endpoint", "region", "state_machine_arn"},
                "azure": {"endpoint", "key"}}.get(target, set(given))
    stray = [n for n in ("endpoint", "region", "state_machine_arn") if given[n] is not None and n not in accepted]
    if stray:  # --project, --location and --key may come from the environment: ignored where they do not apply
        flags = ", ".join("--" + name.replace("_", "-") for name in stray)
        raise UsageError(f"{flags} do not apply to --target {target}")
    data = _read_input(input_)
    loaded = load(ref)
    checked = validated(loaded.definition)
    params = prepare_input(checked.ir, data, loaded.definition.fn)
    options = {k: v for k, v in given.items() if v is not None and k in accepted}
    started_at = time.time()
    try:
        result = adapter.invoke(checked.ir, params, **options,
                                            timeout=timeout, poll_seconds=poll_seconds,
                                            on_start=lambda name: print(f"started {name}", file=sys.stderr))
    except TimeoutError as exc:  # stopped waiting; the run goes on in the cloud
        raise StratoError(str(exc)) from None
    _record_external(checked.ir, ref, params, result, target, started_at)
    _report(result, as_json, started, resumable=False)


def _record_external(pipeline: Any, ref: str, params: dict[str, Any], result: Any, backend: str,
                     started_at: float) -> None:
    """Keep a cloud or emulated run in the local run store under its execution id (``runs list/show``)."""
    import sqlite3

    from .errors import StratoError
    from .runtime import RunStore

    try:
        store = RunStore()
        try:
            store.record_external_run(result.run_id, pipeline.name, ref, pipeline.to_json(), pipeline.hash, params,
                                      backend=backend, status=result.status, output=result.output,
                                      error=result.error, started_at=started_at, ended_at=time.time())
        finally:
            store.close()
    except (StratoError, sqlite3.Error) as exc:  # the run itself is done: report it, warn about the store
        print(f"warning: run {result.run_id} was not recorded in the run store: {exc}", file=sys.stderr)


class _Progress:
    """Rich progress (calls done/total) on a terminal; nothing when stderr is not a TTY."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

        self.total = 0
        self.task_id = TaskID(0)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("tasks"), TimeElapsedColumn(), console=Console(stderr=True),
                                 transient=True)


def _hooks(progress: _Progress | None, echo: bool) -> Any:
    """Run hooks for the terminal: the progress bar, task output prefixed by its unit key, the run id."""
    from .runtime.runner import RunHooks

    class Hooks(RunHooks):
        run_id: str | None = None

        def run_started(self, run_id: str, pipeline: str) -> None:
            self.run_id = self.run_id or run_id  # the outer run (a task may run a pipeline inline)
            if progress is not None:
                progress.task_id = progress.progress.add_task(f"{pipeline} [dim]{run_id}[/]", total=0)

        def calls_planned(self, count: int) -> None:
            if progress is not None:
                progress.total += count
                progress.progress.update(progress.task_id, total=progress.total)

        def call_finished(self, key: str, task: str, status: str) -> None:
            if progress is not None:
                progress.progress.advance(progress.task_id)

    class Echoing(Hooks):
        def task_output(self, key: str, attempt: int, stream: str, line: str) -> None:
            text = f"{key}{f' #{attempt}' if attempt > 1 else ''} | {line}"
            if progress is not None:
                progress.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
            else:
                print(text, file=sys.stderr)

    return Echoing() if echo else Hooks()


def _run_with_display(fn: Callable[[Any], Any], echo: bool = False) -> Any:
    """Run ``fn(hooks)``: with a progress bar on a terminal, task output on stderr when ``echo``.

    Ctrl-C stops the run and says how to continue it.
    """
    display = _Progress() if sys.stderr.isatty() and not os.environ.get("STRATO_NO_PROGRESS") else None
    hooks = _hooks(display, echo)
    try:
        if display is not None:
            with display.progress:
                return fn(hooks)
        return fn(hooks)
    except KeyboardInterrupt:
        if hooks.run_id is None:
            _fail("interrupted before the run started; nothing was run", 130)
        _fail(f"interrupted: run {hooks.run_id} stopped and is INTERRUPTED; continue it with "
              f"`strato resume {hooks.run_id}` (finished tasks are not run again)", 130)


def _report(result: Any, as_json: bool, started: float, resumable: bool = True) -> None:
    if as_json:
        _echo_json(result.to_dict())
    else:
        if result.succeeded:
            _echo_json(result.output)
            print(f"SUCCEEDED run {result.run_id} in {time.monotonic() - started:.2f}s", file=sys.stderr)
        else:
            error = result.error or {}
            print(f"FAILED run {result.run_id}: {error.get('error')}: {error.get('cause')}", file=sys.stderr)
            print(f"inspect it with `strato runs show {result.run_id}`" + (
                f"; continue it with `strato resume {result.run_id}`" if resumable else ""), file=sys.stderr)
    sys.exit(0 if result.succeeded else 1)


@command(arg("ref"),
         arg("--input", dest="input_", metavar="JSON|@FILE", help="The run's input: a JSON object of parameters."),
         arg("--json", dest="as_json", action="store_true",
             help="Print one JSON object: run_id, status, output, error."),
         arg("--workers", type=_ranged(int, 1, 1024), help="Task threads (default 16, or $STRATO_WORKERS)."),
         arg("--policy", dest="policy_refs", action="append", default=[], metavar="MODULE:ATTR"),
         arg("--scheduled-at", metavar="ISO",
             help="The tick this run is for (e.g. 2024-03-02T02:00:00Z; naive means UTC): strato.context() and "
                  "scheduled parameter defaults see it."))
@_guard
def run(ref: str, input_: str | None, as_json: bool, workers: int | None, policy_refs: tuple[str, ...],
        scheduled_at: str | None) -> None:
    """Run a pipeline on the embedded local runner."""
    from .loader import load
    from .runtime import run_pipeline

    started = time.monotonic()
    with _json_only(as_json):
        data = _read_input(input_)
        loaded = load(ref)
        policies = _policies(policy_refs)
        tick = _instant("--scheduled-at", scheduled_at)
        result = _run_with_display(lambda hooks: run_pipeline(
            loaded.definition, data, hooks=hooks, workers=workers, ref=loaded.ref, sys_path=loaded.sys_path,
            policies=policies, scheduled_at=tick), echo=not as_json)
        _report(result, as_json, started)


@command(arg("run_id"),
         arg("--json", dest="as_json", action="store_true"),
         arg("--workers", type=_ranged(int, 1, 1024)))
@_guard
def resume(run_id: str, as_json: bool, workers: int | None) -> None:
    """Continue an interrupted or failed run without redoing its finished tasks."""
    from .errors import StratoError, UsageError
    from .loader import load
    from .runtime import Runner, resolver_for
    from .runtime.store import INTERRUPTED, RUNNING, RunLocked
    from .validate import validated

    started = time.monotonic()
    store = _existing_store(run_id)
    record = store.get_run(run_id)
    if record is None:
        raise UsageError(f"no run {run_id!r} in {store.path}; list runs with `strato runs list`")
    if record.status == RUNNING and record.display_status != INTERRUPTED:
        raise RunLocked(run_id, record.pid, record.host, resuming=record.resumes > 0)
    if record.backend:  # recorded by invoke/emulate: its tasks' results are in the cloud, not here
        raise UsageError(f"run {run_id} ran on {record.backend}, not on the local runner; it cannot be resumed here: "
                         "start a new run with `strato invoke` (or `strato rerun` to run it locally)")
    if not record.ref:
        raise UsageError(f"run {run_id} was started from Python, not from a pipeline reference; it cannot be resumed "
                         "from the command line")
    for path in reversed(record.sys_path):
        if path not in sys.path:
            sys.path.insert(0, path)
    loaded = load(record.ref)
    checked = validated(loaded.definition)
    if checked.ir.hash != record.ir_hash:
        raise StratoError(f"pipeline {record.pipeline!r} has changed since run {run_id} started (its graph hash was "
                          f"{record.ir_hash[:12]}, now {checked.ir.hash[:12]}); a run resumes only the graph it "
                          "started with. Task code may change; the wiring may not")
    with _json_only(as_json):
        result = _run_with_display(lambda hooks: Runner(store, workers=workers, hooks=hooks).resume(
            record, checked.ir, resolver_for(checked.ir)), echo=not as_json)
        _report(result, as_json, started)


def _existing_store(run_id: str) -> Any:
    """The run store, for a command about one run: a missing store means an unknown run, and stays missing."""
    from .errors import UsageError
    from .runtime import RunStore
    from .runtime.store import store_path

    store = RunStore.existing()
    if store is None:
        raise UsageError(f"no run {run_id!r}: there is no run store at {store_path()} yet (STRATO_HOME); list runs "
                         "with `strato runs list`")
    return store


@command()
def runs() -> None:
    """Runs recorded in the run store ($STRATO_HOME)."""
    runs_list()  # `strato runs` alone


_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "INTERRUPTED")


@command(arg("--json", dest="as_json", action="store_true"),
         arg("--limit", default=50, show_default=True, type=_ranged(int, 1)),
         arg("--pipeline", help="Only runs of this pipeline."),
         arg("--status", type=_status, metavar="{" + ",".join(_STATUSES) + "}", help="Only runs in this status."),
         arg("--since", metavar="AGE|ISO", help="Only runs started since: an age (2h, 7d) or a date or time."),
         name="runs list")
@_guard
def runs_list(as_json: bool = False, limit: int = 50, pipeline: str | None = None, status: str | None = None,
              since: str | None = None) -> None:
    """List runs, newest first."""
    from .cli_ops import parse_since
    from .runtime import RunStore

    after = parse_since(since) if since is not None else None
    store = RunStore.existing()
    records = store.list_runs(limit, pipeline, status.upper() if status else None, after) if store is not None else []
    if as_json:
        _echo_json([r.summary() for r in records])
        return
    if not records:
        filtered = pipeline is not None or status is not None or since is not None
        print("no runs match" if filtered and store is not None
              else "no runs yet; start one with `strato run path/to/file.py:pipeline`")
        return
    from rich.table import Table

    table = Table("run_id", "pipeline", "status", "backend", "started_at", "duration", "scheduled_at", box=None)
    for r in records:
        s = r.details()
        table.add_row(s["run_id"], s["pipeline"], s["status"], s["backend"], s["started_at"] or "",
                      _duration(s["duration"]), s["scheduled_at"] or "")
    _console().print(table)


def _duration(seconds: float | None) -> str:
    """``0.42s``, ``3m 05s``, ``2h 01m``; empty when unknown (an interrupted run)."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


@command(arg("run_id"), arg("--json", dest="as_json", action="store_true"), name="runs show")
@_guard
def runs_show(run_id: str, as_json: bool) -> None:
    """Show one run: its status, input, output, every task with attempts, durations and errors."""
    import json

    from .errors import UsageError

    store = _existing_store(run_id)
    record = store.get_run(run_id)
    if record is None:
        raise UsageError(f"no run {run_id!r} in {store.path}; list runs with `strato runs list`")
    from .runtime.store import shown_status

    units, attempts, logged = store.units(run_id), store.attempts(run_id), store.log_summary(run_id)
    run_status = record.display_status
    for item in (*units, *attempts):  # work left RUNNING by a run that stopped is not running
        item["status"] = shown_status(item["status"], run_status)
    data = {**record.details(), "ref": record.ref, "input": record.input, "output": record.output,
            "error": record.error, "resumes": record.resumes, "units": units, "attempts": attempts, "logs": logged}
    if as_json:
        _echo_json(data)
        return
    from rich.table import Table

    console = _console()
    console.print(f"[bold]{record.pipeline}[/] run {record.run_id}: [bold]{data['status']}[/]")
    console.print(f"started {data['started_at']}  ended {data['ended_at'] or '-'}  resumes {record.resumes}")
    if record.backend:
        console.print(f"ran on {record.backend} as execution {record.run_id}; its task history is not recorded here",
                      markup=False)
    if record.scheduled_at is not None:
        console.print(f"scheduled for {data['scheduled_at']}")
    if record.rerun_of:
        since = f" from {record.rerun_from}" if record.rerun_from else ""
        console.print(f"rerun of {record.rerun_of}{since}; units marked (reused) kept that run's results",
                      markup=False)
    console.print(f"input  {json.dumps(record.input)}")
    if record.error:
        console.print(f"[red]error  {record.error['error']}: {record.error['cause']}[/]")
    else:
        console.print(f"output {json.dumps(record.output)[:500]}")
    table = Table("unit", "kind", "task", "status", "attempts", "duration", "log", "error", box=None)
    for u in units:
        error = f"{u['error']['error']}: {u['error']['cause']}"[:80] if u["error"] else ""
        duration = f"{u['duration']:.3f}s" if u["duration"] is not None else ""
        lines = logged.get(u["key"], {}).get("lines")
        status = f"{u['status']} (reused)" if u["reused_from"] else u["status"]
        table.add_row(u["key"], u["kind"], u["task"] or "", status, str(u["attempts"] or ""), duration,
                      f"{lines} lines" if lines else "", error)
    console.print(table)
    failed = [a for a in attempts if a["error"]]
    if failed:
        console.print("[bold]failed attempts[/]")
        for a in failed:
            console.print(f"  {a['key']} #{a['attempt']}: {a['error']['error']}: {a['error']['cause'][:200]}",
                          markup=False)
    checked = [a for a in attempts if a.get("checks")]
    if checked:
        console.print("[bold]data-quality checks[/]")
        for a in checked:
            for c in a["checks"]:
                mark = "passed" if c["passed"] else ("FAILED" if c["severity"] == "error" else "warning")
                note = f": {c['message']}" if c.get("message") else ""
                console.print(f"  {a['key']} #{a['attempt']}  {c['name']} ({c['severity']})  {mark}{note[:200]}",
                              markup=False)
    if logged:
        console.print(f"output and tracebacks: `strato runs logs {run_id} [TASK]`", markup=False)


@command(arg("ref"),
         arg("--format", dest="fmt", type=_format, metavar="{" + ",".join(FORMATS) + "}", default="mermaid",
             show_default=True))
@_guard
def graph(ref: str, fmt: str) -> None:
    """Print the pipeline's graph as Mermaid or Graphviz DOT."""
    from .graph import to_dot, to_mermaid
    from .loader import load
    from .validate import validated

    pipeline = validated(load(ref).definition).ir  # a graph with a cycle or unknown names is not drawn
    print(to_mermaid(pipeline) if fmt == "mermaid" else to_dot(pipeline), end="")


@command(arg("--host", default="127.0.0.1", show_default=True,
             help="Address to listen on; anything but loopback exposes the runs without authentication."),
         arg("--port", default=8642, show_default=True, type=_ranged(int, 0, 65535), help="0 picks a free port."),
         arg("--allow-actions", action="store_true", help="Offer resume (and rerun, where available) on failed runs."))
@_guard
def ui(host: str, port: int, allow_actions: bool) -> None:
    """Serve a web UI over the run store ($STRATO_HOME): runs, their graphs and attempts, pipelines."""
    from .runtime.store import strato_home
    from .ui.server import serve

    serve(strato_home(), host=host, port=port, allow_actions=allow_actions)


from . import cli_ops as _cli_ops  # noqa: E402,F401  (registers runs logs/prune, rerun, backfill, serve, pools)

if __name__ == "__main__":
    main()
