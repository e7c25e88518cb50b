"""Every setting in one place, read from the environment (prefix ``RECOMMENDER_``, except ``DATABASE_URL``).

Paths default to the shipped sample data and model, so the service starts on a fresh clone.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

BACKEND_DIR = Path(__file__).resolve().parent.parent

#: Default weight of each event type when repeated events of one (user, item) pair are aggregated.
#: A rating event counts only when ``rating >= rating_threshold``; its weight is then this value.
#: Weight 0 marks an event type that is accepted and stored but never makes a positive.
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 1.0,
    "play": 2.0,
    "watch": 3.0,
    "like": 4.0,
    "playlist_add": 4.0,
    "add_to_playlist": 4.0,
    "share": 4.0,
    "rating": 4.0,
    "dislike": 0.0,  # a known event type that is never a positive
    "skip": 0.0,
}


class Settings(BaseSettings):
    """Service and pipeline settings; see README "Settings" for the table."""

    model_config = SettingsConfigDict(env_prefix="RECOMMENDER_", extra="ignore")

    data_dir: Path = BACKEND_DIR / "data"
    model_dir: Path = BACKEND_DIR / "models" / "latest"
    items_path: Path | None = None  # defaults to <model_dir>/items.jsonl, then <data_dir>/items.jsonl
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_URL", "RECOMMENDER_DATABASE_URL"),
    )  # empty -> sqlite:///<data_dir>/recommender.db
    event_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    rating_threshold: float = 4.0
    # Event types that mark an item as seen (never recommended back), positive or not: by default every
    # known type, so a 1-star rating, a view, a skip or a dislike all count.
    seen_events: list[str] = Field(default_factory=lambda: list(DEFAULT_EVENT_WEIGHTS))
    # What users do online joins their serving history at once (``online_poll_seconds``: how often each
    # worker looks for writes by other workers and replicas; 0 turns that check off).
    online_history: bool = True
    online_poll_seconds: float = 0.25
    online_cache_users: int = 100_000  # users whose online history a worker keeps in memory
    online_max_events: int = 5_000  # newest online events per user read into the history
    # A disliked or skipped item's nearest neighbours (served item embeddings) are pushed down for that
    # user: score - penalty x cosine x the spread (std) of the user's scores, for cosines above the floor.
    negative_penalty: float = 1.0
    negative_neighbours: int = 50
    negative_min_cosine: float = 0.3
    # Optional: items shown to a user this many times within the window without any engagement are
    # demoted like a skip (0: off). Counted per worker from the lists it served.
    demote_after_shown: int = 0
    demote_window_days: float = 7.0
    # API keys (``X-API-Key``): the client key guards recommendations and events when set; the admin key
    # guards admin, debug, registry and metrics routes (unset: they answer loopback clients only).
    api_key: str = ""
    admin_key: str = ""
    # Origins (comma-separated, e.g. "https://app.example.com,https://m.example.com") whose pages may call
    # the API from a browser: CORS for them, and their writes are accepted. Empty: this service's own page only.
    cors_origins: str = ""
    max_body_bytes: int = 1_048_576  # largest request body of any route (413 above it)
    max_events_body_bytes: int = 16 * 1_048_576  # largest POST /events body (a batch of up to 10,000 events)
    # Slow clients are dropped (``python -m app.service``): a request's headers must be complete this long
    # after the connection opened or the request began, a body may pause at most ``body_timeout_seconds``
    # between chunks (408), and an idle keep-alive connection is closed after ``keep_alive_seconds``.
    header_timeout_seconds: float = Field(default=10.0, ge=0)
    body_timeout_seconds: float = Field(default=10.0, ge=0)
    # Longer than common client libraries keep an idle connection (httpx 5 s, aiohttp 15 s): with the
    # same 5 s on both sides, a client now and then sends a request just as the server closes the
    # connection and gets "server disconnected" instead of an answer.
    keep_alive_seconds: int = Field(default=20, ge=0)
    # Retention applied by the service itself, once a day (0: keep everything; ``python -m app.store prune``
    # does the same by hand). Events are training data: give them a longer horizon, or none.
    retention_days: float = Field(default=0.0, ge=0)
    events_retention_days: float = Field(default=0.0, ge=0)
    max_k: int = 100
    default_k: int = 10  # items in a list when a request gives neither k nor limit
    min_history_for_nn: int = 1  # auto engine uses nn when the model knows the user and has this many positives
    model_poll_seconds: float = 0.0  # >0: the service checks the model directory (or registry pointer) this often
    reload_poll_seconds: float = 0.5  # how often a worker looks whether another one was asked to reload (0: never)
    registry_dir: Path | None = None  # when set, the service serves the registry's production version
    log_impressions: bool = True
    fastapi_telemetry: bool = False  # FastAPI's OpenTelemetry spans/metrics/logs (needs a configured OTel provider)
    # Catalogues of at least this many items rank personal lists and /similar from an inverted-file index
    # (FAISS IVF-Flat, built at load; 0: never): it proposes candidates, which are re-scored, filtered and
    # excluded exactly (the whole catalogue is scored when too few pass). Below it every request is exact.
    ann_min_items: int = 200_000
    ann_lists: int = 0  # k-means lists (0: 4 x sqrt(items))
    ann_probe: int = 16  # lists a query scans (recall and cost grow with it)
    ann_overfetch: float = 2.0  # candidates asked for: k x this x items / eligible items, + excluded items
    ann_max_candidates: int = 4096  # more needed than this (narrow filters): exact scoring instead
    precompute_mb: int = 512  # memory for precomputed score, explanation and similarity tables (0: per request)
    hybrid_precompute_users: int = 20_000  # auto serves hybrid: its lists precomputed at load up to this many users
    impression_batch_size: int = 1024
    impression_flush_seconds: float = 0.2
    promotion_min_improvement: float = 0.01  # gate: NDCG@10 must improve on production by this (relative)
    promotion_max_regression: float = 0.05  # gate: no secondary metric may fall by more than this (relative)
    sqlite_synchronous: str = "NORMAL"  # SQLite WAL: NORMAL survives a process kill; FULL also survives power loss

    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'recommender.db').as_posix()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
