"""Per-epoch training time of the default Keras embedding model beside its matmul floor.

    PYTHONPATH=backend python benchmarks/train_floor.py [--epochs 3] [--work /tmp/train-floor]
        [--shape movielens:100000 --shape movielens:2000000 --shape ecommerce:224000] [--ml100k DIR]

For each data shape (``kind:events``: a log written by ``python -m app.data.synthetic`` into
``--work``, outside the repository; ``--ml100k DIR`` adds the real MovieLens 100K, imported into
``--work``), the log is read the way ``python -m app.registry.train`` reads it (``load_dataset`` ->
``Dataset.matrix()`` and ``Dataset.recency()``) and then:

* **epoch**: ``EmbeddingRecommender`` with the defaults but ``ensemble=1`` and ``--epochs`` epochs
  (the default multinomial loss: per batch of users, dense ``[B, n_items]`` inputs and targets, full
  softmax, XLA-compiled steps, up to 16 batches a call); the steady-state epoch is the median of the
  epochs after the first (the first includes tracing and XLA compilation, reported apart);
* **generator**: the same ``fit_member`` with the TensorFlow step replaced by a no-op, so only the
  NumPy batch building runs (dense rows, dropout mask, future split, pooling norm); the rest of the
  epoch (``epoch - generator``) is the step: tensor conversion, the XLA call, Adam, ``float(loss)``;
* **floor**: the epoch's matrix products alone, as a ``tf.function`` loop over the same batch sizes:
  per batch ``X[B,n] @ H[n,d]`` (pooling) and ``V[B,d] @ Q[n,d].T`` (logits) and the two gradient
  products of each (``dL @ Q``, ``dL.T @ V``, ``X.T @ dV``, ``dV @ H.T``): 3x the forward FLOPs.

A second table splits the step: the real compiled step (caught from ``fit_member``) over an epoch of
tensors built beforehand, reading each loss or not, the Adam update of the trained variables alone,
and the speed of one step's logits products compiled by XLA (as in the step) and run by TensorFlow
(as in the floor).

Each shape is timed with the batch size the CLI's defaults give it (``sized_params``). Also prints the
GFLOP/s of one 1024 x 64 x 26,744 float32 matmul, the ratio epoch / floor and an estimate of the
default fit (the sized members x epochs) and of the CLI (plus its one-member quick
evaluation fit) from the per-epoch times. Nothing is written inside the repository.
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_SHAPES = ["movielens:100000", "movielens:2000000", "ecommerce:224000"]


def load_shape(spec: str, work: Path):
    """(label, matrix, recency) of one ``kind:events`` synthetic log or ``ml100k:DIR``, read as the CLI does."""
    from app.data.dataset import load_dataset

    kind, _, arg = spec.partition(":")
    if kind == "ml100k":
        from app.data.movielens import import_movielens

        out = work / "ml100k"
        if not (out / "interactions.jsonl").exists():
            import_movielens(arg, out)
        label = "ML-100K (real)"
    else:
        out = work / f"{kind}-{arg}"
        if not (out / "interactions.jsonl").exists():
            cmd = [sys.executable, "-m", "app.data.synthetic", "--events", arg, "--shape", kind, "--out", str(out)]
            subprocess.run(cmd, check=True, cwd=ROOT / "backend", stdout=subprocess.DEVNULL)
        label = f"{kind} {int(arg):,} events"
    dataset, _, _ = load_dataset(out / "interactions.jsonl", progress=False)
    return label, dataset.matrix(), dataset.recency()


def batch_sizes(x, batch_size: int) -> list[int]:
    """The users per batch of one multinomial epoch, as ``fit_member.user_batches`` cuts them."""
    n_users = x.shape[0]
    active = int(np.count_nonzero(np.diff(x.indptr)))
    per_batch = max(1, round(batch_size * n_users / x.nnz))
    return [min(per_batch, active - s) for s in range(0, active, per_batch)]


def train_epochs(x, recency, epochs: int, batch_size: int):
    """Seconds of each epoch of one default member (``ensemble=1``), and its compiled step and optimizer."""
    from app.model import embedding_training as et
    from app.model.embedding import EmbeddingRecommender

    real, caught = et._multinomial_step, []

    def catch(*a, **k):
        optimizer = inspect.signature(real).bind(*a, **k).arguments["optimizer"]
        caught.append((real(*a, **k), optimizer))
        return caught[-1][0]

    et._multinomial_step = catch
    et.StackedTrainer._idle.clear()  # a trainer of this shape is built (and its step caught) here
    try:
        model = EmbeddingRecommender(ensemble=1, epochs=epochs, batch_size=batch_size)
        model.fit(x, recency=recency)
    finally:
        et._multinomial_step = real
    return [h["seconds"] for h in model.history_], caught[0][0], caught[0][1], model


def stacks(sizes: list[int], n_items: int) -> list[tuple[int, int, int]]:
    """(depth, users per batch, batches) of each compiled call of an epoch, as ``fit_member`` groups them."""
    from app.model.embedding_training import stack_calls, stack_size

    calls = stack_calls(sizes, stack_size(sizes[0], n_items), sizes[0])
    return [(depth, sizes[run.start], run.stop - run.start) for run, depth in calls]


def step_epoch(tf, mstep, sizes: list[int], n_items: int, repeats: int) -> tuple[float, float]:
    """(synced, unsynced) best seconds of an epoch of the real compiled step on tensors built beforehand:
    no NumPy batch building, no host-to-tensor copies; synced reads each call's loss (as the loop does
    not: it reads them all at the epoch's end)."""
    rng = np.random.default_rng(2)
    calls = stacks(sizes, n_items)
    batches = {}
    for depth, b, _ in set(calls):
        dense = (rng.random((depth, b, n_items)) < 0.05).astype(np.float32)
        kept = dense * (rng.random(dense.shape) >= 0.5)
        norm = np.maximum(kept.sum(axis=2, keepdims=True), 1.0)
        users = tf.constant(np.tile(np.arange(b, dtype=np.int32), (depth, 1)))
        batches[depth, b] = (tf.constant(kept / norm), tf.constant(dense - kept), users)
    steps = [(batches[depth, b], tf.constant(n)) for depth, b, n in calls]
    synced = min(_timed(lambda: [float(mstep(*t, n)) for t, n in steps]) for _ in range(repeats))
    unsynced = min(_timed(lambda: float([mstep(*t, n) for t, n in steps][-1])) for _ in range(repeats))
    return synced, unsynced


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def adam_epoch(tf, optimizer, calls: list[tuple[int, int, int]]) -> float:
    """Seconds of an epoch's Adam updates of the trained variables alone (dense gradients), as many per
    XLA call as the step makes (``calls``: (depth, users, batches) of each)."""
    variables = list(optimizer._trainable_variables)
    grads = [tf.ones_like(v) * 1e-4 for v in variables]

    @tf.function(jit_compile=True)  # as inside the step
    def apply(n):
        for _ in tf.range(n):
            optimizer.apply_gradients(zip(grads, variables, strict=False))
        return tf.constant(0.0)

    counts = [tf.constant(n) for _, _, n in calls]
    float(apply(counts[0]))
    return min(_timed(lambda: [float(apply(n)) for n in counts]) for _ in range(2))


def generator_epochs(x, recency, epochs: int, batch_size: int) -> list[float]:
    """Seconds of each epoch of the same loop with the TensorFlow step replaced by a no-op."""
    from app.model import embedding_training as et
    from app.model.embedding import EmbeddingRecommender

    real = et._multinomial_step
    et.StackedTrainer._idle.clear()  # not the real step kept from ``train_epochs``
    et._multinomial_step = lambda *a, **k: lambda inputs, targets, users, n: 0.0
    try:
        model = EmbeddingRecommender(ensemble=1, epochs=epochs, batch_size=batch_size)
        model.fit(x, recency=recency)
    finally:
        et._multinomial_step = real
        et.StackedTrainer._idle.clear()
    return [h["seconds"] for h in model.history_]


def floor_epoch(tf, sizes: list[int], n_items: int, dim: int, repeats: int) -> tuple[float, float]:
    """(best seconds, GFLOP) of an epoch's matmuls: per batch the 2 forward products and their 4 gradients."""
    rng = np.random.default_rng(0)
    h0 = tf.constant(rng.standard_normal((n_items, dim), dtype=np.float32) * 0.05)
    q0 = tf.constant(rng.standard_normal((n_items, dim), dtype=np.float32) * 0.05)

    def make(b: int):
        x = tf.constant((rng.random((b, n_items)) < 0.02).astype(np.float32))
        dl = tf.constant(rng.standard_normal((b, n_items), dtype=np.float32) * 1e-3)

        @tf.function
        def loop(steps):
            acc = tf.constant(0.0)
            for i in tf.range(steps):
                eps = tf.cast(i, tf.float32) * 1e-9  # weights change every step (no hoisting out of the loop)
                h, q = h0 + eps, q0 + eps
                v = tf.matmul(x, h)  # [B, d] pooling
                logits = tf.matmul(v, q, transpose_b=True)  # [B, n]
                dv = tf.matmul(dl, q)  # [B, d]
                dq = tf.matmul(dl, v, transpose_a=True)  # [n, d]
                dh = tf.matmul(x, dv, transpose_a=True)  # [n, d]
                dx = tf.matmul(dv, h, transpose_b=True)  # [B, n]
                acc += logits[0, 0] + dq[0, 0] + dh[0, 0] + dx[0, 0]
            return acc

        return loop

    counts: dict[int, int] = {}
    for b in sizes:
        counts[b] = counts.get(b, 0) + 1
    loops = {b: make(b) for b in counts}
    for loop in loops.values():
        float(loop(tf.constant(1)))  # trace
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for b, loop in loops.items():
            float(loop(tf.constant(counts[b])))
        best = min(best, time.perf_counter() - t0)
    gflop = sum(6 * 2.0 * b * n_items * dim for b in sizes) / 1e9
    return best, gflop


def step_products(tf, b: int, n_items: int, dim: int, steps: int = 100) -> tuple[float, float]:
    """(XLA, TensorFlow) GFLOP/s of one step's logits products, ``[b, d] @ [n, d].T`` and the two
    gradient products of the same shapes, in a loop compiled with XLA (as the step is) and without."""
    rng = np.random.default_rng(3)
    v0 = tf.constant(rng.standard_normal((b, dim), dtype=np.float32))
    q = tf.constant(rng.standard_normal((n_items, dim), dtype=np.float32) * 0.05)
    rates = []
    for jit in (True, False):

        @tf.function(jit_compile=jit)
        def loop(n):
            acc = tf.constant(0.0)
            for i in tf.range(n):
                v = v0 + tf.cast(i, tf.float32) * 1e-9
                logits = tf.matmul(v, q, transpose_b=True)  # [b, n]
                dv = tf.matmul(logits, q)  # [b, d]
                dq = tf.matmul(logits, v, transpose_a=True)  # [n, d]
                acc += logits[0, 0] + dv[0, 0] + dq[0, 0]
            return acc

        float(loop(tf.constant(2)))
        best = min(_timed(lambda: float(loop(tf.constant(steps)))) for _ in range(3))
        rates.append(3 * 2.0 * b * n_items * dim * steps / best / 1e9)
    return rates[0], rates[1]


def matmul_gflops(tf, m: int = 1024, k: int = 64, n: int = 26_744, steps: int = 20) -> float:
    """float32 GFLOP/s of ``[m, k] @ [k, n]`` in a tf.function loop (best of 3)."""
    rng = np.random.default_rng(1)
    a0 = tf.constant(rng.standard_normal((m, k), dtype=np.float32))
    b = tf.constant(rng.standard_normal((k, n), dtype=np.float32))

    @tf.function
    def loop(steps):
        acc = tf.constant(0.0)
        for i in tf.range(steps):
            acc += tf.matmul(a0 + tf.cast(i, tf.float32) * 1e-9, b)[0, 0]
        return acc

    float(loop(tf.constant(2)))
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        float(loop(tf.constant(steps)))
        best = min(best, time.perf_counter() - t0)
    return 2.0 * m * k * n * steps / best / 1e9


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", action="append", help=f"kind:events (repeatable; default {' '.join(DEFAULT_SHAPES)})")
    p.add_argument("--ml100k", type=Path, help="also the real MovieLens 100K from this folder (imported into --work)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per timed fit (>= 2; the first is compilation)")
    p.add_argument("--repeats", type=int, default=3, help="floor: best of this many epochs")
    p.add_argument("--work", type=Path, default=Path("/tmp/train-floor"), help="where the logs are written")
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error("--epochs must be >= 2")
    if ROOT in args.work.resolve().parents or args.work.resolve() == ROOT:
        p.error("--work must be outside the repository")
    args.work.mkdir(parents=True, exist_ok=True)
    shapes = list(args.shape or DEFAULT_SHAPES)
    if args.ml100k is not None:
        shapes.insert(0, f"ml100k:{args.ml100k}")

    from app.model.embedding import DEFAULT_PARAMS, sized_params
    from app.model.embedding_training import _keras

    _, tf = _keras()  # the thread pools training uses (intra-op min(4, cores), inter-op 1)
    tf.get_logger().setLevel("ERROR")  # the floor traces one loop per batch size: not a retracing problem
    threads = tf.config.threading.get_intra_op_parallelism_threads()
    dim = DEFAULT_PARAMS["embedding_dim"]
    gflops = matmul_gflops(tf)
    print(f"matmul 1024 x 64 x 26,744 float32: {gflops:.1f} GFLOP/s ({threads} intra-op threads)", flush=True)

    rows = []
    for spec in shapes:
        label, x, recency = load_shape(spec, args.work)
        n_users, n_items = x.shape
        hp = sized_params(n_users, n_items, None, x.nnz)  # the CLI's defaults for this log
        bs, members, epochs_default = hp["batch_size"], hp["ensemble"], hp["epochs"]
        sizes = batch_sizes(x, bs)
        print(f"{label}: {n_users} users, {n_items} items, {x.nnz} positives, {len(sizes)} batches", flush=True)
        train, mstep, optimizer, _ = train_epochs(x, recency, args.epochs, bs)
        step_sync, step_nosync = step_epoch(tf, mstep, sizes, n_items, args.repeats)
        adam = adam_epoch(tf, optimizer, stacks(sizes, n_items))
        gen = generator_epochs(x, recency, args.epochs, bs)
        floor, gflop = floor_epoch(tf, sizes, n_items, dim, args.repeats)
        xla_rate, tf_rate = step_products(tf, sizes[0], n_items, dim)
        epoch, gen_s = statistics.median(train[1:]), statistics.median(gen[1:])
        first_extra = train[0] - epoch  # tracing and compiling: once per fit, its members share the step
        member = epochs_default * epoch
        fit, cli = members * member + first_extra, (members + 1) * member + 2 * first_extra  # + the evaluation fit
        print(f"  epochs {[round(t, 3) for t in train]}, generator {[round(t, 3) for t in gen]}", flush=True)
        print(f"  floor {floor:.3f}s ({gflop:.1f} GFLOP, {gflop / floor:.1f} GFLOP/s)", flush=True)
        print(f"  step on prebuilt tensors {step_sync:.3f}s (no per-step sync {step_nosync:.3f}s), Adam {adam:.3f}s")
        print(f"  a step's logits products: {xla_rate:.0f} GFLOP/s under XLA, {tf_rate:.0f} in TensorFlow")
        shape = (label, n_users, n_items, x.nnz, len(sizes), sizes[0])
        recipe = f"{members} x {epochs_default}"
        rows.append(
            (
                *shape,
                train[0],
                epoch,
                gen_s,
                floor,
                gflop,
                fit,
                cli,
                recipe,
                step_sync,
                step_nosync,
                adam,
                xla_rate,
                tf_rate,
            )
        )

    cmd = "PYTHONPATH=backend python benchmarks/train_floor.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print()
    print(f"`{cmd.strip()}` — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {threads} TF threads")
    print(f"matmul 1024 x 64 x 26,744 float32: {gflops:.1f} GFLOP/s")
    print()
    print(
        "| data | users | items | positives | batches (users/batch) | 1st epoch s | epoch s | generator s | "
        "step s | floor s (GFLOP) | epoch / floor | step / floor | default fit (members x epochs) est. | "
        "CLI est. (+ its 1-member evaluation fit) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, nu, ni, nnz, nb, pb, first, epoch, gen_s, floor, gflop, fit, cli, recipe, *_ in rows:
        step = max(0.0, epoch - gen_s)
        print(
            f"| {label} | {nu:,} | {ni:,} | {nnz:,} | {nb} ({pb}) | {first:.2f} | {epoch:.3f} | {gen_s:.3f} | "
            f"{step:.3f} | {floor:.3f} ({gflop:.1f}) | {epoch / floor:.1f}x | {step / floor:.1f}x | "
            f"{fit:.0f}s ({recipe}) | {cli:.0f}s |"
        )
    print()
    print(
        "Split of the step (an epoch's worth): the compiled step on tensors built beforehand (no NumPy, no "
        "host copies), with and without reading each loss; Adam alone on the trained variables; the GFLOP/s of "
        "a step's logits products (and their gradients) compiled by XLA, as in the step, and by TensorFlow, as in the floor."
    )
    print()
    print(
        "| data | epoch s | generator s | conversion + loop s | step, prebuilt s | no sync s | Adam alone s | floor s "
        "| products GFLOP/s, XLA / TensorFlow |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, *_, epoch, gen_s, floor, _gflop, _fit, _cli, _recipe, step_sync, step_nosync, adam, xla, tfr in rows:
        rest = max(0.0, epoch - gen_s - step_sync)
        print(
            f"| {label} | {epoch:.3f} | {gen_s:.3f} | {rest:.3f} | {step_sync:.3f} | {step_nosync:.3f} | "
            f"{adam:.3f} | {floor:.3f} | {xla:.0f} / {tfr:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
