"""``python -m app.simulate loop``: the closed-loop simulation's command (see ``app.simulate.loop``)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from app.simulate.loop import ARMS, LoopConfig, Simulation, SimulationError, loop_doc
from app.simulate.population import Behaviour
from app.simulate.report import write_outputs
from app.simulate.service import ServiceError

DEFAULT_OUT = Path("artifacts/simulate-loop")  # from the repository root, as every command runs; git ignores it
BEHAVIOUR_HELP = {
    "click_base": "click probability at rank 1 for an item of no favourite genre",
    "click_taste": "added click probability at rank 1 for an item of favourite genres only",
    "like_base": "probability that a click is also a like, no favourite genre",
    "like_taste": "added like probability, favourite genres only",
    "dislike": "dislike probability of an unclicked item at rank 1 of no favourite genre",
    "repeat": "factor on the click probability of an item the user clicked in an earlier round",
}


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: use KEY=VALUE")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.simulate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    d = LoopConfig(out=DEFAULT_OUT)
    b = Behaviour()
    p = commands.add_parser(
        "loop",
        help="simulated users against the live service: frozen vs online history vs retraining",
        description=loop_doc(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--users", type=int, default=d.users, help=f"users in the base log (default {d.users})")
    p.add_argument(
        "--new-users",
        type=int,
        default=d.new_users,
        help=f"more users of the same taste model, not in the base log (default {d.new_users})",
    )
    p.add_argument("--items", type=int, default=d.items, help=f"catalogue size (default {d.items})")
    p.add_argument("--rounds", type=int, default=d.rounds, help=f"rounds per arm (default {d.rounds})")
    p.add_argument(
        "--retrain-every",
        type=int,
        default=d.retrain_every,
        metavar="R",
        help=f"arm (c) retrains after every R rounds (default {d.retrain_every})",
    )
    p.add_argument(
        "--seed", type=int, default=d.seed, help=f"population, users' decisions, training (default {d.seed})"
    )
    p.add_argument("--k", type=int, default=d.k, help=f"list length (default {d.k})")
    p.add_argument(
        "--arms",
        default=",".join(d.arms),
        help="comma-separated: "
        + ", ".join(f"{a.letter}/{a.key} = {a.label[4:]}" for a in ARMS.values())
        + " (default all three)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="loop.png, loop.md, loop.json (default %(default)s)")
    p.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="base log, registries, databases, service logs, every list shown (default OUT/work; emptied first)",
    )
    p.add_argument(
        "--active-share",
        type=float,
        default=d.active_share,
        help="share of the users who come back in each round (default 1: all)",
    )
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"training epochs (default {d.epochs})")
    p.add_argument("--ensemble", type=int, default=d.ensemble, help=f"ensemble members (default {d.ensemble})")
    p.add_argument("--embedding-dim", type=int, default=d.embedding_dim, help=f"(default {d.embedding_dim})")
    p.add_argument(
        "--min-round-seconds",
        type=float,
        default=d.min_round_seconds,
        help=f"a round lasts at least this long (default {d.min_round_seconds})",
    )
    p.add_argument(
        "--also-post-events",
        action="store_true",
        help="also POST every action to /events as an interaction event, besides the engagement",
    )
    p.add_argument(
        "--promote",
        choices=["gate", "always"],
        default=d.promote,
        help="arm (c): serve a candidate when the promotion gate says so (default), or always (a diagnostic)",
    )
    p.add_argument(
        "--service-env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra service setting (repeatable); the arm's own settings win",
    )
    p.add_argument("--no-plot", action="store_true", help="write the table and the JSON only")
    users = p.add_argument_group("simulated users' behaviour (probabilities)")
    for name, value in b.as_dict().items():
        users.add_argument(
            f"--{name.replace('_', '-')}", type=float, default=value, help=f"{BEHAVIOUR_HELP[name]} (default {value})"
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        behaviour = Behaviour(**{name: getattr(args, name) for name in Behaviour().as_dict()})
        config = LoopConfig(
            out=args.out,
            users=args.users,
            new_users=args.new_users,
            items=args.items,
            rounds=args.rounds,
            retrain_every=args.retrain_every,
            seed=args.seed,
            k=args.k,
            arms=tuple(args.arms.split(",")),
            active_share=args.active_share,
            work_dir=args.work_dir,
            epochs=args.epochs,
            ensemble=args.ensemble,
            embedding_dim=args.embedding_dim,
            min_round_seconds=args.min_round_seconds,
            also_post_events=args.also_post_events,
            promote=args.promote,
            behaviour=behaviour,
            service_env=dict(args.service_env),
        )
        simulation = Simulation(config)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def on_sigterm(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds like Ctrl-C: every service is stopped on the way out

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread: no handler
        previous = None
    try:
        result = simulation.run()
        paths = write_outputs(result, args.out, plot=not args.no_plot)
    except (SimulationError, ServiceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; the services were stopped", file=sys.stderr)
        return 130
    except SystemExit:
        print("terminated; the services were stopped", file=sys.stderr)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(f"\nwrote {', '.join(str(p) for p in paths.values())} ({result['seconds']:.0f} s)")
    print(paths["table"].read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
