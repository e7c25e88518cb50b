"""Runs the service: ``python -m app.service [--host H] [--port P] [--workers N]``.

This is uvicorn serving ``app.service.api:app`` with the connection limits of the settings, which the
plain ``uvicorn`` command cannot set: a deadline for request headers (slow clients are dropped),
the keep-alive timeout, and as many open files as the system allows (each connection is one).
Everything else comes from the environment (``RECOMMENDER_*``, ``DATABASE_URL``; see ``app.config``).
"""

from __future__ import annotations

import argparse
import resource

import uvicorn

from app.config import get_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.service",
        description=(
            "Serve recommendations over HTTP (uvicorn). Slow clients are dropped: request headers must "
            "arrive within RECOMMENDER_HEADER_TIMEOUT_SECONDS, a body may pause at most "
            "RECOMMENDER_BODY_TIMEOUT_SECONDS, idle connections close after RECOMMENDER_KEEP_ALIVE_SECONDS."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes sharing the port and database")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    parser.add_argument("--no-access-log", action="store_true", help="no line per request in the log")
    parser.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        help="proxies trusted for X-Forwarded-For (the client address that loopback-only routes check)",
    )
    return parser


def raise_open_file_limit() -> int:
    """The soft limit on open files raised to the hard one: a busy server holds a file per connection."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard != resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    raise_open_file_limit()
    uvicorn.run(
        "app.service.api:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=not args.no_access_log,
        forwarded_allow_ips=args.forwarded_allow_ips,
        http="app.service.http.connections:HeaderDeadlineProtocol",
        timeout_keep_alive=settings.keep_alive_seconds,
    )


if __name__ == "__main__":
    main()
