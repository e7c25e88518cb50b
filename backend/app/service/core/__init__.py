"""Serving without HTTP: the loaded model and everything a request computes with it (no FastAPI here)."""
