"""The live service for one arm: ``python -m app.service`` (what ``scripts/serve.sh`` runs) in a subprocess on a free loopback port.

The simulation never imports the service: it starts it as its own process with its own settings
(``RECOMMENDER_*`` environment variables), talks to it over HTTP and always stops it, on an error
and on Ctrl-C too. The child asks the kernel to send it SIGTERM when the simulation process dies
(``PR_SET_PDEATHSIG`` on Linux), so even a killed simulation leaves no server behind. Its output
goes to a log file in the arm's work directory.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

BACKEND_DIR = Path(__file__).resolve().parents[2]

# Runs in the child before the service: die with the parent (Linux), and exit if the parent is already gone.
_LAUNCHER = """
import os, signal, sys
parent = int(sys.argv[1])
if sys.platform.startswith("linux"):
    import ctypes
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
if os.getppid() != parent:
    sys.exit(1)
os.execv(sys.executable, [sys.executable, "-m", "app.service", *sys.argv[2:]])
"""


class ServiceError(RuntimeError):
    """The service did not start, answered with an error, or died; the message includes its log's tail."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServiceProcess:
    """Context manager: ``with ServiceProcess(settings, log_path) as svc: svc.get(...)``."""

    def __init__(self, settings: Mapping[str, str], log_path: Path, *, start_timeout: float = 120.0) -> None:
        self.settings = dict(settings)
        self.log_path = Path(log_path)
        self.start_timeout = start_timeout
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.client: httpx.Client | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        # The arm's settings only: a key or a database set in the shell would change what the arm measures.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_") and k != "DATABASE_URL"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BACKEND_DIR), env.get("PYTHONPATH", "")) if p)
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.settings)
        return env

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        args = ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *args],
                cwd=BACKEND_DIR,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.client = httpx.Client(base_url=self.url, timeout=60.0)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(f"the service exited with code {self.proc.returncode} while starting{self.tail()}")
            try:
                if self.client.get("/ready", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise ServiceError(f"the service was not ready after {self.start_timeout:.0f} s{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")[-chars:].strip()
        except OSError:
            return ""
        return f"\n--- last lines of {self.log_path} ---\n{text}" if text else f" ({self.log_path} is empty)"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; the decoded JSON answer, or ``ServiceError`` naming the status and the body."""
        assert self.client is not None, "start() the service first"
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            dead = self.proc is not None and self.proc.poll() is not None
            why = f"the service died (exit code {self.proc.returncode})" if dead else f"{type(exc).__name__}: {exc}"
            raise ServiceError(f"{method} {path}: {why}{self.tail()}") from None
        if not response.is_success:
            log = self.tail() if response.status_code >= 500 else ""
            raise ServiceError(f"{method} {path} answered {response.status_code}: {response.text[:1000]}{log}")
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> ServiceProcess:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
