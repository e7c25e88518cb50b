"""Command line of the store.

  python -m app.store seed --data-path FILE --items-path FILE     load a JSONL training log and catalogue
  python -m app.store seed --movielens PATH                        ... or a MovieLens zip/folder
  python -m app.store report --start YYYY-MM-DD --end YYYY-MM-DD --format md|html --out FILE
  python -m app.store replay [--start T] [--end T] [--k 10] [--window-hours 24] [--engine E] [--platform P]
  python -m app.store prune --keep-days 90 [--events-keep-days 365] delete old impressions and engagements
  python -m app.store init                                         create the schema

The database is ``DATABASE_URL`` (or ``--database-url``); the default is SQLite under the data dir.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import orjson

from app.config import get_settings
from app.data.catalog import read_items
from app.data.events import read_events
from app.files import write_bytes_atomic
from app.store.online_report import daily_rows, render_html, render_markdown
from app.store.store import Store
from app.store.timeparse import parse_time


def _open(args: argparse.Namespace) -> Store:
    settings = get_settings()
    if args.database_url:
        settings = settings.model_copy(update={"database_url": args.database_url})
    return Store.from_settings(settings).start()


def cmd_seed(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.movielens:
        from app.data.movielens import import_movielens

        with tempfile.TemporaryDirectory(prefix="store-seed-") as tmp:  # outside the repository
            imported = import_movielens(args.movielens, tmp)
            log, summary = read_events(imported.interactions_path)
            catalogue = read_items(imported.items_path)
    else:
        if not args.data_path:
            raise SystemExit("seed: give --data-path FILE (and --items-path FILE), or --movielens PATH")
        log, summary = read_events(args.data_path, strict=args.strict)
        items_path = args.items_path or Path(args.data_path).with_name("items.jsonl")
        catalogue = read_items(items_path) if Path(items_path).is_file() else {}
        if not catalogue:
            print(f"seed: no catalogue at {items_path}; items get no titles", file=sys.stderr)
    print(f"read: {summary.describe()}")
    store = _open(args)
    try:
        counts = store.seed(log, catalogue)
    finally:
        store.close()
    print(
        f"seeded {store.engine.url.render_as_string(hide_password=True)}: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + f" in {time.perf_counter() - started:.1f}s"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    start, end = date.fromisoformat(args.start), date.fromisoformat(args.end)
    store = _open(args)
    try:
        rows = daily_rows(store, start, end, k=args.k, window_hours=args.window_hours)
    finally:
        store.close()
    render = render_html if args.format == "html" else render_markdown
    text = render(rows, k=args.k, window_hours=args.window_hours)
    if args.out:
        write_bytes_atomic(Path(args.out), text.encode("utf-8"))
        print(f"wrote {args.out} ({len(rows) - 1} days)")
    else:
        sys.stdout.write(text)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        result = store.replay(
            parse_time(args.start) if args.start else None,
            parse_time(args.end) if args.end else None,
            k=args.k,
            window_hours=args.window_hours,
            engine=args.engine,
            platform=args.platform,
            action_types=args.action_types.split(",") if args.action_types else None,
        )
    finally:
        store.close()
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        result = store.prune(args.keep_days, events_keep_days=args.events_keep_days)
    finally:
        store.close()
    d = result["deleted"]
    since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(result["horizon"]))
    print(
        f"kept what is newer than {since}: deleted {d['impressions']} impressions, {d['engagements']} engagements, "
        f"{d['events']} events"
    )
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    store = _open(args)
    store.close()
    print(f"schema ready in {store.engine.url.render_as_string(hide_password=True)}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m app.store", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--database-url", default=None, help="overrides DATABASE_URL")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("seed", help="replace users, items and interactions with a training log")
    s.add_argument("--data-path", help="interaction log: JSONL (.gz) file or a directory of them")
    s.add_argument("--items-path", help="catalogue JSONL (default: items.jsonl beside the log)")
    s.add_argument("--movielens", help="a MovieLens zip or folder (100k, 1m, latest, 20m, 25m) instead")
    s.add_argument("--strict", action="store_true", help="stop at the first bad line instead of skipping it")
    s.set_defaults(func=cmd_seed)

    r = sub.add_parser("report", help="daily Markdown or HTML report of a date range (UTC)")
    r.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    r.add_argument("--end", required=True, help="last day (inclusive), YYYY-MM-DD")
    r.add_argument("--format", choices=("md", "html"), default="md")
    r.add_argument("--out", help="output file (written atomically); default: stdout")
    r.add_argument("--k", type=int, default=10)
    r.add_argument("--window-hours", type=float, default=24.0)
    r.set_defaults(func=cmd_report)

    x = sub.add_parser("replay", help="replay evaluation of logged lists (JSON on stdout)")
    x.add_argument("--start", help="Unix seconds, YYYY-MM-DD or ISO 8601")
    x.add_argument("--end", help="Unix seconds, YYYY-MM-DD or ISO 8601 (exclusive)")
    x.add_argument("--k", type=int, default=10)
    x.add_argument("--window-hours", type=float, default=24.0)
    x.add_argument("--engine")
    x.add_argument("--platform")
    x.add_argument("--action-types", help="comma-separated; default: actions with a positive weight")
    x.set_defaults(func=cmd_replay)

    pr = sub.add_parser("prune", help="delete impressions and engagements older than --keep-days (cron it daily)")
    pr.add_argument("--keep-days", type=float, required=True, help="keep this many days of lists and engagements")
    pr.add_argument(
        "--events-keep-days",
        type=float,
        help="also delete online events older than this (they are training data: prune after retraining ingested them)",
    )
    pr.set_defaults(func=cmd_prune)

    i = sub.add_parser("init", help="create the schema")
    i.set_defaults(func=cmd_init)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    if getattr(args, "k", 1) < 1:
        raise SystemExit("--k must be at least 1")
    if getattr(args, "window_hours", 1) <= 0:
        raise SystemExit("--window-hours must be positive")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
