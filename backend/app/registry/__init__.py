"""Model lifecycle: the versioned file registry, the promotion gate, the retraining pipeline, MLflow mirroring.

- ``app.registry.store``: ``Registry`` and ``production_model_dir`` (what the service follows);
- ``app.registry.gate``: ``decide`` (pure promotion rules);
- ``app.registry.retrain``: ``python -m app.registry.retrain`` (ingest, train, evaluate, promote, reload);
- ``app.registry.tracking``: optional MLflow logging;
- ``python -m app.registry``: the CLI.
"""
