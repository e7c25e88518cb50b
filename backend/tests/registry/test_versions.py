"""The file registry: versions never overwritten, stage rules, rollback, audit, and crash consistency."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

import app.files as files
import app.registry.versions as versions
from app.model.artifacts import load_bundle
from app.registry.state import (
    RegistryError,
    StageError,
    UnknownVersionError,
    VersionExistsError,
    production_model_dir,
    read_state,
)
from app.registry.versions import Registry
from tests.registry.helpers import write_model_dir


def stages(reg: Registry) -> dict[str, str]:
    return {r["version"]: r["stage"] for r in reg.versions()}


def check_consistent(root: Path) -> None:
    """What must hold after any crash: one production version matching the pointer, every listed
    version on disk, and the audit trail (with a pending last change) replaying to the stages."""
    state = read_state(root)
    reg = Registry(root)
    prod = state["production"]
    in_prod = [v for v, e in state["versions"].items() if e["stage"] == "production"]
    assert in_prod == ([prod] if prod else [])
    for v in state["versions"]:
        assert (root / "versions" / v / "metadata.json").is_file()
    assert production_model_dir(root) == (root / "versions" / prod if prod else None)
    replay: dict[str, str] = {}
    for entry in reg.audit():
        replay[entry["version"]] = entry["to"]
    assert replay == {v: e["stage"] for v, e in state["versions"].items()}


def test_register_copies_in_and_never_overwrites(tmp_path, model_dir):
    reg = Registry(tmp_path / "reg")
    src = model_dir("v-a")
    assert reg.register(src, actor="tester", reason="first") == "v-a"
    assert (src / "metadata.json").is_file()  # copied, not moved
    dst = tmp_path / "reg" / "versions" / "v-a"
    assert sorted(p.name for p in dst.iterdir()) == ["arrays.npz", "items.jsonl", "metadata.json"]
    assert load_bundle(dst).version == "v-a"  # a complete, loadable copy
    before = (dst / "arrays.npz").read_bytes()
    with pytest.raises(VersionExistsError, match="never overwritten"):
        reg.register(model_dir("v-a", seed=1))  # same id, other weights
    assert (dst / "arrays.npz").read_bytes() == before
    moved = model_dir("v-b")
    reg.register(moved, move=True, stage="staging")
    assert not moved.exists()
    rows = reg.versions()
    assert [(r["number"], r["version"], r["stage"]) for r in rows] == [(1, "v-a", "none"), (2, "v-b", "staging")]
    assert rows[0]["data_summary"] == {"interactions": 10, "users": 3, "items": 4}
    assert production_model_dir(tmp_path / "reg") is None
    assert production_model_dir(tmp_path / "missing") is None and production_model_dir(None) is None


def test_register_refuses_bad_input(tmp_path, model_dir):
    reg = Registry(tmp_path / "reg")
    with pytest.raises(RegistryError, match=r"no metadata\.json"):
        reg.register(tmp_path)
    with pytest.raises(RegistryError, match="invalid version id"):
        reg.register(write_model_dir(tmp_path / "bad", "../escape"))
    with pytest.raises(StageError, match="promote to production afterwards"):
        reg.register(model_dir("v1"), stage="production")

    def refuse(path):
        raise RegistryError(f"{path}: hashes do not match")

    with pytest.raises(RegistryError, match="hashes"):
        reg.register(model_dir("v2"), verify=refuse)
    assert reg.versions() == []


def test_promotion_archives_previous_production_and_audit_says_who_and_why(tmp_path, model_dir):
    root = tmp_path / "reg"
    reg = Registry(root)
    for v in ("v1", "v2"):
        reg.register(model_dir(v), stage="staging", actor="ci")
    reg.promote("v1", "production", actor="alice", reason="first model")
    assert production_model_dir(root) == root / "versions" / "v1"
    reg.promote("2", "production", actor="bob", reason="better ndcg")  # by registration number
    assert stages(reg) == {"v1": "archived", "v2": "production"}
    assert production_model_dir(root) == root / "versions" / "v2"
    last = reg.audit()[-2:]
    assert {(e["version"], e["from"], e["to"]) for e in last} == {
        ("v1", "production", "archived"),
        ("v2", "staging", "production"),
    }
    assert all(e["actor"] == "bob" and e["reason"] == "better ndcg" and e["time"].endswith("Z") for e in last)
    lines = (root / "audit.jsonl").read_bytes().splitlines()
    assert len(lines) == 5 and orjson.loads(lines[0])["from"] is None  # 2 registrations, 1 + 2 stage changes
    with pytest.raises(StageError, match="already in production"):
        reg.promote("v2", "production")
    with pytest.raises(StageError, match="roll back"):
        reg.archive("v2")
    with pytest.raises(UnknownVersionError, match="unknown model version 'v9'"):
        reg.promote("v9", "staging")
    info = reg.version_info("v2")
    assert info["is_production"] and [e["to"] for e in info["audit"]] == ["staging", "production"]
    check_consistent(root)


def test_rollback_walks_back_through_production_history(tmp_path, model_dir):
    root = tmp_path / "reg"
    reg = Registry(root)
    for v in ("v1", "v2", "v3"):
        reg.register(model_dir(v))
        reg.promote(v, "production")
    assert reg.rollback(actor="ops", reason="v3 hurts CTR") == ("v3", "v2")
    assert production_model_dir(root) == root / "versions" / "v2"
    assert stages(reg) == {"v1": "archived", "v2": "production", "v3": "archived"}
    assert reg.rollback() == ("v2", "v1")
    with pytest.raises(StageError, match="no earlier production version"):
        reg.rollback()
    reg.promote("v3", "production", reason="fixed upstream")  # an archived version can come back
    assert reg.rollback() == ("v3", "v1")
    check_consistent(root)


def test_rollback_without_production_and_archive(tmp_path, model_dir):
    reg = Registry(tmp_path / "reg")
    with pytest.raises(StageError, match="no version is in production"):
        reg.rollback()
    reg.register(model_dir("v1"))
    reg.archive("v1", reason="bad data")
    with pytest.raises(StageError, match="already archived"):
        reg.archive("v1")
    assert stages(reg) == {"v1": "archived"}


OPS = [
    ("register", "v1"),
    ("register", "v2"),
    ("promote", "v1", "production"),
    ("register", "v3"),
    ("promote", "v2", "staging"),
    ("promote", "v2", "production"),
    ("promote", "v3", "production"),
    ("rollback",),
    ("promote", "v1", "staging"),
    ("archive", "v1"),
]


def run_op(reg: Registry, dirs: dict[str, Path], op: tuple) -> None:
    if op[0] == "register":
        reg.register(dirs[op[1]], actor="t", reason="r")
    elif op[0] == "promote":
        reg.promote(op[1], op[2], actor="t", reason="r")
    elif op[0] == "rollback":
        reg.rollback(actor="t", reason="r")
    else:
        reg.archive(op[1], actor="t", reason="r")


class Crash(Exception):
    pass


@pytest.mark.parametrize("crash_at", range(1, len(OPS) + 1))
@pytest.mark.parametrize("where", ["os.replace", "audit append"])
def test_crash_at_any_step_leaves_a_consistent_registry(tmp_path, model_dir, monkeypatch, crash_at, where):
    """The N-th commit fails before (os.replace) or after (audit append) its commit point; the registry
    stays consistent, and redoing the failed operation and the rest ends where a crash-free run ends."""
    dirs = {v: model_dir(v) for v in ("v1", "v2", "v3")}
    root = tmp_path / "reg"
    reg = Registry(root)
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # durability is not under test here, atomicity is
    crash = pytest.MonkeyPatch()
    calls = {"n": 0}
    real_replace, real_append = os.replace, versions.append_lines_durable

    def failing_replace(src, dst):
        if Path(dst).name == "registry.json":
            calls["n"] += 1
            if calls["n"] == crash_at:
                raise Crash("power cut before the rename")
        return real_replace(src, dst)

    def failing_append(path, lines):
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise Crash("power cut after the rename")
        return real_append(path, lines)

    if where == "os.replace":
        crash.setattr(files.os, "replace", failing_replace)
    else:
        crash.setattr(versions, "append_lines_durable", failing_append)
    crashed_op = None
    try:
        for op in OPS:
            try:
                run_op(reg, dirs, op)
            except Crash:
                crashed_op = op
                break
    finally:
        crash.undo()
    assert crashed_op is not None
    check_consistent(root)
    assert not list(root.glob(".tmp-*"))
    # Resume: a commit that made it (crash after the rename) must not be redone.
    start = OPS.index(crashed_op)
    committed = where == "audit append"
    if crashed_op[0] == "register" and not committed:
        # the directory was renamed in before the failed commit: the next transaction adopts it
        assert (root / "versions" / crashed_op[1]).is_dir()
        assert stages(reg)[crashed_op[1]] == "none"
        committed = True
    for op in OPS[start + (1 if committed else 0) :]:
        run_op(reg, dirs, op)
        check_consistent(root)
    assert stages(reg) == {"v1": "archived", "v2": "production", "v3": "archived"}
    assert production_model_dir(root) == root / "versions" / "v2"
    seqs = [e["seq"] for e in reg.audit()]
    assert seqs == sorted(seqs) and len(set(seqs)) == read_state(root)["seq"]


def test_leftovers_of_a_hard_crash_are_ignored_then_cleaned(tmp_path, model_dir):
    """A killed process leaves temp files and half-copied directories; readers never see them."""
    root = tmp_path / "reg"
    reg = Registry(root)
    reg.register(model_dir("v1"))
    (root / ".tmp-registry.json.dead").write_bytes(b'{"torn":')
    half = root / "versions" / ".tmp-v2.dead"
    half.mkdir()
    (half / "model.keras").write_bytes(b"partial")
    with open(root / "audit.jsonl", "ab") as fh:
        fh.write(b'{"seq": 99, "torn')  # a line cut by the crash
    assert [r["version"] for r in reg.versions()] == ["v1"]
    reg.promote("v1", "production")
    assert not half.exists() and not (root / ".tmp-registry.json.dead").exists()
    assert (root / "audit.jsonl").read_bytes().count(b"torn") == 0
    check_consistent(root)


def test_failed_copy_leaves_nothing(tmp_path, model_dir, monkeypatch):
    root = tmp_path / "reg"
    reg = Registry(root)

    def boom(path):
        raise OSError("disk full")

    src, moved = model_dir("v1"), model_dir("v2")  # before the patch: the model package writes with app.files too
    monkeypatch.setattr(files, "fsync_tree", boom)
    with pytest.raises(OSError, match="disk full"):
        reg.register(src)
    monkeypatch.undo()
    assert reg.versions() == [] and list((root / "versions").iterdir()) == []
    monkeypatch.setattr(files, "fsync_tree", boom)
    with pytest.raises(OSError):
        reg.register(moved, move=True)
    assert (moved / "metadata.json").is_file()  # a failed move gives the directory back


def test_a_model_that_does_not_load_is_refused(tmp_path, model_dir):
    src = model_dir("v1")
    (src / "arrays.npz").write_bytes(b"tampered")
    reg = Registry(tmp_path / "reg")
    with pytest.raises(RegistryError, match=r"cannot load.*sha256"):
        reg.register(src)
    assert reg.versions() == []
