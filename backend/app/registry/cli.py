"""``python -m app.registry``: list, show, register, promote, rollback and archive model versions.

Every stage change takes ``--actor`` and ``--reason`` (written to the audit log), is mirrored to
MLflow when tracking is on, and with ``--service-url`` tells the running service to reload. A
``promote`` by hand is not gated (the retraining pipeline is): the audit log keeps who did it and why.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from app.config import get_settings
from app.registry.notify import reload_service
from app.registry.run_report import format_list
from app.registry.state import RegistryError, default_actor
from app.registry.tracking import sync_if_enabled
from app.registry.versions import Registry


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.registry", description=__doc__.splitlines()[0])
    p.add_argument(
        "--registry-dir", type=Path, default=None, help="registry directory (default: RECOMMENDER_REGISTRY_DIR)"
    )
    sub = p.add_subparsers(dest="command", required=True)
    # --registry-dir is also accepted after the command (``list --registry-dir DIR``)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--registry-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    ls = sub.add_parser(
        "list",
        parents=[common],
        help="every version with its stage and the NDCG@10 of the latest gate evaluation it took part in",
    )
    ls.add_argument("--json", action="store_true", help="machine-readable output")

    show = sub.add_parser(
        "show", parents=[common], help="one version: metadata, evaluation, gate decision, audit trail (JSON)"
    )
    show.add_argument("version", help="version id or registration number")

    def change(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--reason", default="", help="why (goes to the audit log)")
        sp.add_argument("--actor", default=None, help="who (default: the login name)")
        sp.add_argument("--service-url", default=None, help="POST <url>/admin/reload after the change")

    reg = sub.add_parser("register", parents=[common], help="copy a trained model directory in as a new version")
    reg.add_argument("model_dir", type=Path)
    reg.add_argument("--stage", choices=["none", "staging"], default="none")
    change(reg)

    pr = sub.add_parser("promote", parents=[common], help="move a version to staging or production")
    pr.add_argument("version")
    pr.add_argument("--to", choices=["staging", "production"], required=True)
    change(pr)

    rb = sub.add_parser("rollback", parents=[common], help="production goes back to the previous production version")
    change(rb)

    ar = sub.add_parser("archive", parents=[common], help="retire a version that is not in production")
    ar.add_argument("version")
    change(ar)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = args.registry_dir or get_settings().registry_dir
    if root is None:
        print("error: give --registry-dir or set RECOMMENDER_REGISTRY_DIR", file=sys.stderr)
        return 2
    registry = Registry(root)
    changed = True
    try:
        if args.command == "list":
            changed = False
            rows = registry.versions()
            print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() if args.json else format_list(rows))
        elif args.command == "show":
            changed = False
            print(orjson.dumps(registry.version_info(args.version), option=orjson.OPT_INDENT_2).decode())
        else:
            actor = args.actor or default_actor()
            if args.command == "register":
                version = registry.register(args.model_dir, actor=actor, reason=args.reason, stage=args.stage)
                print(f"registered {version} ({args.stage}) in {registry.root}")
            elif args.command == "promote":
                info = registry.promote(args.version, args.to, actor=actor, reason=args.reason)
                print(f"{info['version']} -> {info['stage']}")
            elif args.command == "rollback":
                old, new = registry.rollback(actor=actor, reason=args.reason)
                print(f"rolled back production: {old} (archived) -> {new}")
            elif args.command == "archive":
                info = registry.archive(args.version, actor=actor, reason=args.reason)
                print(f"{info['version']} -> archived")
    except RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if changed:
        print(sync_if_enabled(registry))
        if args.service_url and args.command in ("promote", "rollback"):
            result = reload_service(args.service_url)
            print(f"service reload: {'ok' if result['ok'] else 'FAILED'} {result.get('status') or result.get('error')}")
            if not result["ok"]:
                return 3
    return 0
