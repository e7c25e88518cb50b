"""A small hand-made log (impressions, engagements, online events) whose metrics are worked out by hand
in the tests. T0 = 2026-01-01 00:00 UTC; the first day is [T0, T0 + 86400).

Lists (recset, user, engine, version, platform, endpoint, items, ts, latency ms, fallback):
  A  u1 nn       v1 web /recommendations [i1 i2 i3 i4 i5] T0      10  no
  B  u2 popular  v1 ios /popular         [i1 i2]          T0+100  20  yes
  C  u3 nn       v2 web /recommendations [i3 i4 i5 i6]    T0+200  30  no
  D  u1 nn       v1 web /recommend       []               T0+300  40  yes   (nothing matched the filters)
  F  u5 popular  v1 web /popular         [i1 i2 i3]       T0+600  50  yes
  E  u4 baseline v1 web /recommendations [i7 i8 i9]       T0+2d   60  no    (outside the first day)
Engagements:
  A: u1 click i2 +60, like i2 +120 (same item again), click i5 +60 (rank 5), click i9 +70 (not in the list),
     watch i1 +25h (outside a 24 h window), dislike i3 +10 (negative action)
  B: u2 click i1 +50
  C: u3 add_to_playlist i3 +100, click i6 +200 (rank 4)
  E: u4 click i7 +10
Online events: u1 watch i3 T0+500; u2 skip i2 T0+200 (weight 0); u2 rating 2 on i1 T0+210 (below threshold);
  u3 view i5 T0+100 (before list C); u3 play i5 T0+1000; u5 watch i2 T0+700.
Catalogue (seeded): i1..i10.
"""

from __future__ import annotations

import uuid

import numpy as np

from app.data.types import EventLog
from app.store import Store

T0 = 1_767_225_600
DAY = 86_400
H = 3_600

RECSETS = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"recset-{name}")) for name in "ABCDEF"}

IMPRESSIONS = [
    ("A", "u1", "nn", "v1", "web", "/recommendations", ["i1", "i2", "i3", "i4", "i5"], T0, 10.0, False),
    ("B", "u2", "popular", "v1", "ios", "/popular", ["i1", "i2"], T0 + 100, 20.0, True),
    ("C", "u3", "nn", "v2", "web", "/recommendations", ["i3", "i4", "i5", "i6"], T0 + 200, 30.0, False),
    ("D", "u1", "nn", "v1", "web", "/recommend", [], T0 + 300, 40.0, True),
    ("F", "u5", "popular", "v1", "web", "/popular", ["i1", "i2", "i3"], T0 + 600, 50.0, True),
    ("E", "u4", "baseline", "v1", "web", "/recommendations", ["i7", "i8", "i9"], T0 + 2 * DAY, 60.0, False),
]

ENGAGEMENTS = [
    ("A", "u1", "i2", "click", 60),
    ("A", "u1", "i2", "like", 120),
    ("A", "u1", "i5", "click", 60),
    ("A", "u1", "i9", "click", 70),
    ("A", "u1", "i1", "watch", 25 * H),
    ("A", "u1", "i3", "dislike", 10),
    ("B", "u2", "i1", "click", 50),
    ("C", "u3", "i3", "add_to_playlist", 100),
    ("C", "u3", "i6", "click", 200),
    ("E", "u4", "i7", "click", 10),
]

EVENTS = [
    ("u1", "i3", "watch", T0 + 500, None, None, "web"),
    ("u2", "i2", "skip", T0 + 200, None, None, "ios"),
    ("u2", "i1", "rating", T0 + 210, 2.0, None, "ios"),
    ("u3", "i5", "view", T0 + 100, None, None, "web"),
    ("u3", "i5", "play", T0 + 1000, None, None, "web"),
    ("u5", "i2", "watch", T0 + 700, None, None, "web"),
]


def show_list(store: Store, user: str | None = "u1", items: tuple[str, ...] = ("a", "b", "c"), **kw) -> str:
    """Log one list (scores 0.9, 0.5, 0.1) under a fresh recset id, for the tests outside the scenario."""
    rid = str(uuid.uuid4())
    store.log_impression(rid, user, "/recommendations", "nn", "v1", list(items), [0.9, 0.5, 0.1][: len(items)], **kw)
    return rid


def impression_ts(name: str) -> int:
    return next(i[7] for i in IMPRESSIONS if i[0] == name)


def catalogue(n: int = 10) -> dict[str, dict]:
    return {
        f"i{j}": {"item_id": f"i{j}", "title": f"Item {j}", "genres": ["Drama"], "year": 2000 + j}
        for j in range(1, n + 1)
    }


#: Events whose explicit ``weight`` decides, as in training: a dislike weighted 2 and an unknown type
#: weighted 1.5 are positives; a view weighted 0 and a rating of 3 (below the threshold, whatever its
#: weight) are not.
EXPLICIT_WEIGHT_EVENTS = [
    ("w", "a", "dislike", T0 + 10, None, 2.0, None),
    ("w", "b", "view", T0 + 11, None, 0.0, None),
    ("w", "c", "rating", T0 + 12, 3.0, 5.0, None),
    ("w", "d", "teleport", T0 + 13, None, 1.5, None),
]


def event_log(rows: list[tuple]) -> EventLog:
    """Event rows ``(user_id, item_id, event, ts, rating, weight, platform)`` as a training ``EventLog``."""

    def obj(values: list) -> np.ndarray:
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out

    u, i, e, ts, r, w, p = zip(*rows, strict=False)
    return EventLog(
        user_id=obj(list(u)),
        item_id=obj(list(i)),
        event=obj(list(e)),
        ts=np.array(ts, dtype=np.int64),
        rating=np.array([np.nan if x is None else x for x in r], dtype=np.float32),
        weight=np.array([np.nan if x is None else x for x in w], dtype=np.float32),
        platform=obj([x or "" for x in p]),
    )


def seed_log() -> EventLog:
    return event_log(
        [
            ("u1", "i1", "watch", T0 - 3 * DAY, None, None, "web"),
            ("u1", "i4", "rating", T0 - 2 * DAY, 5.0, None, None),
            ("u2", "i2", "click", T0 - DAY, None, None, "ios"),
        ]
    )


def load(store: Store) -> None:
    """Write the whole scenario through the store's public API."""
    store.seed(seed_log(), catalogue())
    for name, user, engine, version, platform, endpoint, items, ts, latency, fallback in IMPRESSIONS:
        store.log_impression(
            RECSETS[name],
            user,
            endpoint,
            engine,
            version,
            items,
            [1.0 / (r + 1) for r in range(len(items))],
            platform=platform,
            is_fallback=fallback,
            latency_ms=latency,
            ts=ts,
        )
    for name, user, item, action, offset in ENGAGEMENTS:
        store.record_engagement(RECSETS[name], user, item, action, ts=impression_ts(name) + offset)
    store.record_events(EVENTS)
    store.flush()
