"""The real service (``python -m app.service``: uvicorn with its connection limits) in a subprocess on a free loopback port, for tests
that need a real socket and a real process: the web page in Chromium, and SIGKILL durability."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

BACKEND = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``start()`` runs uvicorn with the environment plus ``settings`` (``RECOMMENDER_*``, ``DATABASE_URL``)
    and waits until ``ready_path`` answers 200; ``stop()`` ends it with SIGTERM, ``kill()`` with SIGKILL.

    The server runs in a process group of its own, so that ``kill()`` reaches the master and every
    worker at once and ``pids()`` can tell its processes."""

    def __init__(self, settings: dict[str, str], log_path: Path, ready_path: str = "/ready", workers: int = 1):
        self.settings = settings
        self.workers = workers
        self.log_path = log_path
        self.ready_path = ready_path
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> LiveServer:
        # The server's settings come from ``settings`` only, not from whatever the shell had.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_") and k != "DATABASE_URL"}
        env.update(PYTHONPATH=str(BACKEND), OPENBLAS_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        env.update(self.settings)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "app.service",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                    "--workers",
                    str(self.workers),
                ],
                cwd=BACKEND,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: see kill()
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.read_log()}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server not ready after {timeout:.0f}s:\n{self.read_log()}")

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:  # uvicorn's supervisor stops its workers
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def pids(self) -> list[int]:
        """The server's live processes: the master and its workers (its process group; Linux ``/proc``)."""
        if self.proc is None:
            return []
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we looked
            if int(pgrp) == self.proc.pid and state != "Z":
                found.append(int(stat.parent.name))
        return sorted(found)

    def kill(self) -> None:
        """SIGKILL to the master and all its workers at once: no shutdown hooks, no flush; only what was
        committed survives. Returns when none of them runs any more.

        The whole process group, because killing only uvicorn's master leaves its workers serving (and
        writing) on their own."""
        if self.proc is not None:
            if self.pids():
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            deadline = time.monotonic() + 10
            while self.pids() and time.monotonic() < deadline:  # orphaned workers die a moment later
                time.sleep(0.01)
        self.proc = None
