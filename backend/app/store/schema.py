"""The database schema (SQLAlchemy Core), created on start; ``SCHEMA_VERSION`` is stored in ``schema_version``.

Types are portable SQLAlchemy types, so the same tables work on SQLite and PostgreSQL. Times are Unix
seconds: integers for the training log and online events (the JSONL format), floats for impressions
and engagements (server clock, sub-second). ID columns are bounded strings (``MAX_ID_LENGTH``).
"""

from __future__ import annotations

import sqlalchemy as sa

from app.data.schema import MAX_ID_LENGTH  # the one id rule, shared with the reader and the API

#: Bump when a table changes; ``create_schema`` migrates older versions (``MIGRATIONS``) and refuses newer ones.
SCHEMA_VERSION = 2

metadata = sa.MetaData()

_id = lambda: sa.String(MAX_ID_LENGTH)  # noqa: E731 - one definition of an ID column type

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # always 1: one row
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)

#: ``source`` is "seed" (loaded from the training log) or "online" (first seen in ``POST /events``).
users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", _id(), primary_key=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("first_seen_ts", sa.BigInteger, nullable=True),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("item_id", _id(), primary_key=True),
    sa.Column("title", sa.Text, nullable=True),
    sa.Column("genres", sa.JSON, nullable=True),
    sa.Column("year", sa.Integer, nullable=True),
    sa.Column("extra", sa.JSON, nullable=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("first_seen_ts", sa.BigInteger, nullable=True),
)

#: The training log as seeded; children of ``users`` and ``items``.
interactions = sa.Table(
    "interactions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("user_id", _id(), sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("item_id", _id(), sa.ForeignKey("items.item_id"), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("rating", sa.Float, nullable=True),
    sa.Column("weight", sa.Float, nullable=True),
    sa.Column("platform", sa.String(64), nullable=True),
    sa.Index("ix_interactions_user_ts", "user_id", "ts"),
)

#: One row per recommendation response. ``item_ids``/``scores`` are the ranked list as shown.
#: Indexed by time only: both keys grow with time (UUIDv7 ids), so a batch of rows appends to the end of
#: each B-tree. A (user_id, ts) index put every row on a random page: the writer's cost per row grew
#: from 10 to 26 us over 140,000 rows, against a flat 7-8 without it (benchmarks/impression_writes.py),
#: for a debug listing.
rec_impressions = sa.Table(
    "rec_impressions",
    metadata,
    sa.Column("recset_id", sa.String(64), primary_key=True),
    sa.Column("user_id", _id(), nullable=True),  # /similar and /popular may have no user
    sa.Column("endpoint", sa.String(64), nullable=False),
    sa.Column("engine", sa.String(64), nullable=False),
    sa.Column("model_version", sa.String(128), nullable=True),
    sa.Column("item_ids", sa.JSON, nullable=False),
    sa.Column("scores", sa.JSON, nullable=False),
    sa.Column("platform", sa.String(64), nullable=True),
    sa.Column("is_fallback", sa.Boolean, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Index("ix_rec_impressions_ts", "ts"),
)

#: Indexes earlier code created that this schema no longer wants (dropped by ``create_schema``; same version:
#: no query needs them, so old and new code can share a database).
DROPPED_INDEXES = ("ix_rec_impressions_user_ts",)

#: What a user did with a shown list; ``in_list`` is false for an item the list did not contain.
#: ``withdraws``: this row takes back an earlier engagement (the user pressed Like again to undo it,
#: or pressed Dislike after Like); it has the same action type as the row it withdraws. A withdrawn
#: engagement no longer counts anywhere: not in the online history, not as a PaC hit, not in training.
engagements = sa.Table(
    "engagements",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("recset_id", sa.String(64), sa.ForeignKey("rec_impressions.recset_id"), nullable=False),
    sa.Column("user_id", _id(), nullable=False),
    sa.Column("item_id", _id(), nullable=False),
    sa.Column("action_type", sa.String(64), nullable=False),
    sa.Column("platform", sa.String(64), nullable=True),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("in_list", sa.Boolean, nullable=False),
    sa.Column("rank", sa.Integer, nullable=True),  # 1-based position in the list, None when not in it
    sa.Column("received_at", sa.Double, nullable=False),
    sa.Column("request_key", sa.String(128), nullable=True),
    sa.Column("withdraws", sa.BigInteger, nullable=True),
    sa.Index("ix_engagements_recset", "recset_id"),
    sa.Index("ix_engagements_user_ts", "user_id", "ts"),
    sa.Index("ix_engagements_ts", "ts"),
    sa.Index("ix_engagements_received", "received_at"),
    sa.Index("ix_engagements_withdraws", "withdraws"),
)

#: Raw interaction events received online (``POST /events``), for the next training run.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("user_id", _id(), nullable=False),
    sa.Column("item_id", _id(), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("rating", sa.Float, nullable=True),
    sa.Column("weight", sa.Float, nullable=True),
    sa.Column("platform", sa.String(64), nullable=True),
    sa.Column("received_at", sa.Double, nullable=False),
    sa.Column("request_key", sa.String(128), nullable=True),
    sa.Index("ix_events_user_ts", "user_id", "ts"),
    sa.Index("ix_events_ts", "ts"),
    sa.Index("ix_events_received", "received_at"),
)

#: ``Idempotency-Key`` of each accepted POST: a retried request returns the first answer, stores nothing.
#: ``key`` is the header hashed with its endpoint (``feedback.scoped_key``); ``body_sha256`` the request's
#: body, which a retry must repeat.
request_keys = sa.Table(
    "request_keys",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("endpoint", sa.String(64), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("response", sa.JSON, nullable=False),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("body_sha256", sa.String(64), nullable=True),
)

#: What the workers and replicas of one service share besides the data: ``reload`` counts the
#: ``POST /admin/reload`` calls, so every worker reloads when any one of them is asked to.
service_state = sa.Table(
    "service_state",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

#: What brings a database of version ``v`` to ``v + 1`` (``create_schema`` applies it, then creates the
#: tables that are missing): columns added to existing tables, then indexes (plain SQL both SQLite and
#: PostgreSQL accept).
MIGRATIONS: dict[int, dict[str, tuple]] = {
    1: {
        "columns": (("engagements", "withdraws", "BIGINT"), ("request_keys", "body_sha256", "VARCHAR(64)")),
        "indexes": (
            "CREATE INDEX IF NOT EXISTS ix_engagements_received ON engagements (received_at)",
            "CREATE INDEX IF NOT EXISTS ix_engagements_withdraws ON engagements (withdraws)",
        ),
    },
}

#: Child tables first: the order in which ``seed`` and tests clear tables.
TABLES_CHILD_FIRST = [engagements, rec_impressions, interactions, events, request_keys, service_state, users, items]
