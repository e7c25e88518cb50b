"""Model lifecycle: the versioned file registry, the promotion gate, the retraining pipeline, MLflow mirroring.

- ``app.registry.versions``: ``Registry`` (register, promote, roll back); ``app.registry.state``: reading it, and
  ``production_model_dir`` (what the service follows);
- ``app.registry.gate``: ``decide`` (pure promotion rules);
- ``app.registry.pipeline``: one retraining run (ingest, train, evaluate, promote, reload);
  ``app.registry.retrain`` is its command, ``python -m app.registry.retrain``;
- ``app.registry.train``: ``python -m app.registry.train``, the training CLI (fit, held-out check, model directory);
- ``app.registry.tracking``: optional MLflow logging;
- ``python -m app.registry``: the CLI.
"""
