"""Logging and analytics database: impressions, engagements, online events, the seeded training log."""
from app.store.store import Conflict, NotFound, Store

__all__ = ["Conflict", "NotFound", "Store"]
