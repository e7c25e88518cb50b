"""Schema-driven requests (schemathesis) to every operation: no 5xx, and every answer is one the document states.

The schema is the app's own OpenAPI document; each operation gets a bounded, reproducible set of
generated requests (explicit examples, boundary values, then a few random valid and invalid ones).
Checks: no server error, a documented status code, a documented content type, and a body that
matches the documented schema.

The service runs with both keys set and the requests send the admin key (accepted on every route;
schemathesis also tries wrong keys, which the document declares), so the admin, debug, registry and
metrics routes are exercised too: schemathesis calls the app with its own ASGI client, not the
loopback test client of ``tests/conftest.py``, and without an admin key it would be refused as a
client on another machine.

The schema is built at import (``schema.parametrize`` makes one test per operation), from a document
that needs no model; the model and the database are written before the first request and the app's
lifespan starts with it. (schemathesis' fixture loader, ``schemathesis.pytest.from_fixture``, fails
under pytest 9: it renames ``request.node._nodeid``.)
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi

from app.service.http.app import create_app
from tests.service.conftest import make_settings
from tests.service.modeldir import write_model_dir

ADMIN = {"X-API-Key": "admin-key"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: Created by the ``service`` fixture, removed after the module.
WORK = Path(tempfile.gettempdir()) / f"schemathesis-{uuid.uuid4().hex[:12]}"
APP = create_app(make_settings(WORK / "model", WORK / "data", api_key="client-key", admin_key="admin-key"))
# POST /events also takes JSON Lines, documented as text: send generated text as it is (schemathesis
# knows no serializer for the type, and would skip those requests).
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP  # calls go to the app in-process, as ``schemathesis.openapi.from_asgi`` sets up


@pytest.fixture(scope="module", autouse=True)
def service() -> Iterator[None]:
    """The model and data directories of ``APP``; its lifespan (started by the first call) is stopped after."""
    write_model_dir(WORK / "model", version="test-v1")
    (WORK / "data").mkdir()
    yield
    asgi.shutdown_lifespans()  # schemathesis keeps a started lifespan running until asked to stop
    shutil.rmtree(WORK, ignore_errors=True)


@schema.parametrize()
# 25 random requests per operation (the explicit examples and the boundary values come on top): ~12 s.
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=ADMIN, checks=CHECKS)
