"""Training the embedding model on several worker processes (``tf.distribute.MultiWorkerMirroredStrategy``).

Every worker runs the same training command on the same data; each holds a full copy of the model's
variables, trains each step on its own share of the batch, and the gradients are summed across the
workers (all-reduce) before every worker applies the same update, so the copies stay identical. Only
the chief (task ``chief``, or ``worker`` 0 when there is none) writes the model.

The cluster comes from the standard ``TF_CONFIG`` environment variable, e.g. for the second of two::

    {"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 1}}

This module reads ``TF_CONFIG`` without TensorFlow (so a bad one is reported before anything starts)
and keeps the process's active strategy, which ``app.model.embedding_training`` trains under:
``EmbeddingRecommender.fit`` anywhere in the training CLI (the evaluation fit, the hybrid pipeline's
own fit, the shipped fit) is distributed without passing a strategy down through every caller.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MODES = ("none", "multiworker")
STRATEGY_NAME = "MultiWorkerMirroredStrategy"
SINGLE = {"strategy": "none", "workers": 1}  # what the metadata says of a single-process fit


@dataclass(frozen=True)
class Cluster:
    """This process's place in the cluster ``TF_CONFIG`` describes."""

    workers: int  # chief + workers: the processes that train
    rank: int  # 0 for the chief; which share of each batch this process trains on
    task_type: str
    task_index: int

    @property
    def is_chief(self) -> bool:
        return self.rank == 0


def parse_tf_config(text: str | None) -> Cluster:
    """The ``Cluster`` of a ``TF_CONFIG`` value; ``ValueError`` saying what is wrong with it."""
    if not text or not text.strip():
        raise ValueError(
            "--distribute multiworker needs the TF_CONFIG environment variable: the cluster's workers and "
            'this process\'s place among them, e.g. {"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
            '"task": {"type": "worker", "index": 0}} (scripts/train_multiworker.sh sets it for local workers)'
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e})") from None
    if not isinstance(config, Mapping):
        raise ValueError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, Mapping) or not isinstance(task, Mapping):
        raise ValueError("TF_CONFIG must have a 'cluster' object and a 'task' object")
    extra = sorted(set(cluster) - {"chief", "worker"})
    if extra:
        raise ValueError(
            f"TF_CONFIG's cluster may list only 'chief' and 'worker' tasks for this strategy, not {', '.join(extra)}"
        )
    tasks: dict[str, list[str]] = {}
    for kind in ("chief", "worker"):
        addresses = cluster.get(kind, [])
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise ValueError(f"TF_CONFIG's cluster {kind!r} must be a list of 'host:port' strings")
        tasks[kind] = addresses
    if len(tasks["chief"]) > 1:
        raise ValueError("TF_CONFIG's cluster may have at most one chief")
    if not tasks["chief"] and not tasks["worker"]:
        raise ValueError("TF_CONFIG's cluster lists no workers")
    everyone = tasks["chief"] + tasks["worker"]
    if len(set(everyone)) < len(everyone):
        raise ValueError("TF_CONFIG's cluster lists the same address twice")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in ("chief", "worker"):
        raise ValueError(f"TF_CONFIG's task type must be 'chief' or 'worker', not {kind!r}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(tasks[kind]):
        raise ValueError(
            f"TF_CONFIG's task index must be a whole number from 0 to {len(tasks[kind]) - 1} "
            f"(the cluster has {len(tasks[kind])} {kind} task(s)), not {index!r}"
        )
    rank = index if kind == "chief" else len(tasks["chief"]) + index
    return Cluster(workers=len(everyone), rank=rank, task_type=kind, task_index=index)


@dataclass
class Distribution:
    """The strategy this process trains under, and its place in the cluster."""

    strategy: Any
    cluster: Cluster

    @property
    def workers(self) -> int:
        return self.cluster.workers

    @property
    def rank(self) -> int:
        return self.cluster.rank

    @property
    def is_chief(self) -> bool:
        return self.cluster.is_chief

    def describe(self) -> dict[str, Any]:
        """What the model's metadata records (``training.distribution``)."""
        return {"strategy": STRATEGY_NAME, "workers": self.workers}

    def agree(self, what: str, *parts: Any) -> None:
        """Raise ``ValueError`` on every worker unless all of them hold the same ``parts``.

        Workers that disagree on the data or the hyperparameters would run different sequences of
        steps and wait on each other forever (or train on a mix): this costs one collective."""
        digest = hashlib.sha256(repr(parts).encode()).digest()
        mine = float(int.from_bytes(digest[:6], "big"))  # exact in a float64
        if len(set(self.all_gather(mine))) > 1:
            raise ValueError(
                f"the workers' {what} differ: every worker must run the same command on the same data "
                "(only --model-dir may differ)"
            )

    def all_reduce_sum(self, value: float) -> float:
        """``value`` summed over the workers."""
        import tensorflow as tf

        def total(v):
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, v)

        out = self.strategy.run(total, args=(tf.constant(value, tf.float64),))
        return float(self.strategy.experimental_local_results(out)[0])

    def all_gather(self, value: float) -> list[float]:
        """Every worker's ``value``, in rank order."""
        import tensorflow as tf

        def gather(v):
            return tf.distribute.get_replica_context().all_gather(v, axis=0)

        out = self.strategy.run(gather, args=(tf.constant([value], tf.float64),))
        return [float(v) for v in self.strategy.experimental_local_results(out)[0].numpy()]


_ACTIVE: Distribution | None = None


def active() -> Distribution | None:
    """The strategy the embedding model trains under in this process (None: one process, no strategy)."""
    return _ACTIVE


def start(mode: str, environ: Mapping[str, str] | None = None) -> Distribution | None:
    """Start ``mode`` (one of ``MODES``) for this process; None for ``none``.

    ``multiworker`` reads ``TF_CONFIG`` (``ValueError`` when it is missing or malformed) and creates the
    strategy, which TensorFlow requires before any other TensorFlow operation of the process."""
    global _ACTIVE
    if mode not in MODES:
        raise ValueError(f"distribute must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "none":
        _ACTIVE = None
        return None
    cluster = parse_tf_config((os.environ if environ is None else environ).get("TF_CONFIG"))
    from app.model.tensorflow_setup import import_keras  # thread pools first: the strategy initialises TensorFlow

    _, tf = import_keras()
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING  # NCCL is for GPUs
    )
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    if strategy.num_replicas_in_sync != cluster.workers:
        raise ValueError(
            f"TF_CONFIG lists {cluster.workers} workers but TensorFlow runs {strategy.num_replicas_in_sync} "
            "replicas: each worker must have one CPU device (set CUDA_VISIBLE_DEVICES= to hide GPUs)"
        )
    _ACTIVE = Distribution(strategy, cluster)
    return _ACTIVE


def stop() -> None:
    """Back to single-process training (tests; a process cannot rejoin a cluster once it has left)."""
    global _ACTIVE
    _ACTIVE = None
