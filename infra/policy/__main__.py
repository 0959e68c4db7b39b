"""The policy pack's program: ``pulumi preview --policy-pack <this folder>`` runs it.

``python -m strato.infra.policy --path`` prints this folder, to pass to ``--policy-pack`` from an
installed Strato.
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    if sys.argv[1:] == ["--path"]:
        print(Path(__file__).resolve().parent)
    else:
        from strato.infra.policy.pack import serve

        serve()
