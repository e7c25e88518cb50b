"""Serving benchmark for users with an online history: their lists are re-scored from the updated history.

    PYTHONPATH=backend python benchmarks/online_serving.py                   # import ML-100K, train, measure
    PYTHONPATH=backend python benchmarks/online_serving.py --model-dir DIR   # reuse a trained model

One uvicorn worker (``benchmarks/serving.py``'s server, impression logging on) over a fresh SQLite
database. Before measuring, ``POST /events`` gives ``--online-users`` of the model's users
``--events`` online events each (likes, views, a dislike: every kind the online history folds) and
``--heavy-users`` users ``--heavy-events`` each; the same number of other users have none. Then wrk
at concurrency 8 alternates between ``/recommendations`` for the three groups, ``--rounds`` times
(the order rotated every round, so the machine's changing speed hits all alike); each group's
requests/s and p95 are medians over the rounds, and the ratio of throughputs is the median of the
per-round ratios. Targets: users with an online history p95 <= 5 ms and >= 80% of the throughput of
users without one. MovieLens data and models stay outside the repository.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import serving as S

ACTIONS = ("like", "view", "watch", "click", "play", "rating", "skip", "dislike")


def post_history(url: str, users: list[str], items: list[str], per_user: int, rng: random.Random) -> float:
    """Online events for each user (batches of at most 10,000 events); returns the seconds it took."""
    started = time.perf_counter()
    now = int(time.time())
    batch: list[dict] = []
    with httpx.Client(base_url=url, timeout=120) as client:

        def send() -> None:
            r = client.post("/events", json=batch)
            r.raise_for_status()
            batch.clear()

        for u in users:
            for n in range(per_user):
                action = "dislike" if n == per_user - 1 else ACTIONS[n % (len(ACTIONS) - 1)]
                event = {"user_id": u, "item_id": rng.choice(items), "event": action, "ts": now - n}
                if action == "rating":
                    event["rating"] = rng.choice((2, 4, 5))
                batch.append(event)
                if len(batch) == 10_000:
                    send()
        if batch:
            send()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model-dir", type=Path, help="serve this model instead of training one on ML-100K")
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "serving-bench")
    p.add_argument("--online-users", type=int, default=300)
    p.add_argument("--events", type=int, default=20, help="online events per user with an online history")
    p.add_argument("--heavy-users", type=int, default=20)
    p.add_argument("--heavy-events", type=int, default=3000, help="online events per heavy user")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    model = args.model_dir or S.train_ml100k(work)
    user_ids, item_ids = S.model_ids(model)
    rng = random.Random(args.seed)
    picked = rng.sample(user_ids, 2 * args.online_users + args.heavy_users)
    online = picked[: args.online_users]
    heavy = picked[args.online_users : args.online_users + args.heavy_users]
    plain = picked[args.online_users + args.heavy_users :]
    data = work / "online-serving-data"
    shutil.rmtree(data, ignore_errors=True)
    server = S.Server(model, data)
    try:
        seconds = post_history(server.url, online, item_ids, args.events, rng)
        seconds += post_history(server.url, heavy, item_ids, args.heavy_events, rng)
        n_events = args.online_users * args.events + args.heavy_users * args.heavy_events
        print(f"posted {n_events} online events in {seconds:.1f}s")
        groups = {
            "no online history": S.Scenario("plain", "GET", [f"/recommendations/{u}?limit=10" for u in plain]),
            f"{args.events} online events": S.Scenario(
                "online", "GET", [f"/recommendations/{u}?limit=10" for u in online]
            ),
            f"{args.heavy_events} online events": S.Scenario(
                "heavy", "GET", [f"/recommendations/{u}?limit=10" for u in heavy]
            ),
        }
        tmp = work / "wrk"
        tmp.mkdir(exist_ok=True)
        for s in groups.values():  # warm-up: every user's history read once into the worker's cache
            server.drive(s, args.concurrency, 2, tmp, "ml100k", True)
        runs: dict[str, list[S.Run]] = {name: [] for name in groups}
        names = list(groups)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                run = server.drive(groups[name], args.concurrency, args.duration, tmp, "ml100k", True)
                if run.errors or run.non_2xx:
                    raise RuntimeError(f"{name}: {run.errors} errors, {run.non_2xx} non-2xx responses")
                runs[name].append(run)
    finally:
        server.stop()
    base = runs[names[0]]
    print(f"\n/recommendations, c={args.concurrency}, impression logging on, {args.rounds} rounds of {args.duration}s")
    print("| users | req/s (median) | p95 ms (median) | p95 ms (worst) | server CPU us/request | throughput vs none |")
    print("| --- | --- | --- | --- | --- | --- |")
    verdicts = []
    for name in names:
        rs = runs[name]
        ratio = statistics.median(a.rps / b.rps for a, b in zip(rs, base, strict=True))
        p95 = statistics.median(x.p95_ms for x in rs)
        print(
            f"| {name} | {statistics.median(x.rps for x in rs):,.0f} | {p95:.2f} | "
            f"{max(x.p95_ms for x in rs):.2f} | {statistics.median(x.cpu_us for x in rs):.0f} | {ratio:.2f} |"
        )
        if name != names[0]:
            verdicts.append(
                f"{name}: p95 {p95:.2f} ms {'<=' if p95 <= 5 else '>'} 5; ratio {ratio:.2f} "
                f"{'>=' if ratio >= 0.8 else '<'} 0.80"
            )
    print("\n" + "\n".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
