"""HTTP service (FastAPI): recommendations, items, feedback logging, metrics, model admin, web page."""
