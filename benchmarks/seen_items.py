"""Seen means seen, checked from outside: how many items each user already interacted with come back in their top 10.

    PYTHONPATH=backend python benchmarks/seen_items.py --model-dir /tmp/ml100k-model \\
        --data-path /tmp/ml100k/interactions.jsonl [--user 1]

Loads the model as the service does (``app.service.core``), asks for every known user's top 10 with the
default engine and counts the items the log shows the user interacted with (any event, any rating).
Prints the given user's list beside what they had done with each item. MovieLens stays outside the
repository (import it with ``python -m app.data.movielens import``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend"))

from app.config import Settings
from app.model.artifacts import load_bundle
from app.service.core import strategies
from app.service.core.runtime import Runtime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--data-path", type=Path, required=True, help="the JSONL log the model was trained on")
    p.add_argument("--user", default="1")
    args = p.parse_args(argv)
    done: dict[str, dict[str, str]] = {}
    with open(args.data_path, "rb") as f:
        for line in f:
            e = orjson.loads(line)
            what = e["event"] + (f" {e['rating']:g}" if e.get("rating") is not None else "")
            done.setdefault(str(e["user_id"]), {})[str(e["item_id"])] = what
    rt = Runtime(load_bundle(args.model_dir), args.model_dir, Settings(model_dir=args.model_dir))
    again = users = 0
    for user in rt.users.ids:
        ids = strategies.recommend(rt, user, 10).item_ids
        again += sum(1 for i in ids if i in done.get(user, {}))
        users += 1
        if user == args.user:
            marks = [f"{i} ({done[user][i]})" if i in done[user] else i for i in ids]
            print(f"user {user}'s top 10: " + ", ".join(marks))
    print(f"items the user had already interacted with, over {users} users' top 10: {again}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
