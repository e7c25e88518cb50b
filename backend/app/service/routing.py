"""``DirectRoute``: an ``APIRoute`` whose endpoint takes only the ``Request`` and is called as it is.

Why: for every request FastAPI's handler solves the endpoint's dependency graph, builds an error
context and checks the response, even when the only parameter is the ``Request`` (about an eighth
of a ``/recommendations`` request's CPU). The hot endpoints validate their own input
(``deps.parse_query``/``parse_body``) and return a finished ``Response``, so none of that is needed.
OpenAPI is unchanged: it is generated from the route's declared metadata, not from the handler.
Errors raised by the endpoint reach the app's exception handlers as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class DirectRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any):
        params = list(inspect.signature(endpoint).parameters.values())
        if not inspect.iscoroutinefunction(endpoint) or len(params) != 1 or params[0].annotation not in (Request, "Request"):
            raise TypeError(f"DirectRoute {path}: the endpoint must be `async def f(request: Request) -> Response`")
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint
