"""Azurite, Microsoft's storage emulator (npm ``azurite``), started on a free port for a test session.

The repository's ``package.json`` installs it (``npm install``); without it the tests that need real
Blob Storage skip and say why.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Azurite's well-known development account (public, documented; not a secret)
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def binary() -> Path | None:
    """``node_modules/.bin/azurite-blob`` (the blob service alone), else ``azurite``; None if absent."""
    if shutil.which("node") is None:
        return None
    for name in ("azurite-blob", "azurite"):
        path = ROOT / "node_modules" / ".bin" / name
        if path.exists():
            return path
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Azurite:
    """A running Azurite blob service."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={self.endpoint};")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True  # any HTTP answer (an unsigned request gets 403) means it is serving
    except OSError:
        return False
    return True


def start(program: Path, location: Path, *, attempts: int = 3, wait: float = 30.0) -> Azurite:
    """Start Azurite's blob service on a free 127.0.0.1 port and wait until it answers.

    A port picked free can be taken before Azurite binds it, so a start that exits early is retried
    on another port.
    """
    problem = ""
    for attempt in range(attempts):
        port = _free_port()
        data = location / f"data-{attempt}"
        data.mkdir(parents=True, exist_ok=True)
        log = location / f"azurite-{attempt}.log"
        command = [str(program), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--skipApiVersionCheck",
                   "--disableTelemetry", "--silent", "--location", str(data)]
        if program.name == "azurite":  # the all-in-one binary: keep its queue and table services off our ports
            command += ["--queuePort", str(_free_port()), "--tablePort", str(_free_port())]
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        server = Azurite(process, port, log)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(f"http://127.0.0.1:{port}/{ACCOUNT}?comp=list"):
                return server
            time.sleep(0.1)
        server.stop()
        problem = log.read_text(errors="replace")[-2000:] or f"exit code {process.returncode}"
    raise RuntimeError(f"Azurite did not start ({' '.join(command)}):\n{problem}")
