"""Finding a pipeline from a reference: ``path/to/file.py:name`` or ``package.module:name``."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass

from .dsl.definitions import PipelineDefinition
from .errors import StratoError, UsageError, display_path


@dataclass
class Loaded:
    definition: PipelineDefinition
    ref: str  # canonical: absolute file path or module path, with the pipeline's name
    sys_path: list[str]  # directories a later process must put on sys.path to import the tasks


def load(ref: str) -> Loaded:
    """Import the module a reference names and return its pipeline, with a clear error otherwise."""
    target, _, name = ref.partition(":")
    if not target:
        raise UsageError(f"{ref!r} is not a pipeline reference; write path/to/file.py:name or package.module:name")
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = os.path.abspath(target)
        if not os.path.isfile(path):
            raise UsageError(f"no such file: {target}")
        module, sys_path = _import_file(path)
        canonical = path
    else:
        sys_path = [os.getcwd()]
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            if exc.name and target.startswith(exc.name):
                raise UsageError(f"no module named {target!r} (looked in the current directory and sys.path)") from None
            raise _import_error(exc, target) from None
        except (Exception, SystemExit) as exc:
            raise _import_error(exc, target) from None
        canonical = target
    pipelines = {obj.name: obj for obj in vars(module).values() if isinstance(obj, PipelineDefinition)}
    attr_named = vars(module).get(name) if name else None
    if isinstance(attr_named, PipelineDefinition):
        definition = attr_named
    elif name and name in pipelines:
        definition = pipelines[name]
    elif not name and len(pipelines) == 1:
        definition = next(iter(pipelines.values()))
    else:
        available = ", ".join(sorted(pipelines)) or "none"
        what = f"has no pipeline named {name!r}" if name else "defines several pipelines; name one after ':'"
        raise UsageError(f"{display_path(canonical) if canonical.endswith('.py') else canonical} {what} "
                         f"(pipelines found: {available})")
    return Loaded(definition, f"{canonical}:{definition.name}", sys_path)


def _import_file(path: str) -> tuple[object, list[str]]:
    directory = os.path.dirname(path)
    name = os.path.splitext(os.path.basename(path))[0]
    existing = sys.modules.get(name)
    if existing is not None and os.path.abspath(getattr(existing, "__file__", "") or "") == path:
        return existing, [directory]
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {display_path(path)}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, ImportError) and "relative import" in str(exc):
            raise UsageError(f"{display_path(path)} uses relative imports, so it cannot be loaded as a file; use the "
                             "dotted module reference instead (package.module:name, run from the directory that "
                             "holds the package)") from None
        raise _import_error(exc, display_path(path)) from None
    return module, [directory]


def _import_error(exc: BaseException, what: str) -> StratoError:
    if isinstance(exc, SyntaxError):
        return StratoError(f"{display_path(exc.filename or what)}:{exc.lineno}: syntax error: {exc.msg}")
    if isinstance(exc, StratoError):
        return exc
    if isinstance(exc, SystemExit):
        return StratoError(f"importing {what} called sys.exit({exc.code!r}); a pipeline module must not exit when "
                           "imported (put script code under `if __name__ == \"__main__\":`)")
    import traceback  # only for a module that failed to load

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen")]
    where = f"{display_path(frames[-1].filename)}:{frames[-1].lineno}: " if frames else ""
    return StratoError(f"{where}importing {what} raised {type(exc).__name__}: {exc}")
