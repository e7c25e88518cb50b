"""The service: ``core`` serves a loaded model without HTTP, ``http`` puts it on the web (``api:app`` for uvicorn)."""
