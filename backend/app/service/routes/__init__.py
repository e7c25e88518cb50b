"""Routers, one module per resource; ``api.create_app`` includes every router listed here."""
ROUTER_MODULES: list[str] = [
    "app.service.routes.recommend",  # first: requests are matched against routes in this order
    "app.service.routes.admin",
    "app.service.routes.items",
    "app.service.routes.web",
    "app.service.routes.models",
    "app.service.routes.events",
    "app.service.routes.metrics",
    "app.service.routes.debug",
]
