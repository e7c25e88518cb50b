"""The HTTP layer of the service: FastAPI app, routes, schemas, dependencies, middleware and the page."""
