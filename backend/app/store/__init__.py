"""Logging and analytics database: impressions, engagements, online events, the seeded training log."""

from app.store.feedback import Conflict, NotFound, UnknownList
from app.store.store import Store

__all__ = ["Conflict", "NotFound", "Store", "UnknownList"]
