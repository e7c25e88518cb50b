"""The evaluation protocol: tune on validation, refit on train + validation, evaluate on test, per seed.

Shared by the ``python -m app.eval`` CLI and ``benchmarks/quality.py``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from tqdm import tqdm

from app.data.features import ItemFeatures
from app.eval.data import EvalData, stage_features
from app.eval.evaluate import diversity_vectors, evaluate, seen_exclusion
from app.eval.splits import Split, Stage, filter_positives, make_split
from app.model.engines import ENGINES, engine_class, make_engine

SELECT_BY = "ndcg@10"


def grid(**axes: Sequence[Any]) -> list[dict[str, Any]]:
    """Cartesian product of parameter values, as a list of parameter dicts."""
    keys = list(axes)
    return [dict(zip(keys, values, strict=False)) for values in itertools.product(*(axes[k] for k in keys))]


#: Small validation grids for the baselines (the Keras model is tuned by ``app.eval.tune``).
GRIDS: dict[str, list[dict[str, Any]]] = {
    "popular": [{}],
    "itemknn": grid(neighbours=[10, 25, 50, 100, 200, 400]),
    "ease": grid(l2=[50.0, 100.0, 200.0, 400.0, 800.0, 1600.0]),
    "als": grid(
        factors=[16, 32, 64, 128], regularization=[0.1, 1.0, 10.0, 50.0], alpha=[1.0, 4.0, 16.0], iterations=[15]
    ),
    "baseline": grid(pool_size=[100, 200, 400]),
    "nn": [{}],
    "hybrid": [{}],
}


@dataclass
class ModelResult:
    name: str
    params: dict[str, Any]
    seeds: list[int]
    metrics: dict[str, float]  # mean over seeds
    metrics_std: dict[str, float]  # standard deviation over seeds (0 for deterministic engines)
    ci: dict[str, list[float]]  # 95% bootstrap interval over users (first seed)
    fit_seconds: float  # mean over seeds, final fit on train + validation
    score_seconds: float
    n_users: int
    tuning: list[dict[str, Any]] = field(default_factory=list)  # one row per grid point on validation
    by_seed: dict[str, list[float]] = field(default_factory=dict)  # each seed's metrics, in ``seeds`` order

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def is_stochastic(name: str, params: dict[str, Any]) -> bool:
    """Engines whose fit depends on a seed (they take a ``seed`` parameter)."""
    try:
        return "seed" in make_engine(name, **params).params()
    except Exception:  # an engine that cannot even be built is reported when it is fitted
        return False


def fit_and_evaluate(
    name: str,
    params: dict[str, Any],
    split: Split,
    stage: Stage,
    features: ItemFeatures,
    *,
    seed: int | None = None,
    n_boot: int = 1000,
    exclude: Any = None,
) -> tuple[dict[str, Any], float]:
    """Fit one engine on the stage's fitted part, evaluate on its target part: (evaluate() result, fit seconds).

    ``exclude``: the items never ranked per user (default: the fitted rows; ``seen_exclusion`` for every item seen)."""
    fitted_m, target_m, users = split.stage_matrices(stage)
    kwargs = sized(name, dict(params), fitted_m.shape, fitted_m.nnz)
    if seed is not None:
        kwargs["seed"] = seed
    engine = make_engine(name, **kwargs)
    t0 = time.perf_counter()
    if getattr(engine, "uses_timestamps", False):  # the hybrid engine slices each history by time
        engine.fit(fitted_m, features, timestamps=split.stage(stage)[0].timestamps())
    elif getattr(engine, "uses_recency", False):  # the Keras model also learns from the order of each history
        engine.fit(fitted_m, features, recency=split.stage(stage)[0].recency())
    else:
        engine.fit(fitted_m, features)
    fit_seconds = time.perf_counter() - t0
    vectors = diversity_vectors(fitted_m, features)
    return evaluate(
        engine, fitted_m, target_m, users, n_boot=n_boot, exclude=exclude, item_vectors=vectors
    ), fit_seconds


def sized(name: str, params: dict[str, Any], shape: tuple[int, int], n_positives: int | None = None) -> dict[str, Any]:
    """``params`` sized to the fitted matrix by an engine that sizes its defaults to the data (its
    ``sized`` method: the Keras model's fewer epochs and members on large data, as the training CLI
    ships it); the other engines' unchanged."""
    sizer = getattr(engine_class(name), "sized", None)
    return sizer(*shape, params, n_positives) if sizer is not None else params


def run_model(
    name: str,
    data: EvalData,
    split: Split,
    *,
    seeds: Sequence[int] = (42,),
    tune: bool = True,
    params: dict[str, Any] | None = None,
    grid_points: list[dict[str, Any]] | None = None,
    step: Callable[[str], None] | None = None,
    features: dict[str, ItemFeatures] | None = None,
    exclude: dict[str, Any] | None = None,
) -> ModelResult:
    """Tune on validation (when asked and the grid has several points), then refit and test per seed.

    ``params`` fixes the hyperparameters (no tuning); ``step(label)`` is called after each fit;
    ``exclude``: stage -> items never ranked (``seen_exclusion``), default the fitted rows.
    """
    excl = exclude or {}
    if name not in ENGINES:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(ENGINES)}")
    feats = features or {}
    for stage in ("validation", "test"):
        if stage not in feats:
            feats[stage] = stage_features(data, split, stage)  # type: ignore[arg-type]
    points = grid_points if grid_points is not None else GRIDS.get(name, [{}])
    tuning: list[dict[str, Any]] = []
    stochastic = is_stochastic(name, params or (points[0] if points else {}))
    if params is not None:
        best = dict(params)
    elif tune and len(points) > 1:
        for point in points:
            res, secs = fit_and_evaluate(
                name,
                point,
                split,
                "validation",
                feats["validation"],
                seed=seeds[0] if stochastic else None,
                n_boot=0,
                exclude=excl.get("validation"),
            )
            tuning.append({"params": point, "metrics": res["metrics"], "fit_seconds": secs})
            if step:
                step(f"{name} tune")
        best = dict(max(tuning, key=lambda r: r["metrics"][SELECT_BY])["params"])
    else:
        best = dict(points[0]) if points else {}
    run_seeds = list(seeds) if stochastic else [None]
    results, fit_secs = [], []
    for seed in run_seeds:
        res, secs = fit_and_evaluate(name, best, split, "test", feats["test"], seed=seed, exclude=excl.get("test"))
        results.append(res)
        fit_secs.append(secs)
        if step:
            step(f"{name} test")
    keys = results[0]["metrics"].keys()
    stacked = {k: np.array([r["metrics"][k] for r in results]) for k in keys}
    chosen = sized(
        name,
        {**best, "seed": run_seeds[0]} if stochastic else best,
        (split.train.n_users, split.train.n_items),
        len(split.train),
    )
    final_params = make_engine(name, **chosen).params()
    return ModelResult(
        name=name,
        params=final_params,
        seeds=[s for s in run_seeds if s is not None],
        metrics={k: float(v.mean()) for k, v in stacked.items()},
        metrics_std={k: float(v.std()) for k, v in stacked.items()},
        ci=results[0]["ci"],
        fit_seconds=float(np.mean(fit_secs)),
        score_seconds=float(np.mean([r["score_seconds"] for r in results])),
        n_users=results[0]["n_users"],
        tuning=tuning,
        by_seed={k: [float(x) for x in v] for k, v in stacked.items()},
    )


def steps_for(name: str, tune: bool, seeds: Sequence[int], params: dict[str, Any] | None = None) -> int:
    """How many fits ``run_model`` will do (for the progress bar)."""
    points = GRIDS.get(name, [{}])
    stochastic = is_stochastic(name, params or points[0])
    n_tune = len(points) if tune and params is None and len(points) > 1 else 0
    return n_tune + (len(seeds) if stochastic else 1)


def run_evaluation(
    data: EvalData,
    *,
    protocol: str,
    models: Sequence[str],
    seeds: Sequence[int] = (42,),
    tune: bool = True,
    min_item: int = 10,
    min_user: int = 5,
    train_share: float = 0.70,
    validation_share: float = 0.15,
    fixed_params: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
    command: str = "",
    exclude_seen: bool = False,
    seen_events: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Filter, split, then run every model: the whole report as a JSON-able dict.

    ``exclude_seen``: never rank an item the user had seen before the target (any event of a type in
    ``seen_events``, None = every type; ``seen_exclusion``), as serving and the promotion gate do;
    default: only the fitted positives are excluded (the published tables)."""
    unknown = [m for m in models if m not in ENGINES]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    if not seeds:
        raise ValueError("give at least one seed")
    fixed = fixed_params or {}
    dataset, report = filter_positives(data.dataset, min_item, min_user)
    if len(dataset) == 0:
        raise ValueError("no positives left after the filters; lower --min-item-positives/--min-user-positives")
    split = make_split(dataset, protocol, train_share, validation_share)
    sizes = split.sizes()
    if log:
        log(
            f"filters (items >= {min_item}, users >= {min_user}): {report.users_before} users, {report.items_before} items, "
            f"{report.interactions_before} positives -> {report.users_after}, {report.items_after}, {report.interactions_after}"
        )
        for part in ("train", "validation", "test"):
            s = sizes[part]
            log(
                f"{protocol} {part:<10}: {s['users']:>7} users {s['items']:>7} items {s['interactions']:>9} interactions"
            )
        log(f"evaluated users: validation {sizes['evaluated_users_validation']}, test {sizes['evaluated_users_test']}")
    if sizes["evaluated_users_test"] == 0:
        raise ValueError(
            "no user has history in the fitted part and a test positive; the data is too small for this protocol"
        )
    features = {stage: stage_features(data, split, stage) for stage in ("validation", "test")}
    exclude = (
        {stage: seen_exclusion(data.events, split, stage, seen_events) for stage in ("validation", "test")}
        if exclude_seen
        else None
    )
    total = sum(steps_for(m, tune, seeds, fixed.get(m)) for m in models)
    results: dict[str, dict[str, Any]] = {}
    # disable=None shows the bar on a terminal only, so redirected logs stay readable
    with tqdm(total=total, desc="evaluating", unit="fit", disable=None if progress else True) as bar:

        def step(label: str) -> None:
            bar.set_postfix_str(label)
            bar.update(1)

        for name in models:
            res = run_model(
                name,
                data,
                split,
                seeds=seeds,
                tune=tune,
                params=fixed.get(name),
                step=step,
                features=features,
                exclude=exclude,
            )
            results[name] = res.as_dict()
    return {
        "command": command,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "protocol": split.protocol,
        "tune": tune,
        "exclusion": "every item seen before the target" if exclude_seen else "the fitted positives",
        "seeds": list(seeds),
        "data": data.source,
        "filter": report.as_dict(),
        "split": sizes,
        "models": results,
    }
