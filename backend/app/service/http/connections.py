"""Connections that must keep moving: uvicorn's HTTP protocol with a deadline for a request's headers.

Uvicorn closes an idle keep-alive connection (``--timeout-keep-alive``) but has no limit on how long a
request's headers may take: a client that opens a connection and sends one header line every few
seconds (or nothing at all) holds it open for ever, and thousands of them starve the server
("slowloris"). ``HeaderDeadlineProtocol`` closes a connection whose next request's headers are not
complete ``RECOMMENDER_HEADER_TIMEOUT_SECONDS`` after the connection opened or the request began,
whatever it sends meanwhile. Bodies have their own idle limit (``guards.BodyLimit``).

``python -m app.service`` runs uvicorn with this protocol; ``uvicorn app.service.api:app`` serves
without it.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import get_settings

log = logging.getLogger(__name__)


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` (what uvicorn's ``auto`` picks) plus the header deadline."""

    header_timeout: float | None = None  # seconds; read from the settings by the first connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()  # a connection that never sends a byte is closed too

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        timeout = type(self).header_timeout
        if timeout is None:
            timeout = type(self).header_timeout = get_settings().header_timeout_seconds
        if timeout > 0:
            self._deadline = self.loop.call_later(timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.debug("closing %s: no complete request headers within %.1f s", self.client, self.header_timeout)
            self.transport.close()
