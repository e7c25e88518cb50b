"""The real service (``app.service.api:app``) under uvicorn in a subprocess on a free loopback port, for tests
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
    and waits until ``ready_path`` answers 200; ``stop()`` ends it with SIGTERM, ``kill()`` with SIGKILL."""

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
                    "uvicorn",
                    "app.service.api:app",
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
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush; only what was committed survives."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None
