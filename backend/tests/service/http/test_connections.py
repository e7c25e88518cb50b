"""Slow clients are dropped by the real server (``python -m app.service``): headers trickled one line at
a time, a connection that sends nothing, a body that stalls; ordinary keep-alive traffic is untouched.
Before, connections sending one header line every 10 s all stayed open (19,960 of them)."""

from __future__ import annotations

import asyncio
import http.client
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app.service.http.guards import BodyLimit
from tests.live_server import LiveServer

TIMEOUT = 1.0  # the header and body deadlines of the server under test, in seconds


def server(tmp: Path, header_timeout: float) -> LiveServer:
    settings = {
        "RECOMMENDER_DATA_DIR": str(tmp),
        "RECOMMENDER_MODEL_DIR": str(tmp / "no-model"),  # /health and the event routes need no model
        "RECOMMENDER_HEADER_TIMEOUT_SECONDS": str(header_timeout),
        "RECOMMENDER_BODY_TIMEOUT_SECONDS": str(TIMEOUT),
        "RECOMMENDER_KEEP_ALIVE_SECONDS": "2",
    }
    return LiveServer(settings, tmp / "server.log", ready_path="/health").start()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    s = server(tmp_path_factory.mktemp("deadline"), TIMEOUT)
    try:
        yield s
    finally:
        s.stop()


def connect(live: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=10)
    return sock


def trickle_headers(sock: socket.socket, seconds: float, every: float = 0.2) -> float | None:
    """Sends a request line, then one header line every ``every`` s for ``seconds``; the time the server
    closed the connection, or None if it was still open at the end."""
    started = time.monotonic()
    try:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
        n = 0
        while time.monotonic() - started < seconds:
            time.sleep(every)
            sock.sendall(b"X-Slow-%d: 1\r\n" % n)
            n += 1
        sock.settimeout(0.05)
        try:
            if sock.recv(1) == b"":
                return time.monotonic() - started
        except TimeoutError:
            return None
    except (BrokenPipeError, ConnectionResetError):
        return time.monotonic() - started
    return None


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        return None
    except ConnectionResetError:
        data = b""
    return time.monotonic() - started if data == b"" else None


def test_headers_sent_one_line_at_a_time_are_cut_off_at_the_deadline(live: LiveServer) -> None:
    with connect(live) as sock:
        closed = trickle_headers(sock, seconds=4 * TIMEOUT)
    assert closed is not None, "the server kept a connection whose headers never ended"
    assert TIMEOUT * 0.8 <= closed <= TIMEOUT + 1.5


def test_a_connection_that_sends_nothing_is_closed(live: LiveServer) -> None:
    with connect(live) as sock:
        closed = closed_within(sock, 4 * TIMEOUT)
    assert closed is not None and closed <= TIMEOUT + 1.5


def test_keep_alive_requests_are_untouched_by_the_deadline(live: LiveServer) -> None:
    """Three requests on one connection, each after a pause longer than half the deadline."""
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    try:
        ends = set()
        for _ in range(3):
            conn.request("GET", "/health")
            assert conn.getresponse().read() and conn.sock is not None
            ends.add(conn.sock.getsockname())
            time.sleep(0.7 * TIMEOUT)
        assert len(ends) == 1  # one connection throughout, never closed and reopened
    finally:
        conn.close()


def test_a_stalled_body_is_a_408_and_the_connection_is_closed(live: LiveServer) -> None:
    with connect(live) as sock:
        sock.sendall(
            b"POST /events/engagement HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: 200\r\n\r\n" + b'{"recset_id": '
        )
        sock.settimeout(4 * TIMEOUT)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"stalled" in answer and b"connection: close" in answer.lower()


def test_without_the_deadline_a_trickling_client_stays_connected(tmp_path: Path) -> None:
    """The finding itself: with the header deadline off (0) the same client is never dropped."""
    s = server(tmp_path, header_timeout=0)
    try:
        with connect(s) as sock:
            assert trickle_headers(sock, seconds=3 * TIMEOUT) is None
    finally:
        s.stop()


def test_body_limit_waits_for_a_chunk_at_most_the_idle_timeout() -> None:
    """The middleware alone: a receive that never yields a chunk ends in the 408 error."""
    seen: list[BaseException] = []

    async def app(scope: dict, receive, send) -> None:
        try:
            await receive()
        except Exception as exc:  # the test records what the route's body read raises
            seen.append(exc)

    async def never() -> dict:
        await asyncio.sleep(10)
        return {"type": "http.request", "body": b"", "more_body": False}

    guard = BodyLimit(app, default=100, idle_timeout=0.05)
    scope = {"type": "http", "method": "POST", "path": "/x", "headers": []}
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:  # its own thread: a browser test may leave this one's loop running
        pool.submit(asyncio.run, guard(scope, never, None)).result()
    assert time.monotonic() - started < 1
    assert getattr(seen[0], "status_code", None) == 408


def test_the_default_keep_alive_outlasts_the_client_pool() -> None:
    """An idle connection must be dropped by the client first: with httpx's own 5 s expiry equal to the
    server's, a request sent just as the server closed the connection got "server disconnected"."""
    from app.config import Settings

    assert Settings.model_fields["keep_alive_seconds"].default > 2 * httpx.Limits().keepalive_expiry
