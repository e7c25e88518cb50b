"""Offline evaluation: splits, ranking metrics, the protocol runner and reports (``python -m app.eval``)."""
