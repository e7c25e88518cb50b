"""The HTTP routes, one module per resource; ``create_app`` adds every router of ``ROUTERS``."""

from app.service.http.routes import debug, events, items, metrics, models, operations, recommend, web

ROUTERS = [
    recommend.router,
    operations.router,
    items.router,
    web.router,
    models.router,
    events.router,
    metrics.router,
    debug.router,
]
