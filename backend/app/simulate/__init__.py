"""Simulations run against the live service (``python -m app.simulate``).

``loop``: a synthetic population with hidden tastes uses the running service round after round, and
three arms are compared with the same seed: a frozen model, online history, online history plus
retraining (``app.simulate.loop``). The package sits above the registry and the service: it may use
the data, model, store and registry packages, and talks to the service only over HTTP, as a client
would (the service runs in its own process).
"""
