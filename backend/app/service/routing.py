"""``DirectRoute``: an ``APIRoute`` whose endpoint takes only the ``Request`` and is called as it is.

Why: for every request FastAPI's handler solves the endpoint's dependency graph, builds an error
context, checks the response and opens two exit stacks (for dependencies with ``yield``), even when
the only parameter is the ``Request``: about a sixth of a ``/recommendations`` request's CPU. The hot
endpoints validate their own input (``deps.parse_query``/``parse_body``) and return a finished
``Response``, so none of that is needed: the route's ASGI app awaits the endpoint and sends its
response. Starlette's ``Route.handle`` still answers 405 for other methods; errors raised by the
endpoint reach the app's exception handlers through Starlette's ``ExceptionMiddleware`` and
``ServerErrorMiddleware``. OpenAPI is unchanged: it is generated from the route's declared metadata.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send


class DirectRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any):
        params = list(inspect.signature(endpoint).parameters.values())
        if not inspect.iscoroutinefunction(endpoint) or len(params) != 1 or params[0].annotation not in (Request, "Request"):
            raise TypeError(f"DirectRoute {path}: the endpoint must be `async def f(request: Request) -> Response`")
        if kwargs.get("max_body_size") is not None:
            raise TypeError(f"DirectRoute {path}: max_body_size needs FastAPI's own request handling")
        super().__init__(path, endpoint, **kwargs)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            response = await endpoint(Request(scope, receive, send))
            await response(scope, receive, send)

        self.app = app
