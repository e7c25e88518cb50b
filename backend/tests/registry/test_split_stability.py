"""Across retraining runs, production's training rows must never become validation rows."""

from __future__ import annotations

import numpy as np

from app.data.dataset import build_dataset
from app.data.types import Positives
from app.eval.splits import leave_last_out
from app.registry.pipeline import stable_ids


def positives(rows: list[tuple[str, str, int]]) -> Positives:
    u, i, t = zip(*rows, strict=False)
    obj = lambda xs: np.array(xs, dtype=object)  # noqa: E731
    return Positives(obj(u), obj(i), np.ones(len(rows), np.float32), np.array(t, np.int64))


def pairs(split, part: str) -> set[tuple[str, str]]:
    d = getattr(split, part)
    return set(zip(np.array(split.users.ids)[d.user_idx], np.array(split.items.ids)[d.item_idx], strict=False))


def test_stable_ids_keep_production_order_and_append_new_ones_sorted():
    values = np.array(["c", "a", "z", "b", "a"], dtype=object)
    assert stable_ids(["b", "x", "c"], values).ids == ["b", "c", "a", "z"]  # "x" has no positives any more
    assert stable_ids([], values).ids == ["a", "b", "c", "z"]


def test_ties_are_split_the_same_way_after_new_ids_arrive():
    # 60 users rate 5 items each in the same second (as MovieLens users do); leave-last-out breaks the
    # ties by a hash of the *indices*, so a new item id that sorts first would reshuffle them.
    old = [(f"u{u:02d}", f"i{(u + k) % 20 + 10}", 1000) for u in range(60) for k in range(5)]
    new = [("u00", "i00", 2000), ("new-user", "i05", 2000)]  # later events, ids that sort before the old ones
    before = leave_last_out(build_dataset(positives(old)))
    trained = pairs(before, "train")

    sorted_maps = leave_last_out(build_dataset(positives(old + new)))
    assert pairs(sorted_maps, "validation") & trained  # the hazard is real with freshly sorted ids

    pos = positives(old + new)
    stable = leave_last_out(
        build_dataset(pos, stable_ids(before.users.ids, pos.user_id), stable_ids(before.items.ids, pos.item_id))
    )
    assert not pairs(stable, "validation") & trained
    assert pairs(stable, "validation") - {("u00", "i00")} <= pairs(before, "validation") | pairs(before, "test")
