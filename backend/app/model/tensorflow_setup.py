"""TensorFlow and Keras as training uses them: imported on first use, thread pools sized for a small shared machine.

Both the training loop (``app.model.embedding_training``) and the distribution strategy
(``app.model.distribution``, which must exist before any other TensorFlow operation) start TensorFlow
through here, so its thread settings are the same whichever comes first.
"""

from __future__ import annotations

import os


def import_keras():
    """Import Keras on the TensorFlow backend, with thread pools sized for a small shared machine."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        threads = int(os.environ.get("RECOMMENDER_TF_THREADS", "0")) or min(4, os.cpu_count() or 1)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already initialised by the caller: keep its settings
        pass
    import keras

    return keras, tf
