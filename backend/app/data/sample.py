"""Deterministic generator of the shipped sample data (``backend/data``): no MovieLens content.

Users have 2-3 favourite genres; item popularity is Zipf-like; each user touches a few dozen items
picked by popularity x taste, and each touch becomes a funnel of events (view, click, play, like,
playlist_add, rating, skip) whose odds rise when the item matches the user's taste. Timestamps span
six months of 2024; every user has a main platform (web or mobile). The same seed always gives the
same bytes:

    python -m app.data.sample --out backend/data [--users 1000 --items 600 --seed 42]

The hidden taste model is public for simulations (``app.simulate``): ``population(n_users, n_items,
seed)`` returns the catalogue, the item x genre membership, the base popularity, every user's
favourite genres and ``affinity`` (the share of an item's genres the user likes), exactly the ones
behind ``generate`` with the same arguments.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from app.files import write_bytes_atomic

GENRES = [
    "Action",
    "Adventure",
    "Animation",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Family",
    "Fantasy",
    "Horror",
    "Music",
    "Romance",
    "Sci-Fi",
    "Thriller",
]
ADJECTIVES = [
    "Silent",
    "Golden",
    "Broken",
    "Hidden",
    "Last",
    "Crimson",
    "Distant",
    "Electric",
    "Frozen",
    "Wild",
    "Lost",
    "Burning",
    "Quiet",
    "Midnight",
    "Hollow",
    "Velvet",
    "Iron",
    "Secret",
    "Endless",
    "Shattered",
    "Paper",
    "Northern",
    "Restless",
    "Scarlet",
    "Wandering",
    "Bright",
    "Falling",
    "Savage",
    "Gentle",
    "Forgotten",
]
NOUNS = [
    "Harbor",
    "Garden",
    "River",
    "Empire",
    "Signal",
    "Mirror",
    "Horizon",
    "Kingdom",
    "Orchard",
    "Station",
    "Lantern",
    "Voyage",
    "Circus",
    "Island",
    "Machine",
    "Promise",
    "Shadow",
    "Summer",
    "Tide",
    "Valley",
    "Winter",
    "Frontier",
    "Letter",
    "Compass",
    "Carnival",
    "Echo",
    "Fortress",
    "Melody",
    "Orbit",
    "Passage",
]
PLACES = [
    "Avalon",
    "the North",
    "Glass Bay",
    "Red Hill",
    "the Deep",
    "Old Town",
    "the Stars",
    "Paris",
    "the Desert",
    "Tomorrow",
    "Marrow Creek",
    "the Lake",
    "Eden",
    "the Sea",
    "Blue Mesa",
]
START_TS = 1_704_067_200  # 2024-01-01T00:00:00Z
SPAN_DAYS = 182  # through 2024-06-30
DAY = 86_400

# Event funnel of one user-item touch: (event, base odds, extra odds when the item matches the
# user's taste, delay range in seconds after the first touch).
FUNNEL = [
    ("click", 0.35, 0.20, (3, 60)),
    ("play", 0.20, 0.35, (60, 900)),
    ("like", 0.04, 0.26, (600, 5_400)),
    ("playlist_add", 0.02, 0.14, (600, 7_200)),
    ("skip", 0.18, -0.16, (5, 40)),
]
RATING_ODDS = 0.12


def make_titles(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct titles from the word lists ("The Silent Harbor", "Winter of Avalon", ...)."""
    titles: list[str] = []
    seen: set[str] = set()
    while len(titles) < n:
        a, b, c = rng.choice(ADJECTIVES), rng.choice(NOUNS), rng.choice(PLACES)
        form = int(rng.integers(4))
        title = [f"The {a} {b}", f"{b} of {c}", f"{a} {b}s", f"The {b} from {c}"][form]
        if title in seen:
            title = f"{title} {['II', 'III', 'Returns', 'Reborn'][int(rng.integers(4))]}"
        if title not in seen:
            seen.add(title)
            titles.append(title)
    return titles


def make_items(n_items: int, rng: np.random.Generator) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Catalogue rows, item x genre membership (bool) and Zipf-like base popularity."""
    genre_pop = rng.dirichlet(np.full(len(GENRES), 2.0))
    member = np.zeros((n_items, len(GENRES)), dtype=bool)
    n_genres = rng.choice([1, 2, 3], size=n_items, p=[0.4, 0.4, 0.2])
    for j in range(n_items):
        member[j, rng.choice(len(GENRES), size=n_genres[j], replace=False, p=genre_pop)] = True
    years = np.clip(2024 - np.floor(rng.exponential(12.0, size=n_items)), 1970, 2024).astype(int)
    durations = rng.integers(80, 160, size=n_items)
    titles = make_titles(n_items, rng)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    popularity = popularity[rng.permutation(n_items)]
    items = [
        {
            "item_id": f"i{j + 1:04d}",
            "title": titles[j],
            "genres": [GENRES[g] for g in np.flatnonzero(member[j])],
            "year": int(years[j]),
            "duration_min": int(durations[j]),
        }
        for j in range(n_items)
    ]
    return items, member, popularity


def make_tastes(n_users: int, member: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every user's 2-3 favourite genres (users x genres, bool), drawn by how common each genre is."""
    n_genres = member.shape[1]
    favourites = np.zeros((n_users, n_genres), dtype=bool)
    genre_weight = member.sum(axis=0) / member.sum()
    for u in range(n_users):
        favourites[u, rng.choice(n_genres, size=int(rng.integers(2, 4)), replace=False, p=genre_weight)] = True
    return favourites


def affinity(favourites: np.ndarray, member: np.ndarray) -> np.ndarray:
    """users x items: the share of the item's genres the user likes (0..1), the generator's true taste."""
    return (favourites.astype(np.float32) @ member.T.astype(np.float32)) / member.sum(axis=1)


def make_events(
    n_users: int,
    member: np.ndarray,
    popularity: np.ndarray,
    rng: np.random.Generator,
    favourites: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Columnar events sorted by time (ties by user, item, event order).

    ``favourites`` (from ``make_tastes``) are drawn from ``rng`` first when not given.
    """
    n_items = member.shape[0]
    if favourites is None:
        favourites = make_tastes(n_users, member, rng)
    match = affinity(favourites, member)  # match[u, j]: share of the item's genres the user likes (0..1)
    appeal = popularity[None, :] * (0.05 + 3.0 * match)
    n_touch = np.clip(np.round(rng.lognormal(np.log(17), 0.7, size=n_users)), 5, n_items // 3).astype(int)
    web_user = rng.random(n_users) < 0.55
    start = START_TS + rng.integers(0, (SPAN_DAYS - 30) * DAY, size=n_users)
    span = rng.integers(20 * DAY, SPAN_DAYS * DAY, size=n_users)
    span = np.minimum(span, START_TS + SPAN_DAYS * DAY - start)

    pair_user = np.repeat(np.arange(n_users), n_touch)
    pair_item = np.concatenate(
        [rng.choice(n_items, size=n_touch[u], replace=False, p=appeal[u] / appeal[u].sum()) for u in range(n_users)]
    )
    m = match[pair_user, pair_item]
    t0 = start[pair_user] + (rng.random(len(pair_user)) * span[pair_user]).astype(np.int64)

    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("user", "item", "event", "ts", "rating")}

    def emit(mask: np.ndarray, event: int, ts: np.ndarray, rating: np.ndarray | None = None) -> None:
        cols["user"].append(pair_user[mask])
        cols["item"].append(pair_item[mask])
        cols["event"].append(np.full(int(mask.sum()), event))
        cols["ts"].append(ts[mask])
        cols["rating"].append(np.zeros(int(mask.sum()), dtype=int) if rating is None else rating[mask])

    n = len(pair_user)
    emit(rng.random(n) < 0.9, EVENT_NAMES.index("view"), t0)
    for name, base, extra, (lo, hi) in FUNNEL:
        emit(rng.random(n) < base + extra * m, EVENT_NAMES.index(name), t0 + rng.integers(lo, hi, size=n))
    replay = rng.random(n) < 0.05 + 0.25 * m  # a second play days later: repeated events aggregate
    emit(replay, EVENT_NAMES.index("play"), t0 + rng.integers(DAY, 21 * DAY, size=n))
    stars = np.clip(np.round(rng.normal(2.4 + 2.4 * m, 0.8)), 1, 5).astype(int)
    emit(rng.random(n) < RATING_ODDS, EVENT_NAMES.index("rating"), t0 + rng.integers(3_600, 2 * DAY, size=n), stars)

    out = {k: np.concatenate(v) for k, v in cols.items()}
    # a touch that drew no event at all still leaves a view behind
    touched = np.zeros(n_users * n_items, dtype=bool)
    touched[out["user"] * n_items + out["item"]] = True
    lonely = ~touched[pair_user * n_items + pair_item]
    if lonely.any():
        for k, v in zip(
            ("user", "item", "event", "ts", "rating"),
            (
                pair_user[lonely],
                pair_item[lonely],
                np.full(int(lonely.sum()), 0),
                t0[lonely],
                np.zeros(int(lonely.sum()), dtype=int),
            ),
            strict=False,
        ):
            out[k] = np.concatenate([out[k], v])
    platform_web = np.where(rng.random(len(out["ts"])) < 0.85, web_user[out["user"]], ~web_user[out["user"]])
    out["web"] = platform_web
    order = np.lexsort((out["event"], out["item"], out["user"], out["ts"]))
    return {k: v[order] for k, v in out.items()}


EVENT_NAMES = ["view"] + [f[0] for f in FUNNEL] + ["rating"]


@dataclass(frozen=True)
class Population:
    """The hidden model behind one generated sample: users ``u0001``.. and items ``i0001``.. by index."""

    items: list[dict]  # catalogue rows
    member: np.ndarray  # items x genres, bool
    popularity: np.ndarray  # items: Zipf-like base popularity (max 1)
    favourites: np.ndarray  # users x genres, bool

    @property
    def user_ids(self) -> list[str]:
        return [user_id(u) for u in range(len(self.favourites))]

    @property
    def item_ids(self) -> list[str]:
        return [row["item_id"] for row in self.items]

    def affinity(self) -> np.ndarray:
        """users x items, 0..1 (``affinity``)."""
        return affinity(self.favourites, self.member)


def user_id(u: int) -> str:
    return f"u{u + 1:04d}"


def _draw(n_users: int, n_items: int, seed: int) -> tuple[Population, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    items, member, popularity = make_items(n_items, rng)
    favourites = make_tastes(n_users, member, rng)
    events = make_events(n_users, member, popularity, rng, favourites)
    return Population(items, member, popularity, favourites), events


def population(n_users: int = 1000, n_items: int = 600, seed: int = 42) -> Population:
    """The users, items and tastes that ``generate`` with the same arguments draws its log from."""
    return _draw(n_users, n_items, seed)[0]


def generate(n_users: int = 1000, n_items: int = 600, seed: int = 42) -> tuple[bytes, bytes]:
    """(interactions JSONL, items JSONL) as bytes; identical for identical arguments."""
    pop, ev = _draw(n_users, n_items, seed)
    items = pop.items
    lines = []
    for u, j, e, ts, r, web in zip(
        ev["user"].tolist(),
        ev["item"].tolist(),
        ev["event"].tolist(),
        ev["ts"].tolist(),
        ev["rating"].tolist(),
        ev["web"].tolist(),
        strict=False,
    ):
        row = {
            "user_id": user_id(u),
            "item_id": f"i{j + 1:04d}",
            "event": EVENT_NAMES[e],
            "ts": ts,
            "platform": "web" if web else "mobile",
        }
        if r:
            row["rating"] = r
        lines.append(orjson.dumps(row))
    interactions = b"\n".join(lines) + b"\n"
    catalogue = b"\n".join(orjson.dumps(item) for item in items) + b"\n"
    return interactions, catalogue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.data.sample", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "data",
        help="output directory (default: backend/data)",
    )
    parser.add_argument("--users", type=int, default=1000, help="number of users (default 1000)")
    parser.add_argument("--items", type=int, default=600, help="number of items (default 600)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    args = parser.parse_args(argv)
    if args.users < 1 or args.items < 20:
        parser.error("--users must be >= 1 and --items >= 20")
    interactions, catalogue = generate(args.users, args.items, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(args.out / "interactions.jsonl", interactions)
    write_bytes_atomic(args.out / "items.jsonl", catalogue)
    n_events = interactions.count(b"\n")
    print(
        f"wrote {n_events} events to {args.out / 'interactions.jsonl'} "
        f"and {args.items} items to {args.out / 'items.jsonl'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
