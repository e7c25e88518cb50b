"""Deterministic synthetic interaction logs of any size, shaped like MovieLens 20M or like a shop's log.

    python -m app.data.synthetic --events 20000000 --out /tmp/ml20m-like [--shape movielens|ecommerce] [--seed 0]

writes ``interactions.jsonl`` (one event per line, the reader's format) and ``items.jsonl`` (id, title,
genres, year). The same arguments always give the same bytes. No MovieLens data is used: only its shape.

Shapes:

* ``movielens``: users scale with the events (138,000 users and 27,000 items at 20M events, like
  ML-20M), every user has at least 20 events and activity is heavy-tailed (lognormal; a median user
  has ~80, a few have thousands); item popularity is Zipf-like.
* ``ecommerce``: about 10 distinct items (positives) per user, thousands of items, weak popularity
  skew and narrow tastes, so users overlap little.

Taste is planted so that quality can be measured: items belong to latent topics (their genres follow
from the topic), every user has a taste over topics (Dirichlet: a few favourites), most new items a
user meets come from their favourite topics, and the odds of a positive follow-up (like, playlist_add,
a high rating) rise with how much the user likes the item's topic, those of a skip, a dislike or a
low rating fall. Events come in touches: a first event on an item (view, play, click), then follow-ups
on it. Each user is active over a window of days to years between 2015 and 2024; their events are in
time order, and the file is ordered by user (as ML-20M's ratings.csv is), so leave-last-out splits
mean something.

It streams: per-user event counts are drawn for everyone first (one integer per user, fixed to sum to
exactly ``--events``), then blocks of users are generated with NumPy (each block from its own seed, so
a block does not depend on the others) and written as bytes: memory stays flat at any size.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from app.data.sample import ADJECTIVES, GENRES, NOUNS, PLACES
from app.files import atomic_file

START_TS = 1_420_070_400  # 2015-01-01T00:00:00Z
END_TS = 1_735_689_600  # 2025-01-01T00:00:00Z
DAY = 86_400


@dataclass(frozen=True)
class Shape:
    """The knobs of one kind of log."""

    users_per_event: float  # users = events x this
    min_events: int  # per user
    activity_sigma: float  # lognormal spread of the per-user event counts above the minimum
    items_at_1m: int  # items at 1M events; they grow with events ** items_exponent
    items_exponent: float
    min_items: int
    n_topics: int
    taste_alpha: float  # Dirichlet concentration of a user's taste over topics (small: few favourites)
    zipf: float  # item popularity ~ 1 / rank ** zipf
    p_new: float  # share of a user's events that start on a new item (the rest follow up the last one)
    p_taste: float  # share of new items drawn from the user's topics (the rest by popularity alone)
    first: tuple[tuple[str, float], ...]  # first event on an item: (event, odds)
    follow: tuple[tuple[str, float, float], ...]  # follow-ups: (event, odds, + odds x match)
    median_days: float  # a user's active window (lognormal median)
    users_per_block: int


SHAPES: dict[str, Shape] = {
    "movielens": Shape(
        users_per_event=138_000 / 20_000_000,
        min_events=20,
        activity_sigma=1.2,
        items_at_1m=4_500,
        items_exponent=0.6,  # 27,000 items at 20M events
        min_items=100,
        n_topics=24,
        taste_alpha=0.15,
        zipf=1.0,
        p_new=0.55,
        p_taste=0.8,
        first=(("view", 0.5), ("play", 0.3), ("click", 0.2)),
        follow=(
            ("rating", 0.30, 0.05),
            ("like", 0.03, 0.22),
            ("playlist_add", 0.01, 0.10),
            ("play", 0.10, 0.05),
            ("click", 0.08, 0.0),
            ("skip", 0.22, -0.20),
            ("dislike", 0.12, -0.11),
        ),
        median_days=200.0,
        users_per_block=2_000,
    ),
    "ecommerce": Shape(
        users_per_event=1 / 16,
        min_events=1,
        activity_sigma=0.5,
        items_at_1m=5_000,
        items_exponent=0.5,
        min_items=1_000,
        n_topics=200,
        taste_alpha=0.05,
        zipf=0.6,
        p_new=0.62,
        p_taste=0.9,
        first=(("view", 0.85), ("click", 0.15)),
        follow=(
            ("click", 0.35, 0.10),
            ("like", 0.05, 0.25),
            ("share", 0.01, 0.04),
            ("rating", 0.05, 0.05),
            ("skip", 0.10, -0.08),
            ("dislike", 0.08, -0.07),
        ),
        median_days=30.0,
        users_per_block=20_000,
    ),
}


def user_id(u: int) -> str:
    return f"u{u + 1}"


def item_id(j: int) -> str:
    return f"i{j + 1}"


def titles(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct titles from the sample's word lists; a sequel number once the combinations run out."""
    combos = [f"The {a} {b}" for a in ADJECTIVES for b in NOUNS]
    combos += [f"{b} of {c}" for b in NOUNS for c in PLACES]
    combos += [f"{a} {b}s" for a in ADJECTIVES for b in NOUNS]
    combos += [f"The {b} from {c}" for b in NOUNS for c in PLACES]
    order = rng.permutation(len(combos))
    return [combos[order[j % len(combos)]] + (f" {j // len(combos) + 1}" if j >= len(combos) else "") for j in range(n)]


@dataclass
class World:
    """Everything drawn before the blocks: sizes, items, per-user event counts."""

    shape: Shape
    seed: int
    n_events: int
    counts: np.ndarray  # events per user (int64, sums to n_events)
    item_topic: np.ndarray  # topic per item
    popularity: np.ndarray  # per item, max 1
    items: list[dict]  # catalogue rows

    def __post_init__(self) -> None:
        # sampling by popularity inside a topic: items sorted by topic, each topic's popularity CDF
        # shifted by the topic's index, so one searchsorted finds (topic + u) in the right topic
        self.by_topic = np.argsort(self.item_topic, kind="stable")
        sorted_topic = self.item_topic[self.by_topic]
        start = np.searchsorted(sorted_topic, np.arange(self.shape.n_topics + 1))
        self.topic_has_items = start[1:] > start[:-1]
        self.topic_cdf = np.zeros(self.n_items)
        for t in np.flatnonzero(self.topic_has_items).tolist():
            self.topic_cdf[start[t] : start[t + 1]] = _cdf(self.popularity[self.by_topic[start[t] : start[t + 1]]]) + t
        self.pop_cdf = _cdf(self.popularity)

    @property
    def n_users(self) -> int:
        return int(self.counts.size)

    @property
    def n_items(self) -> int:
        return int(self.item_topic.size)

    def blocks(self) -> Iterator[tuple[int, int]]:
        size = self.shape.users_per_block
        for first in range(0, self.n_users, size):
            yield first, min(first + size, self.n_users)

    def tastes(self, first: int, last: int) -> np.ndarray:
        """Users ``first..last-1``'s taste over topics (rows sum to 1): the planted truth."""
        return _block_rng(self.seed, first).dirichlet(
            np.full(self.shape.n_topics, self.shape.taste_alpha), last - first
        )


def _block_rng(seed: int, first_user: int) -> np.random.Generator:
    return np.random.default_rng([seed, 1, first_user])


def plan(n_events: int, shape: str = "movielens", seed: int = 0, n_items: int | None = None) -> World:
    """Sizes, the catalogue and every user's event count for a log of exactly ``n_events`` lines
    (``n_items``: the catalogue's size instead of the shape's, which grows with the events)."""
    s = SHAPES[shape]
    n_users = max(1, round(n_events * s.users_per_event))
    n_users = min(n_users, n_events // s.min_events)
    if n_users < 1:
        raise ValueError(f"the {shape} shape needs at least {s.min_events} events")
    if n_items is None:
        n_items = max(s.min_items, round(s.items_at_1m * (n_events / 1e6) ** s.items_exponent))
    elif n_items < 1:
        raise ValueError("the catalogue needs at least 1 item")
    rng = np.random.default_rng([seed, 0])

    # per-user counts: the minimum plus a lognormal share of the rest, rounded to sum exactly
    spare = n_events - n_users * s.min_events
    weight = rng.lognormal(0.0, s.activity_sigma, n_users)
    exact = weight / weight.sum() * spare
    extra = np.floor(exact).astype(np.int64)
    short = spare - int(extra.sum())
    extra[np.argsort(extra - exact, kind="stable")[:short]] += 1  # the largest remainders get one more
    counts = s.min_events + extra

    topic = rng.integers(0, s.n_topics, n_items)
    popularity = (1.0 / np.arange(1, n_items + 1) ** s.zipf)[rng.permutation(n_items)]
    extra_genre = rng.integers(0, len(GENRES), n_items)
    has_extra = rng.random(n_items) < 0.4
    years = np.clip(2024 - np.floor(rng.exponential(15.0, n_items)), 1930, 2024).astype(int)
    names = titles(n_items, rng)
    items = []
    for j in range(n_items):
        t = int(topic[j])
        genres = {GENRES[t % len(GENRES)], GENRES[(t * 5 + 3) % len(GENRES)]}  # a topic's two genres
        if has_extra[j]:
            genres.add(GENRES[int(extra_genre[j])])
        items.append({"item_id": item_id(j), "title": names[j], "genres": sorted(genres), "year": int(years[j])})
    return World(s, seed, n_events, counts, topic, popularity / popularity.max(), items)


def _cdf(p: np.ndarray) -> np.ndarray:
    c = np.cumsum(p, dtype=np.float64)
    return c / c[-1]


def block_events(world: World, first: int, last: int) -> dict[str, np.ndarray]:
    """The events of users ``first..last-1``, by user then time: user, item, event (index into
    ``event_names``), ts, rating (0 = none), web (bool)."""
    s = world.shape
    rng = _block_rng(world.seed, first)
    taste = rng.dirichlet(np.full(s.n_topics, s.taste_alpha), last - first)  # first draw: see World.tastes
    counts = world.counts[first:last]
    n = int(counts.sum())
    local = np.repeat(np.arange(last - first), counts)
    starts = np.r_[0, np.cumsum(counts)[:-1]]

    is_new = rng.random(n) < s.p_new
    is_new[starts] = True
    touch_user = local[is_new]
    n_touch = touch_user.size
    # the item of each touch: from a favourite topic (by popularity within it), or by popularity alone
    shifted = (np.cumsum(taste, axis=1) + np.arange(last - first)[:, None]).ravel()  # row u spans (u, u + 1]
    topic = np.searchsorted(shifted, touch_user + rng.random(n_touch)) - touch_user * s.n_topics
    topic = np.clip(topic, 0, s.n_topics - 1)
    in_topic = np.searchsorted(world.topic_cdf, topic + rng.random(n_touch))
    from_topic = world.by_topic[np.minimum(in_topic, world.n_items - 1)]
    by_pop = np.minimum(np.searchsorted(world.pop_cdf, rng.random(n_touch)), world.n_items - 1)
    use_topic = (rng.random(n_touch) < s.p_taste) & world.topic_has_items[topic]
    touch_item = np.where(use_topic, from_topic, by_pop)
    liked = taste[touch_user, world.item_topic[touch_item]] / taste[touch_user].max(axis=1)  # 0..1

    touch = np.cumsum(is_new) - 1
    item = touch_item[touch]
    match = liked[touch]

    first_p = np.array([odds for _, odds in s.first])
    follow_base = np.array([odds for _, odds, _ in s.follow])
    follow_gain = np.array([gain for _, _, gain in s.follow])
    names = event_names(s)
    event = np.empty(n, np.int64)
    event[is_new] = np.searchsorted(_cdf(first_p), rng.random(n_touch), side="right")
    follow = ~is_new
    w = np.maximum(follow_base + follow_gain * match[follow, None], 0.0)
    cdf = np.cumsum(w, axis=1)
    draw = rng.random(int(follow.sum()))[:, None] * cdf[:, -1:]
    event[follow] = len(s.first) + np.minimum((cdf < draw).sum(axis=1), len(s.follow) - 1)

    rating = np.zeros(n, np.int64)
    is_rating = event == names.index("rating")
    stars = np.clip(np.round(rng.normal(1.6 + 3.0 * match, 0.9)), 1, 5).astype(np.int64)
    rating[is_rating] = stars[is_rating]

    # time: each user's window; new items spread over it, follow-ups seconds to hours after
    days = np.minimum(rng.lognormal(np.log(s.median_days), 1.0, last - first), (END_TS - START_TS) / DAY * 0.9)
    span = (days * DAY).astype(np.int64) + 60
    begin = START_TS + (rng.random(last - first) * (END_TS - START_TS - span)).astype(np.int64)
    touches_per_user = np.bincount(touch_user, minlength=last - first)
    gap = np.where(
        is_new,
        rng.exponential(1.0, n) * (span / np.maximum(touches_per_user, 1))[local],
        rng.integers(5, 4 * 3600, n),
    ).astype(np.int64)
    gap[starts] = 0
    clock = np.cumsum(gap)
    clock -= clock[starts][local]  # seconds since the user's first event
    total = clock[np.r_[starts[1:], n] - 1]  # at the user's last event
    squeeze = np.minimum(1.0, span / np.maximum(total, 1))  # a window is never overrun: no clipping
    ts = begin[local] + (clock * squeeze[local]).astype(np.int64)

    main_web = rng.random(last - first) < 0.55
    web = np.where(rng.random(n) < 0.85, main_web[local], ~main_web[local])
    return {"user": local + first, "item": item, "event": event, "ts": ts, "rating": rating, "web": web}


def event_names(shape: Shape) -> list[str]:
    """Event index -> name: the first events, then the follow-ups (a name may appear in both)."""
    return [e for e, _ in shape.first] + [e for e, _, _ in shape.follow]


class Writer:
    """JSONL bytes for blocks of events, from pre-rendered pieces (no dict or dumps per line):
    ``{"user_id":"u1","item_id":"i9","event":"rating","ts":1420070400,"platform":"web","rating":4}``."""

    def __init__(self, world: World):
        self.world = world
        self.items = np.array([f'{item_id(j)}","event":"'.encode() for j in range(world.n_items)], dtype=object)
        self.events = np.array([f'{e}","ts":'.encode() for e in event_names(world.shape)], dtype=object)
        tails = []
        for platform in ("mobile", "web"):
            for stars in range(6):  # 0: no rating
                rating = f',"rating":{stars}' if stars else ""
                tails.append(f',"platform":"{platform}"{rating}}}\n'.encode())
        self.tails = np.array(tails, dtype=object)

    def lines(self, ev: dict[str, np.ndarray], first: int, last: int) -> bytes:
        heads = np.array([f'{{"user_id":"{user_id(u)}","item_id":"'.encode() for u in range(first, last)], dtype=object)
        pieces = zip(
            heads[ev["user"] - first].tolist(),
            self.items[ev["item"]].tolist(),
            self.events[ev["event"]].tolist(),
            ev["ts"].astype("S10").tolist(),  # every ts has 10 digits
            self.tails[ev["web"] * 6 + ev["rating"]].tolist(),
            strict=True,
        )
        return b"".join(map(b"".join, pieces))


def write(out: Path, n_events: int, shape: str = "movielens", seed: int = 0, n_items: int | None = None) -> World:
    """Write ``out/interactions.jsonl`` and ``out/items.jsonl`` (each atomically)."""
    world = plan(n_events, shape, seed, n_items)
    out.mkdir(parents=True, exist_ok=True)
    writer = Writer(world)
    with atomic_file(out / "interactions.jsonl", durable=False) as fh:
        for first, last in world.blocks():
            fh.write(writer.lines(block_events(world, first, last), first, last))
    with atomic_file(out / "items.jsonl", durable=False) as fh:
        fh.write(b"".join(orjson.dumps(row) + b"\n" for row in world.items))
    return world


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.data.synthetic", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events", type=int, required=True, help="number of lines to write (20,000,000 take about 20 s)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="movielens")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--items",
        type=int,
        help="catalogue size (default: grows with --events; movielens: 27,154 at 20M, ecommerce: 5,000 at 1M)",
    )
    args = parser.parse_args(argv)
    if args.items is not None and args.items < 1:
        parser.error("--items must be at least 1")
    if args.events < SHAPES[args.shape].min_events:
        parser.error(f"--events must be at least {SHAPES[args.shape].min_events} for the {args.shape} shape")
    started = time.perf_counter()
    world = write(args.out, args.events, args.shape, args.seed, args.items)
    print(
        f"wrote {args.events} events of {world.n_users} users on {world.n_items} items ({args.shape}, seed "
        f"{args.seed}) to {args.out} in {time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
