"""The ASGI entry point: ``uvicorn app.service.api:app`` (settings from the environment, see ``app.config``)."""

from __future__ import annotations

import os

# Before NumPy is imported (when uvicorn imports this module first); threadpoolctl in the app covers the rest.
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from app.service.http.app import create_app  # noqa: E402 - after the thread settings above

app = create_app()
