"""A replay host for generated Durable Functions apps: the real SDK, no Functions host, virtual time.

``host.py`` is the host's loop (histories, episodes, determinism and stuck-orchestration checks),
``history.py`` the SDK's event and action schema, ``activities.py`` the worker threads activities run
on, ``client.py`` the durable client the starters get, and ``app.py`` a compiled app loaded into a
host with its activities pointed at local code and storage.
"""

from __future__ import annotations

from .activities import ActivityRun
from .app import Emulation, emulation, load_app
from .history import EmulationError, Instance
from .host import ReplayHost

__all__ = ["ActivityRun", "Emulation", "EmulationError", "Instance", "ReplayHost", "emulation", "load_app"]
