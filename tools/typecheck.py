"""Type-check the installed package ``strato`` with mypy, from the repository's folders.

The folders install under other names (``framework/`` is ``strato``, ``adapters/`` is
``strato.adapters``, ``infra/`` is ``strato.infra``) through setuptools' package-dir, which mypy
cannot follow in an editable install. This lays the package out as it installs, with symlinks under
``build/typecheck/``, runs mypy on it, and prints errors with the repository's own paths.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = {"framework": Path("strato"), "adapters": Path("strato/adapters"), "infra": Path("strato/infra")}


def lay_out(tree: Path) -> None:
    """``tree/strato`` with the repository's files as they install (symlinks, so nothing is copied)."""
    if tree.exists():
        shutil.rmtree(tree)
    for folder, target in LAYOUT.items():
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix not in (".py", ".pyi", ".typed"):
                continue
            link = tree / target / path.relative_to(ROOT / folder)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)


def main(argv: list[str]) -> int:
    tree = ROOT / "build" / "typecheck"
    lay_out(tree)
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), *argv,
                           "-p", "strato"], cwd=tree, capture_output=True, text=True)
    back = {str(target): folder for folder, target in sorted(LAYOUT.items(), key=lambda kv: -len(str(kv[1])))}
    pattern = re.compile("^(" + "|".join(re.escape(k) for k in back) + ")/", re.M)
    out = pattern.sub(lambda m: back[m.group(1)] + "/", proc.stdout)
    sys.stdout.write(out)
    sys.stderr.write(proc.stderr)
    return proc.returncode


if __name__ == "__main__":
    os.environ.setdefault("MYPY_CACHE_DIR", str(ROOT / "build" / "mypy-cache"))
    sys.exit(main(sys.argv[1:]))
