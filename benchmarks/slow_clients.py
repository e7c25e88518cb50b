"""Slow clients against the real server: are they dropped, and do ordinary clients still get answers?

    PYTHONPATH=backend python benchmarks/slow_clients.py                 # 2,000 slow connections, 25 s
    PYTHONPATH=backend python benchmarks/slow_clients.py --connections 5000 --seconds 30

The service (``python -m app.service``, default settings, no model: ``/health`` needs none) is started
twice, with the header deadline on (the default) and off (``RECOMMENDER_HEADER_TIMEOUT_SECONDS=0``,
what plain uvicorn does). Each time ``--connections`` clients open a connection and send one header
line every ``--every`` seconds, never ending their headers, while one ordinary client asks ``/health``
ten times a second. Printed: how many slow connections are still open over time, and the ordinary
client's latency and failures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from tests.live_server import LiveServer  # noqa: E402 - after the path above


async def slow_client(port: int, every: float, until: float, open_: set[int], n: int) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return
    open_.add(n)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
        line = 0
        while time.monotonic() < until:
            await asyncio.sleep(every)
            if reader.at_eof():
                break
            writer.write(b"X-Slow-%d: 1\r\n" % line)
            await writer.drain()
            line += 1
    except OSError:
        pass
    finally:
        open_.discard(n)
        writer.close()


async def ordinary_client(port: int, until: float, latencies: list[float], failures: list[str]) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                (await client.get("/health")).raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)
            except httpx.HTTPError as exc:
                failures.append(type(exc).__name__)
            await asyncio.sleep(0.1)


async def attack(port: int, connections: int, every: float, seconds: float) -> dict:
    until = time.monotonic() + seconds
    open_: set[int] = set()
    latencies: list[float] = []
    failures: list[str] = []
    tasks = [asyncio.create_task(slow_client(port, every, until, open_, n)) for n in range(connections)]
    tasks.append(asyncio.create_task(ordinary_client(port, until, latencies, failures)))
    started, timeline = time.monotonic(), []
    while time.monotonic() < until:
        await asyncio.sleep(1.0)
        timeline.append((round(time.monotonic() - started), len(open_)))
    await asyncio.gather(*tasks)
    latencies.sort()
    return {
        "open": timeline,
        "p50": statistics.median(latencies) if latencies else None,
        "p95": latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
        "answered": len(latencies),
        "failed": len(failures),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=2000)
    p.add_argument("--every", type=float, default=2.0, help="seconds between a slow client's header lines")
    p.add_argument("--seconds", type=float, default=25.0)
    args = p.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this process holds every slow connection
    print(f"{args.connections} slow connections, a header line every {args.every:g} s, for {args.seconds:g} s")
    for label, timeout in (("deadline on (default, 10 s)", None), ("deadline off", "0")):
        with tempfile.TemporaryDirectory(prefix="slow-clients-") as tmp:
            settings = {"RECOMMENDER_DATA_DIR": tmp, "RECOMMENDER_MODEL_DIR": os.path.join(tmp, "no-model")}
            if timeout is not None:
                settings["RECOMMENDER_HEADER_TIMEOUT_SECONDS"] = timeout
            server = LiveServer(settings, Path(tmp) / "server.log", ready_path="/health").start()
            try:
                r = asyncio.run(attack(server.port, args.connections, args.every, args.seconds))
            finally:
                server.stop()
        shown = ", ".join(f"{t}s: {n}" for t, n in r["open"][:: max(1, len(r["open"]) // 8)])
        print(f"\n{label}\n  slow connections still open: {shown}")
        p50 = f"{r['p50']:.1f}" if r["p50"] is not None else "-"
        p95 = f"{r['p95']:.1f}" if r["p95"] is not None else "-"
        print(f"  ordinary client: {r['answered']} answered, {r['failed']} failed, p50 {p50} ms, p95 {p95} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
