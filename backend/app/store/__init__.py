"""Logging and analytics database: impressions, engagements, online events, the seeded training log."""

from app.store.feedback import Conflict, KeyReused, NotFound, UnknownList
from app.store.store import Store

__all__ = ["Conflict", "KeyReused", "NotFound", "Store", "UnknownList"]
