"""The closed-loop simulation: simulated users against the live service, three arms, one seed.

1. A population (``app.simulate.population``) and its base log are generated; the first model is
   trained on the base log by a retraining run on an empty registry (``app.registry.pipeline.run_once``),
   which promotes it. Every arm starts from a copy of that registry.
2. Each arm gets its own service (``app.simulate.service``: uvicorn in a subprocess, its own SQLite
   database, the registry copy as ``RECOMMENDER_REGISTRY_DIR``) and runs ``rounds`` rounds: every
   active user fetches ``GET /recommendations/{user}?k=K`` and reports each click, like and dislike
   with ``POST /events/engagement`` (the list's ``recset_id``), as the web page does.
3. Arm (c) runs a retraining run after every ``retrain_every`` rounds (not after the last one) on the
   base log plus what its service stored; a promoted version is loaded by the service
   (``POST /admin/reload``) before the next round. ``--promote always`` serves every candidate
   whatever the promotion gate decided (recorded as such): what retraining brings, gate aside.

Arms: (a) ``frozen``: ``RECOMMENDER_ONLINE_HISTORY=false``, no retraining; (b) ``online``: online
history on, no retraining; (c) ``retrain``: online history on, retraining. The users' decisions are
hashes of (seed, round, user, item), so two arms that show a user the same list get the same actions.

Measured per round and arm, from the simulation's own record of every list and action: PaC (share
of lists with at least one positive engagement: a click or a like) and CTR (clicked items / shown
items), with 95% intervals (``app.simulate.stats``).
"""

from __future__ import annotations

import math
import shutil
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from app.config import get_settings
from app.files import write_bytes_atomic
from app.simulate import stats
from app.simulate.population import Behaviour, SimPopulation, UserState
from app.simulate.service import ServiceError, ServiceProcess

MARKER = ".simulate-loop"  # a work directory with this file was made by this command and may be emptied
POSITIVE_ACTIONS = ("click", "like")


class SimulationError(RuntimeError):
    """The simulation cannot go on; the message says why (and shows the service's log when it is the cause)."""


@dataclass(frozen=True)
class Arm:
    key: str
    letter: str
    label: str
    online_history: bool
    retrain: bool


ARMS: dict[str, Arm] = {
    "frozen": Arm("frozen", "a", "(a) frozen model", online_history=False, retrain=False),
    "online": Arm("online", "b", "(b) online history", online_history=True, retrain=False),
    "retrain": Arm("retrain", "c", "(c) online history + retraining", online_history=True, retrain=True),
}


def parse_arms(text: str | Sequence[str]) -> list[Arm]:
    """``"a,b,c"`` or ``"frozen,online,retrain"`` (any subset, any order) -> arms in the order a, b, c."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    by_letter = {arm.letter: arm for arm in ARMS.values()}
    chosen = set()
    for name in names:
        arm = ARMS.get(name) or by_letter.get(name)
        if arm is None:
            known = ", ".join(f"{a.letter}/{a.key}" for a in ARMS.values())
            raise ValueError(f"unknown arm {name!r}; known: {known}")
        chosen.add(arm.key)
    if not chosen:
        raise ValueError("--arms: name at least one arm")
    return [arm for arm in ARMS.values() if arm.key in chosen]


@dataclass
class LoopConfig:
    out: Path
    users: int = 600
    new_users: int = 60
    items: int = 300
    rounds: int = 30
    retrain_every: int = 5
    seed: int = 42
    k: int = 10
    arms: tuple[str, ...] = ("frozen", "online", "retrain")
    active_share: float = 1.0
    work_dir: Path | None = None
    epochs: int = 20
    ensemble: int = 1
    embedding_dim: int = 32
    min_round_seconds: float = 1.0
    also_post_events: bool = False
    promote: str = "gate"  # "always": arm (c) serves every candidate, whatever the gate decided
    behaviour: Behaviour = field(default_factory=Behaviour)
    service_env: dict[str, str] = field(default_factory=dict)
    n_boot: int = stats.N_BOOT

    def check(self) -> None:
        if self.rounds < 1:
            raise ValueError("--rounds must be >= 1")
        if self.retrain_every < 1:
            raise ValueError("--retrain-every must be >= 1")
        if not 1 <= self.k <= 100:
            raise ValueError("--k must be in 1..100")
        if not 0.0 < self.active_share <= 1.0:
            raise ValueError("--active-share must be in (0, 1]")
        if self.epochs < 1 or self.ensemble < 1 or self.embedding_dim < 1:
            raise ValueError("--epochs, --ensemble and --embedding-dim must be >= 1")
        if self.promote not in ("gate", "always"):
            raise ValueError("--promote must be gate or always")
        parse_arms(self.arms)

    @property
    def work(self) -> Path:
        return Path(self.work_dir) if self.work_dir is not None else Path(self.out) / "work"

    def train_params(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "ensemble": self.ensemble,
            "embedding_dim": self.embedding_dim,
            "seed": self.seed,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "new_users": self.new_users,
            "items": self.items,
            "rounds": self.rounds,
            "retrain_every": self.retrain_every,
            "seed": self.seed,
            "k": self.k,
            "arms": [a.key for a in parse_arms(self.arms)],
            "active_share": self.active_share,
            "train_params": self.train_params(),
            "min_round_seconds": self.min_round_seconds,
            "also_post_events": self.also_post_events,
            "promote": self.promote,
            "behaviour": self.behaviour.as_dict(),
            "service_env": dict(self.service_env),
            "out": str(self.out),
            "work_dir": str(self.work),
        }


@dataclass
class ListRecord:
    """One list shown to one user and what they did with it."""

    round: int
    user: int
    new_user: bool
    shown: int
    clicks: int
    likes: int
    dislikes: int
    fallback: bool
    model_version: str | None
    list_ms: float = 0.0  # the GET's round trip
    post_ms: float = 0.0  # all of the list's engagement POSTs
    posts: int = 0

    @property
    def positive(self) -> bool:
        return self.clicks + self.likes > 0


def prepare_work_dir(work: Path) -> None:
    """An empty work directory: a new one, or one this command made before (its content is removed)."""
    work = Path(work)
    if work.exists():
        if not work.is_dir():
            raise SimulationError(f"--work-dir {work} exists and is not a directory")
        if any(work.iterdir()):
            if not (work / MARKER).is_file():
                raise SimulationError(
                    f"--work-dir {work} is not empty and was not made by this command; choose another directory"
                )
            for child in work.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    work.mkdir(parents=True, exist_ok=True)
    (work / MARKER).write_text("made by python -m app.simulate loop; emptied by its next run\n")


class Simulation:
    """One run of every chosen arm; ``run()`` returns the result (also written by ``app.simulate.report``)."""

    def __init__(self, config: LoopConfig, echo: Callable[[str], None] = print) -> None:
        config.check()
        self.cfg = config
        self.arms = parse_arms(config.arms)
        self.work = config.work.resolve()
        self._echo = echo
        self.pop: SimPopulation | None = None
        self.log_file: Path | None = None

    def echo(self, text: str) -> None:
        self._echo(text)
        if self.log_file is not None:
            with open(self.log_file, "a") as fh:
                fh.write(text + "\n")

    # -- setup ---------------------------------------------------------------------------------

    def setup(self) -> dict[str, Any]:
        """Population, base log, and the first model promoted in the initial registry."""
        cfg = self.cfg
        prepare_work_dir(self.work)
        self.log_file = self.work / "simulate.log"
        self.pop = SimPopulation(cfg.users, cfg.items, cfg.seed, cfg.new_users, cfg.behaviour)
        interactions, catalogue = self.pop.base_log()
        self.base_path = self.work / "base" / "interactions.jsonl"
        self.items_path = self.work / "base" / "items.jsonl"
        write_bytes_atomic(self.base_path, interactions, durable=False)
        write_bytes_atomic(self.items_path, catalogue, durable=False)
        n_events = interactions.count(b"\n")
        self.echo(
            f"population: {cfg.users} users in the base log ({n_events} events) + "
            f"{cfg.new_users} new users, {cfg.items} items, seed {cfg.seed}; work directory {self.work}"
        )
        self.initial_registry = self.work / "initial-registry"
        t = time.perf_counter()
        record = self._retrain_run(self.initial_registry, database_url=None, service_url=None)
        if record.get("decision") != "promote":
            raise SimulationError(f"the first model was not promoted: {record.get('reason')}")
        metrics = record["evaluation"]["candidate"]["metrics"]
        initial = {
            "version": record["candidate"],
            "ndcg@10": metrics.get("ndcg@10"),
            "hitrate@10": metrics.get("hitrate@10"),
            "positives": record["data"]["positives"],
            "seconds": round(time.perf_counter() - t, 2),
        }
        self.echo(
            f"first model {initial['version']}: validation NDCG@10 {initial['ndcg@10']:.4f} "
            f"({initial['positives']} positives), trained in {initial['seconds']:.1f} s"
        )
        return initial

    def _retrain_run(self, registry: Path, database_url: str | None, service_url: str | None) -> dict[str, Any]:
        from app.registry.pipeline import RetrainOptions, run_once  # TensorFlow: only when training

        opts = RetrainOptions(
            registry_dir=registry,
            data_paths=[self.base_path],
            items_path=self.items_path,
            database_url=database_url,
            service_url=service_url,
            baselines=(),
            train_params=self.cfg.train_params(),
            actor="simulate",
            n_boot=100,
            settings=get_settings(),
        )
        return run_once(opts)

    # -- one arm -------------------------------------------------------------------------------

    def service_settings(self, arm: Arm, arm_dir: Path) -> dict[str, str]:
        return {
            **self.cfg.service_env,
            "RECOMMENDER_REGISTRY_DIR": str(arm_dir / "registry"),
            "RECOMMENDER_DATA_DIR": str(arm_dir),
            "DATABASE_URL": f"sqlite:///{(arm_dir / 'recommender.db').as_posix()}",
            "RECOMMENDER_ONLINE_HISTORY": "true" if arm.online_history else "false",
            "RECOMMENDER_MODEL_POLL_SECONDS": "0",
        }

    def run_arm(self, arm: Arm) -> dict[str, Any]:
        cfg, pop = self.cfg, self.pop
        assert pop is not None
        arm_dir = self.work / arm.key
        shutil.copytree(self.initial_registry, arm_dir / "registry")
        settings = self.service_settings(arm, arm_dir)
        states = [UserState() for _ in range(pop.n_users)]
        lists: list[ListRecord] = []
        retraining: list[dict[str, Any]] = []
        rounds: list[dict[str, Any]] = []
        t_arm = time.perf_counter()
        with (
            ServiceProcess(settings, arm_dir / "service.log") as svc,
            open(arm_dir / "lists.jsonl", "wb") as trace,
        ):
            self.echo(f"\n{arm.label}: service {svc.url} (log {arm_dir / 'service.log'})")
            for r in range(1, cfg.rounds + 1):
                t = time.perf_counter()
                shown_before = len(lists)
                for u in pop.active(r, cfg.active_share).tolist():
                    lists.append(self._one_list(svc, r, u, states[u], trace))
                row = round_row(lists[shown_before:], r, cfg.seed)
                elapsed = time.perf_counter() - t
                row["seconds"] = round(elapsed, 3)
                rounds.append(row)
                self.echo(
                    f"  round {r:>3}: PaC {row['pac']:.3f} [{row['pac_ci'][0]:.3f}, {row['pac_ci'][1]:.3f}]  "
                    f"CTR {row['ctr']:.4f}  {row['lists']} lists, {elapsed:.1f} s (GET {row['list_ms_mean']:.1f} ms, "
                    f"p95 {row['list_ms_p95']:.1f}; POST {row['engagement_ms_mean']:.1f} ms)"
                )
                if elapsed < cfg.min_round_seconds:  # the service's online history may lag by up to a second
                    time.sleep(cfg.min_round_seconds - elapsed)
                if arm.retrain and r % cfg.retrain_every == 0 and r < cfg.rounds:
                    retraining.append(self._retrain_arm(svc, arm_dir, r))
            service_view = self._service_metrics(svc, len(lists))
        return {
            "label": arm.label,
            "letter": arm.letter,
            "online_history": arm.online_history,
            "retrain": arm.retrain,
            "rounds": rounds,
            "retraining": retraining,
            "service": service_view,
            "seconds": round(time.perf_counter() - t_arm, 2),
            "_lists": lists,
        }

    def _one_list(self, svc: ServiceProcess, r: int, u: int, state: UserState, trace: Any) -> ListRecord:
        pop = self.pop
        assert pop is not None
        user_id = pop.user_ids[u]
        t = time.perf_counter()
        answer = svc.get(f"/recommendations/{user_id}", k=self.cfg.k)
        list_ms = (time.perf_counter() - t) * 1000
        shown = [pop.item_index.get(str(it["item_id"]), -1) for it in answer["items"]]
        actions = pop.act(r, u, shown, state)
        recset = answer["recset_id"]
        t = time.perf_counter()
        for a in actions:
            svc.post(
                "/events/engagement",
                {
                    "recset_id": recset,
                    "user_id": user_id,
                    "item_id": pop.item_ids[a.item],
                    "action_type": a.action_type,
                },
            )
        if self.cfg.also_post_events and actions:
            now = int(time.time())
            svc.post(
                "/events",
                [
                    {"user_id": user_id, "item_id": pop.item_ids[a.item], "event": a.action_type, "ts": now}
                    for a in actions
                ],
            )
        post_ms = (time.perf_counter() - t) * 1000
        kinds = [a.action_type for a in actions]
        record = ListRecord(
            round=r,
            user=u,
            new_user=pop.is_new(u),
            shown=len(shown),
            clicks=kinds.count("click"),
            likes=kinds.count("like"),
            dislikes=kinds.count("dislike"),
            fallback=bool(answer.get("fallback_used")),
            model_version=answer.get("model_version"),
            list_ms=list_ms,
            post_ms=post_ms,
            posts=len(actions),
        )
        trace.write(
            orjson.dumps(
                {
                    "round": r,
                    "user_id": user_id,
                    "recset_id": recset,
                    "model_version": record.model_version,
                    "fallback_used": record.fallback,
                    "items": [it["item_id"] for it in answer["items"]],
                    "actions": [[pop.item_ids[a.item], a.action_type] for a in actions],
                }
            )
            + b"\n"
        )
        return record

    def _retrain_arm(self, svc: ServiceProcess, arm_dir: Path, after_round: int) -> dict[str, Any]:
        from app.registry.pipeline import RetrainError
        from app.registry.state import RegistryError
        from app.registry.versions import Registry

        registry = arm_dir / "registry"
        t = time.perf_counter()
        db_url = f"sqlite:///{(arm_dir / 'recommender.db').as_posix()}"
        try:
            record = self._retrain_run(registry, database_url=db_url, service_url=svc.url)
        except (RetrainError, RegistryError, ValueError, FileNotFoundError) as exc:
            self.echo(f"  retraining after round {after_round} failed: {exc}")
            return {"after_round": after_round, "decision": "error", "reason": str(exc)}
        except Exception as exc:  # a crash of the pipeline: recorded, the arm goes on with the model it serves
            with open(arm_dir / "retrain-errors.log", "a") as fh:
                fh.write(f"after round {after_round}:\n{traceback.format_exc()}\n")
            self.echo(
                f"  retraining after round {after_round} crashed: {type(exc).__name__}: {exc} "
                f"(traceback in {arm_dir / 'retrain-errors.log'})"
            )
            return {"after_round": after_round, "decision": "error", "reason": f"{type(exc).__name__}: {exc}"}
        reg = Registry(registry)
        gate_decision = record.get("decision")
        forced = False
        if self.cfg.promote == "always" and gate_decision == "keep" and record.get("candidate"):
            reg.promote(record["candidate"], "production", actor="simulate", reason="--promote always: gate overridden")
            forced = True
        production = reg.production()
        served = svc.get("/ready").get("model_version")
        if served != production:  # the pipeline's reload failed or was not asked for: ask once more
            svc.post("/admin/reload")
            served = svc.get("/ready").get("model_version")
            if served != production:
                raise SimulationError(
                    f"after retraining the registry's production version is {production} but the service "
                    f"serves {served}{svc.tail()}"
                )
        evaluation = record.get("evaluation") or {}
        candidate = (evaluation.get("candidate") or {}).get("metrics") or {}
        prod = (evaluation.get("production") or {}).get("metrics") or {}
        new = (record.get("data") or {}).get("new") or {}
        out = {
            "after_round": after_round,
            "decision": "promote" if forced else gate_decision,
            "gate_decision": gate_decision,
            "forced": forced,
            "reason": record.get("reason"),
            "candidate": record.get("candidate"),
            "candidate_ndcg@10": candidate.get("ndcg@10"),
            "production_ndcg@10": prod.get("ndcg@10"),
            "new_events": new.get("events"),
            "new_data": {k: v for k, v in new.items() if isinstance(v, int | float | str)},
            "served_version": served,
            "seconds": round(time.perf_counter() - t, 2),
        }
        reason = str(out["reason"])
        reason = reason if len(reason) <= 160 else reason[:157] + "..."
        self.echo(
            f"  retraining after round {after_round}: {out['decision']}{' (forced)' if forced else ''} "
            f"({out['new_events']} new events; {reason}), {out['seconds']:.1f} s; serving {served}"
        )
        return out

    def _service_metrics(self, svc: ServiceProcess, n_lists: int) -> dict[str, Any]:
        """The service's own view (impressions written, its PaC), once the impression writer has caught up."""
        deadline = time.monotonic() + 10.0
        pac: dict[str, Any] = {}
        while time.monotonic() < deadline:
            pac = svc.get("/metrics/pac", k=self.cfg.k)
            if pac.get("impressions", 0) >= n_lists:
                break
            time.sleep(0.25)
        keep = ("impressions", "pac_mean", "pac_micro", "total_hits", "total_recommended", "empty_lists")
        view = {k: pac.get(k) for k in keep}
        view["by_model_version"] = {v: m.get("impressions") for v, m in (pac.get("by_model_version") or {}).items()}
        if view.get("impressions") != n_lists:
            self.echo(f"  warning: the service logged {view.get('impressions')} impressions for {n_lists} lists")
        return view

    # -- the whole run -------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        initial = self.setup()
        results = {arm.key: self.run_arm(arm) for arm in self.arms}
        lists = {key: res.pop("_lists") for key, res in results.items()}
        for key, res in results.items():
            res["summary"] = summarise(lists[key], self.cfg)
        keys = list(results)
        comparison = [  # every later arm against every earlier one: b - a, c - a, c - b
            {"arm": later, "reference": earlier, **compare(lists[earlier], lists[later], self.cfg)}
            for i, earlier in enumerate(keys)
            for later in keys[i + 1 :]
        ]
        return {
            "config": self.cfg.as_dict(),
            "initial_model": initial,
            "metric_definitions": {
                "pac": "share of lists with at least one positive engagement (click or like); 95% Wilson interval",
                "ctr": "clicked items / shown items; 95% percentile bootstrap over lists",
                "summary": "over the rounds named; 95% bootstrap over users (each user's lists together)",
                "difference": "arm minus reference arm, paired by user; 95% bootstrap over users",
            },
            "arms": results,
            "comparison": comparison,
            "seconds": round(time.perf_counter() - t0, 1),
        }


# -- figures ------------------------------------------------------------------------------------


def round_row(lists: Sequence[ListRecord], r: int, seed: int) -> dict[str, Any]:
    """PaC and CTR of one round of one arm, with intervals and counts."""
    n = len(lists)
    positive = sum(x.positive for x in lists)
    clicks = np.array([x.clicks for x in lists], dtype=np.float64)
    shown = np.array([x.shown for x in lists], dtype=np.float64)
    versions: dict[str, int] = {}
    for x in lists:
        versions[str(x.model_version)] = versions.get(str(x.model_version), 0) + 1
    new = [x for x in lists if x.new_user]
    return {
        "round": r,
        "lists": n,
        "shown": int(shown.sum()),
        "clicks": int(clicks.sum()),
        "likes": sum(x.likes for x in lists),
        "dislikes": sum(x.dislikes for x in lists),
        "positive_lists": positive,
        "pac": positive / n if n else math.nan,
        "pac_ci": list(stats.wilson(positive, n)),
        "ctr": stats.ratio(clicks, shown),
        "ctr_ci": list(stats.bootstrap_ratio(clicks, shown, seed=seed * 1000 + r)),
        "fallback_lists": sum(x.fallback for x in lists),
        "new_user_lists": len(new),
        "new_user_pac": sum(x.positive for x in new) / len(new) if new else None,
        "model_versions": versions,
        "list_ms_mean": float(np.mean([x.list_ms for x in lists])) if lists else None,
        "list_ms_p95": float(np.percentile([x.list_ms for x in lists], 95)) if lists else None,
        "engagement_ms_mean": sum(x.post_ms for x in lists) / max(1, sum(x.posts for x in lists)),
    }


def _per_user(lists: Sequence[ListRecord], n_users: int, rounds: set[int]) -> dict[str, np.ndarray]:
    out = {k: np.zeros(n_users) for k in ("lists", "positive", "clicks", "shown")}
    for x in lists:
        if x.round in rounds:
            out["lists"][x.user] += 1
            out["positive"][x.user] += x.positive
            out["clicks"][x.user] += x.clicks
            out["shown"][x.user] += x.shown
    return out


def _periods(cfg: LoopConfig) -> dict[str, set[int]]:
    """The rounds a summary covers: all, and the second half (after the loop had time to act)."""
    start = cfg.rounds // 2 + 1
    return {"all_rounds": set(range(1, cfg.rounds + 1)), "second_half": set(range(start, cfg.rounds + 1))}


def _n_users(lists: Sequence[ListRecord]) -> int:
    return max((x.user for x in lists), default=-1) + 1


def summarise(lists: Sequence[ListRecord], cfg: LoopConfig) -> dict[str, Any]:
    n_users = _n_users(lists)
    out: dict[str, Any] = {}
    for name, rounds in _periods(cfg).items():
        per = _per_user(lists, n_users, rounds)
        out[name] = {
            "rounds": [min(rounds), max(rounds)],
            "lists": int(per["lists"].sum()),
            "pac": stats.ratio(per["positive"], per["lists"]),
            "pac_ci": list(stats.bootstrap_ratio(per["positive"], per["lists"], cfg.seed, cfg.n_boot)),
            "ctr": stats.ratio(per["clicks"], per["shown"]),
            "ctr_ci": list(stats.bootstrap_ratio(per["clicks"], per["shown"], cfg.seed + 1, cfg.n_boot)),
        }
    return out


def compare(reference: Sequence[ListRecord], other: Sequence[ListRecord], cfg: LoopConfig) -> dict[str, Any]:
    """``other`` minus ``reference`` per period, paired by user."""
    n_users = max(_n_users(reference), _n_users(other))
    out: dict[str, Any] = {}
    for name, rounds in _periods(cfg).items():
        a, b = _per_user(reference, n_users, rounds), _per_user(other, n_users, rounds)
        pac = stats.bootstrap_paired_diff(a["positive"], a["lists"], b["positive"], b["lists"], cfg.seed, cfg.n_boot)
        ctr = stats.bootstrap_paired_diff(a["clicks"], a["shown"], b["clicks"], b["shown"], cfg.seed + 1, cfg.n_boot)
        out[name] = {
            "pac_diff": pac[0],
            "pac_diff_ci": [pac[1], pac[2]],
            "ctr_diff": ctr[0],
            "ctr_diff_ci": [ctr[1], ctr[2]],
        }
    return out


__all__ = ["ARMS", "Arm", "LoopConfig", "ServiceError", "Simulation", "SimulationError", "loop_doc", "parse_arms"]


def loop_doc() -> str:
    """This module's description, for the command's ``--help``."""
    return __doc__ or ""
