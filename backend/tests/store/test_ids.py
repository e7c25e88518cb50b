"""Recommendation-set ids: RFC 9562 version-7 UUIDs, ordered by creation time."""

from __future__ import annotations

import os
import time
import uuid
from types import SimpleNamespace

from app.store import ids as ids_module
from app.store.ids import new_recset_id


def id_at(monkeypatch, now_ns: int) -> uuid.UUID:
    """The next id when the clock reads ``now_ns``."""
    monkeypatch.setattr(ids_module, "time", SimpleNamespace(time_ns=lambda: now_ns))
    return uuid.UUID(new_recset_id())


def test_version_variant_and_timestamp():
    before = int(time.time() * 1000)
    u = uuid.UUID(new_recset_id())
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
    late = id_at(monkeypatch, 4_000_000_000_000_000_000)
    early = id_at(monkeypatch, 1_000_000_000_000_000_000)
    assert early.int > late.int and early.version == 7 and early.variant == uuid.RFC_4122


def test_each_millisecond_draws_new_random_bits(monkeypatch):
    monkeypatch.setattr(ids_module, "_last", (0, 0))
    t = 1_700_000_000_000 * 1_000_000
    a, same_ms, next_ms = id_at(monkeypatch, t), id_at(monkeypatch, t + 500_000), id_at(monkeypatch, t + 1_000_000)
    rand = lambda u: u.int & ((1 << 62) - 1) | ((u.int >> 64) & 0xFFF) << 62  # noqa: E731
    assert rand(same_ms) == rand(a) + 1  # same millisecond: the counter continues
    assert rand(next_ms) != rand(same_ms) + 1  # a new millisecond: fresh random bits (fails with p = 2**-74)


def test_a_forked_child_does_not_repeat_its_parents_next_id(monkeypatch):
    frozen = time.time_ns()
    monkeypatch.setattr(ids_module, "time", SimpleNamespace(time_ns=lambda: frozen))  # one millisecond for both
    read, write = os.pipe()
    new_recset_id()
    pid = os.fork()
    if pid == 0:  # child: its next id, then exit at once
        os.write(write, new_recset_id().encode())
        os._exit(0)
    os.close(write)
    mine = new_recset_id()
    os.waitpid(pid, 0)
    theirs = os.read(read, 100).decode()
    os.close(read)
    assert theirs and theirs != mine


def test_issued_at_reads_the_time_of_our_ids_only() -> None:
    from app.store.ids import issued_at

    made = issued_at(new_recset_id())
    assert made is not None and abs(made - time.time()) < 1.0
    assert issued_at("3f0c8f4e-9a51-4b9e-8d37-1c2b8a5e6f10") is None  # a UUIDv4: no time in it
    assert issued_at("not-a-uuid") is None
