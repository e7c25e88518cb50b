"""Recommendation-set ids: RFC 9562 version-7 UUIDs, ordered by creation time."""

from __future__ import annotations

import time
import uuid

from app.store import ids as ids_module
from app.store.ids import new_recset_id, uuid7


def test_version_variant_and_timestamp():
    before = int(time.time() * 1000)
    u = uuid7()
    after = int(time.time() * 1000)
    assert u.version == 7 and u.variant == uuid.RFC_4122
    assert before <= u.int >> 80 <= after  # the top 48 bits are the Unix time in milliseconds


def test_ids_sort_in_creation_order_and_are_unique():
    ids = [new_recset_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert str(uuid.UUID(ids[0])) == ids[0]


def test_a_clock_that_steps_back_keeps_ids_increasing(monkeypatch):
    monkeypatch.setattr(ids_module, "_last", (0, 0))  # restored afterwards: later ids use the real clock
    late = uuid7(now_ns=4_000_000_000_000_000_000)
    early = uuid7(now_ns=1_000_000_000_000_000_000)
    assert early.int > late.int and early.version == 7 and early.variant == uuid.RFC_4122
