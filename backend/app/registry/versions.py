"""The file model registry: immutable versions, a stage per version, a production pointer, an audit log.

Layout of a registry directory::

    versions/<version>/   one trained model directory each (model.keras, metadata.json, arrays.npz,
                          items.jsonl, and evaluation.json / decision.json / report.md / heldout.npz
                          when the retraining pipeline made it); never overwritten
    registry.json         stage of every version, the production pointer and its history, a change
                          counter ``seq`` and the ``last_change`` (the audit lines of the last commit)
    audit.jsonl           one line per stage change: seq, time, actor, reason, action, version, from, to
    runs.jsonl            one line per finished retraining run (written by the pipeline): the gate
                          evaluation's figures for its candidate and production, which ``versions()``
                          reports per version as ``gate`` (the latest evaluation it took part in)

Every change is one transaction under an exclusive lock: build the new state, write it to a temp
file, fsync, ``os.replace`` it over ``registry.json`` (the commit point), then append the audit lines.
A crash before the replace leaves the old state; a crash after it leaves the new state with the audit
lines missing, which the next transaction appends from ``last_change`` (``seq`` tells which). A
crash while a version directory is copied in leaves a ``.tmp-*`` directory that is never read and
is removed by the next transaction; a crash after the directory rename but before the commit leaves
an unlisted version, which the next transaction adopts with stage ``none``.
"""

from __future__ import annotations

import contextlib
import copy
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from app.files import (
    TMP_PREFIX,
    append_lines_durable,
    copy_dir_atomic,
    file_lock,
    read_jsonl,
    write_json_atomic,
)
from app.registry.state import (
    AUDIT_FILE,
    DECISION_FILE,
    EVALUATION_FILE,
    ID_LISTS,
    LOCK_FILE,
    METADATA_FILE,
    RUNS_FILE,
    STAGES,
    STATE_FILE,
    VERSIONS_DIR,
    StageError,
    UnknownVersionError,
    VersionExistsError,
    check_version_id,
    default_actor,
    read_model_metadata,
    read_optional_json,
    read_state,
    utc_now,
    verify_model_dir,
)


class Registry:
    """One registry directory. Read methods need no lock; every change runs in ``_transaction``."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.versions_dir = self.root / VERSIONS_DIR
        self.state_path = self.root / STATE_FILE
        self.audit_path = self.root / AUDIT_FILE

    # ----------------------------------------------------------------- reading
    def state(self) -> dict[str, Any]:
        """Committed state, plus version directories not yet committed (an interrupted register) as stage ``none``."""
        state = read_state(self.root)
        for name in self._version_dirs():
            if name not in state["versions"]:
                state["versions"][name] = {
                    "number": None,
                    "stage": "none",
                    "registered_at": None,
                    "stage_changed_at": None,
                    "uncommitted": True,
                }
        return state

    def production(self) -> str | None:
        return read_state(self.root).get("production")

    def version_dir(self, version: str) -> Path:
        return self.versions_dir / check_version_id(version)

    def resolve(self, ref: str) -> str:
        """A version id, or its registration number ("3" or "#3") when no version has that id."""
        return self._known(self.state(), ref)

    def versions(self) -> list[dict[str, Any]]:
        """Summary of every version, in registration order, each with its latest gate evaluation (``gate``)."""
        state = self.state()
        gates = self.gate_evaluations()
        rows = [self._summary(name, entry, state, gates.get(name)) for name, entry in state["versions"].items()]
        return sorted(rows, key=lambda r: (r["number"] is None, r["number"] or 0, r["version"]))

    def gate_evaluations(self) -> dict[str, dict[str, Any]]:
        """version -> its latest gate evaluation in a retraining run, as candidate or as production:
        ``{"run_id", "role", "method", "users", "protocol", "metrics"}`` (both roles of one run come
        from the same evaluation: the same users, rows and exclusions)."""
        out: dict[str, dict[str, Any]] = {}
        for run in read_jsonl(self.root / RUNS_FILE):
            metrics = run.get("metrics") or {}
            gate = run.get("gate") or {}
            roles = {
                "candidate": gate.get("candidate", run.get("candidate")),
                "production": gate.get("production", run.get("production_before")),
            }
            for role, version in roles.items():
                if version and role in metrics:
                    out[version] = {
                        "run_id": run.get("run_id"),
                        "role": role,
                        "method": gate.get("method", "unchecked"),  # runs from before the overlap check
                        "users": gate.get("users"),
                        "protocol": gate.get("protocol"),
                        "metrics": metrics[role],
                    }
        return out

    def version_info(self, ref: str, *, detail: bool = True) -> dict[str, Any]:
        """Summary plus (``detail``) the metadata (ID lists as counts), evaluation report, gate decision and audit lines."""
        state = self.state()
        version = self.resolve(ref)
        info = self._summary(version, state["versions"][version], state, self.gate_evaluations().get(version))
        if detail:
            vdir = self.versions_dir / version
            meta = read_optional_json(vdir / METADATA_FILE)
            if isinstance(meta, dict):  # the ID lists are as long as the data; counts say enough here
                meta = {k: (len(v) if k in ID_LISTS and isinstance(v, list) else v) for k, v in meta.items()}
            info["metadata"] = meta
            info["evaluation"] = read_optional_json(vdir / EVALUATION_FILE)
            info["decision"] = read_optional_json(vdir / DECISION_FILE)
            info["audit"] = self.audit(version)
        return info

    def audit(self, version: str | None = None) -> list[dict[str, Any]]:
        rows = read_jsonl(self.audit_path)
        state = read_state(self.root)
        seen = {r.get("seq") for r in rows}
        rows += [r for r in state.get("last_change", []) if r.get("seq") not in seen]  # not yet appended
        return [r for r in rows if version is None or r.get("version") == version]

    def _summary(
        self, version: str, entry: dict[str, Any], state: dict[str, Any], gate: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        vdir = self.versions_dir / version
        meta = read_optional_json(vdir / METADATA_FILE) or {}
        evaluation = read_optional_json(vdir / EVALUATION_FILE) or {}
        decision = read_optional_json(vdir / DECISION_FILE) or {}
        return {
            "version": version,
            "number": entry.get("number"),
            "stage": entry.get("stage", "none"),
            "is_production": state.get("production") == version,
            "registered_at": entry.get("registered_at"),
            "stage_changed_at": entry.get("stage_changed_at"),
            "created_at": meta.get("created_at"),
            "model_type": meta.get("model_type"),
            "metrics": meta.get("metrics") or {},
            "validation_metrics": (evaluation.get("candidate") or {}).get("metrics") or {},
            "gate": gate,
            "decision": decision.get("decision"),
            "data_summary": meta.get("data_summary") or {},
            "path": str(vdir),
        }

    def _version_dirs(self) -> list[str]:
        if not self.versions_dir.is_dir():
            return []
        return sorted(
            p.name
            for p in self.versions_dir.iterdir()
            if p.is_dir() and not p.name.startswith(TMP_PREFIX) and (p / METADATA_FILE).is_file()
        )

    # ----------------------------------------------------------------- changing
    def register(
        self,
        model_dir: Path | str,
        *,
        actor: str | None = None,
        reason: str = "",
        stage: str = "none",
        move: bool = False,
        verify: Callable[[Path], Any] | None = verify_model_dir,
    ) -> str:
        """Copy (or move) a trained model directory in as a new version; returns the version id.

        The id is ``metadata.json``'s ``version`` (so the service reports the registry's id). ``stage`` may be ``none`` or ``staging``
        (production is reached through ``promote``, normally by the gate). ``verify(model_dir)`` raises
        to refuse a broken model before anything is written (default: it must load with ``load_bundle``).
        """
        model_dir = Path(model_dir)
        meta = read_model_metadata(model_dir)
        version = check_version_id(str(meta.get("version") or ""))
        if stage not in ("none", "staging"):
            raise StageError(
                f"register with stage 'none' or 'staging', not {stage!r}; promote to production afterwards"
            )
        if verify is not None:
            verify(model_dir)
        with self._transaction("register", actor, reason) as state:
            dst = self.versions_dir / version
            if version in state["versions"] or dst.exists():
                raise VersionExistsError(f"version {version!r} is already registered; versions are never overwritten")
            copy_dir_atomic(model_dir, dst, move=move)
            numbers = [e.get("number") or 0 for e in state["versions"].values()]
            state["versions"][version] = {
                "number": max(numbers, default=0) + 1,
                "stage": stage,
                "registered_at": utc_now(),
                "stage_changed_at": utc_now(),
            }
        return version

    def promote(self, ref: str, to: str, *, actor: str | None = None, reason: str = "") -> dict[str, Any]:
        """Move a version to ``staging`` or ``production``; the previous production version is archived."""
        if to not in ("staging", "production"):
            raise StageError(f"promote to 'staging' or 'production', not {to!r}")
        with self._transaction(f"promote-{to}", actor, reason) as state:
            version = self._known(state, ref)
            verify_model_dir(self.versions_dir / version, f"promoting {version}:")  # files may have changed since
            current = state["versions"][version]["stage"]
            if current == to:
                raise StageError(f"version {version!r} is already in {to}")
            if current == "production":
                raise StageError(f"version {version!r} is in production; promote another version or roll back instead")
            if to == "production":
                previous = state["production"]
                if previous:
                    self._set_stage(state, previous, "archived")
                state["production"] = version
                state["production_history"].append(version)
            self._set_stage(state, version, to)
        return self.version_info(version, detail=False)

    def archive(self, ref: str, *, actor: str | None = None, reason: str = "") -> dict[str, Any]:
        with self._transaction("archive", actor, reason) as state:
            version = self._known(state, ref)
            current = state["versions"][version]["stage"]
            if current == "production":
                raise StageError(f"version {version!r} is in production: roll back or promote another version first")
            if current == "archived":
                raise StageError(f"version {version!r} is already archived")
            self._set_stage(state, version, "archived")
        return self.version_info(version, detail=False)

    def rollback(self, *, actor: str | None = None, reason: str = "") -> tuple[str, str]:
        """Production goes back to the version that was in production before the current one.

        Returns (from, to). The current version is archived and leaves the history, so repeated
        rollbacks walk further back; versions whose directory is gone are skipped.
        """
        with self._transaction("rollback", actor, reason) as state:
            current = state["production"]
            if not current:
                raise StageError("nothing to roll back: no version is in production")
            history = [v for v in state["production_history"] if v in state["versions"]]
            while history and history[-1] == current:
                history.pop()
            while history and not (self.versions_dir / history[-1]).is_dir():
                history.pop()
            if not history:
                raise StageError(f"cannot roll back: {current!r} has no earlier production version to return to")
            target = history[-1]
            verify_model_dir(self.versions_dir / target, f"rolling back to {target}:")
            self._set_stage(state, current, "archived")
            self._set_stage(state, target, "production")
            state["production"] = target
            state["production_history"] = history
        return current, target

    @staticmethod
    def _known(state: dict[str, Any], ref: str) -> str:
        versions = state["versions"]
        if ref in versions:
            return ref
        number = ref.lstrip("#")
        if number.isdigit():
            for name, entry in versions.items():
                if entry.get("number") == int(number):
                    return name
        recent = sorted(versions, key=lambda v: versions[v].get("number") or 0)[-10:]
        known = ", ".join(recent) if recent else "none registered"
        raise UnknownVersionError(f"unknown model version {ref!r} (latest known: {known}; see the list command)")

    @staticmethod
    def _set_stage(state: dict[str, Any], version: str, stage: str) -> None:
        assert stage in STAGES
        entry = state["versions"][version]
        entry["stage"] = stage
        entry["stage_changed_at"] = utc_now()

    @contextlib.contextmanager
    def _transaction(self, action: str, actor: str | None, reason: str) -> Iterator[dict[str, Any]]:
        """Yield a copy of the state to change; commit it (state, then audit) when the block succeeds.

        Transactions wait for each other (a blocking lock): they are short, and a CLI change made
        during a retraining run should go through, not fail."""
        with file_lock(self.root / LOCK_FILE):
            before = self._recover()
            after = copy.deepcopy(before)
            yield after
            self._commit(before, after, action, actor or default_actor(), reason)

    def _commit(self, before: dict[str, Any], after: dict[str, Any], action: str, actor: str, reason: str) -> None:
        seq = int(before["seq"]) + 1
        now = utc_now()
        entries = []
        for version, entry in after["versions"].items():
            old = before["versions"].get(version, {}).get("stage")
            if old != entry["stage"] or version not in before["versions"]:
                entries.append(
                    {
                        "seq": seq,
                        "time": now,
                        "actor": actor,
                        "reason": reason,
                        "action": action,
                        "version": version,
                        "from": old,
                        "to": entry["stage"],
                        "production_before": before["production"],
                        "production_after": after["production"],
                    }
                )
        if not entries:
            return
        after["seq"] = seq
        after["last_change"] = entries
        write_json_atomic(self.state_path, after)  # the commit point
        append_lines_durable(self.audit_path, [orjson.dumps(e) for e in entries])

    def _recover(self) -> dict[str, Any]:
        """Finish what a crashed transaction left (under the lock): missing audit lines, temp files, orphans."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        state = read_state(self.root)
        logged = {r.get("seq") for r in read_jsonl(self.audit_path)}
        missing = [e for e in state.get("last_change", []) if e.get("seq") not in logged]
        if missing:
            append_lines_durable(self.audit_path, [orjson.dumps(e) for e in missing])
        for stale in [*self.root.glob(f"{TMP_PREFIX}*"), *self.versions_dir.glob(f"{TMP_PREFIX}*")]:
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
        orphans = [v for v in self._version_dirs() if v not in state["versions"]]
        if orphans:
            after = copy.deepcopy(state)
            numbers = [e.get("number") or 0 for e in after["versions"].values()]
            for i, version in enumerate(orphans, start=1):
                after["versions"][version] = {
                    "number": max(numbers, default=0) + i,
                    "stage": "none",
                    "registered_at": utc_now(),
                    "stage_changed_at": utc_now(),
                }
            self._commit(state, after, "adopt", "registry", "version directory found without a committed registration")
            state = after
        return state
