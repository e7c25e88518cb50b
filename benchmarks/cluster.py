"""Cluster benchmark: ``scripts/cluster.sh`` with 1, 2 and 3 replicas behind nginx, driven by wrk at c=32.

    PYTHONPATH=backend python benchmarks/cluster.py                         # the shipped model
    PYTHONPATH=backend python benchmarks/cluster.py --model-dir DIR --replicas 1,2,3 --duration 20

For each replica count: a fresh cluster (PostgreSQL, the replicas with one uvicorn worker each, nginx;
impressions logged to PostgreSQL as in production) in a scratch directory, a warm-up, then wrk through
the balancer on ``GET /recommendations/{user}?limit=10`` over the model's users (``--rounds`` runs,
median). Printed per count: requests/s, p50/p95/p99, the ratio to one replica, and the CPU time per
request of each component (the replicas, nginx, PostgreSQL, and wrk itself), read from Linux /proc.

On a machine with few cores the ratio is bounded by the cores, not by the service: every process,
wrk included, shares them. The CPU per request says what a larger machine gets: with C cores for the
replicas, throughput is about C / (replica CPU per request), as long as nginx and PostgreSQL keep up
(their CPU per request is printed too).

Then, with ``--failover`` (on by default), on two replicas: how long a promotion takes to reach both, and the SIGKILL of one replica of two in the middle of a wrk
run: the non-2xx answers and socket errors wrk saw, out of how many requests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import serving as S

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "cluster.sh"
TICK = os.sysconf("SC_CLK_TCK")


def _procs() -> list[tuple[int, int, int, float]]:
    """(pid, ppid, process group, CPU seconds) of every process (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            f = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        out.append((int(stat.parent.name), int(f[1]), int(f[2]), (int(f[11]) + int(f[12])) / TICK))
    return out


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _wait_for_lists(urls: list[str]) -> None:
    """Until every replica's hybrid lists, built in the background after a load, are in: measured as a
    running service answers."""
    for url in urls:
        while _get_json(url + "/ready").get("hybrid_lists") == "building":
            time.sleep(0.5)


class Cluster:
    """One ``scripts/cluster.sh`` cluster in a scratch directory, on ports of its own."""

    def __init__(self, replicas: int, model_dir: Path, tmp: Path, base_port: int = 18100):
        self.dir = Path(tempfile.mkdtemp(prefix=f"cluster-{replicas}-", dir=tmp))
        self.dir.chmod(0o755)
        self.env_file = self.dir / "cluster.env"
        self.env_file.write_text(
            f"CLUSTER_DIR={self.dir}/state\nCLUSTER_REPLICAS={replicas}\nCLUSTER_WORKERS_PER_REPLICA=1\n"
            f"CLUSTER_REPLICA_BASE_PORT={base_port}\nCLUSTER_BALANCER_PORT={base_port - 20}\n"
            f"CLUSTER_PG_PORT={base_port - 30}\nCLUSTER_INITIAL_MODEL={model_dir}\n"
            'RECOMMENDER_REGISTRY_DIR="$CLUSTER_DIR/registry"\nRECOMMENDER_DATA_DIR="$CLUSTER_DIR/data"\n'
        )

    def run(self, command: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RECOMMENDER_", "CLUSTER_"))}
        proc = subprocess.run(
            [str(SCRIPT), command, "--env", str(self.env_file)], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if proc.returncode not in (0, 3):
            raise RuntimeError(f"cluster.sh {command} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def start(self) -> dict[str, tuple[str, int]]:
        self.run("start")
        lines = (self.dir / "state" / "run" / "components").read_text().split("\n")
        self.components = {f[0]: (f[1], int(f[2])) for f in (line.split() for line in lines) if f}
        _wait_for_lists(self.replica_urls())
        return self.components

    def replica_urls(self) -> list[str]:
        return [url for name, (url, _pid) in self.components.items() if name.startswith("replica")]

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each kind of component: replicas, balancer, postgres."""
        procs = _procs()
        totals = {"replicas": 0.0, "nginx": 0.0, "postgres": 0.0}
        for name, (_url, pid) in self.components.items():
            kind = "replicas" if name.startswith("replica") else "nginx" if name == "balancer" else "postgres"
            for p, ppid, pgrp, secs in procs:
                # a replica is its process group (setsid); nginx and PostgreSQL are a master and its children
                mine = pgrp == pid if kind == "replicas" else p == pid or ppid == pid
                totals[kind] += secs if mine else 0.0
        return totals

    def stop(self) -> None:
        self.run("stop")


def measure(cluster: Cluster, scenario: S.Scenario, args, tmp: Path) -> dict:
    url = cluster.components["balancer"][0]
    S.run_wrk(url, scenario, args.connections, 3, tmp, "warm-up")
    rounds = []
    for r in range(args.rounds):
        cpu0, wrk0 = cluster.cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
        run = S.run_wrk(url, scenario, args.connections, args.duration, tmp, f"round {r}")
        cpu1, wrk1 = cluster.cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
        n = max(1, run.requests)
        cpu = {k: (cpu1[k] - cpu0[k]) / n * 1e6 for k in cpu0}
        cpu["wrk"] = (wrk1.ru_utime + wrk1.ru_stime - wrk0.ru_utime - wrk0.ru_stime) / n * 1e6
        rounds.append({"rps": run.rps, "p50": run.p50_ms, "p95": run.p95_ms, "p99": run.p99_ms,
                       "errors": run.errors + run.non_2xx, "cpu_us": cpu})  # fmt: skip
        print(f"  round {r}: {run.rps:,.0f} req/s p95 {run.p95_ms:.2f} ms, CPU us/req "
              + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items()), flush=True)  # fmt: skip
    med = lambda key: statistics.median(x[key] for x in rounds)  # noqa: E731
    return {
        "rps": med("rps"),
        "p50": med("p50"),
        "p95": med("p95"),
        "p99": med("p99"),
        "errors": sum(x["errors"] for x in rounds),
        "cpu_us": {k: statistics.median(x["cpu_us"][k] for x in rounds) for k in rounds[0]["cpu_us"]},
    }


def promotion_seconds(cluster: Cluster, model_dir: Path, tmp: Path) -> float:
    """Seconds from ``promote --service-url <balancer>`` until every replica serves the new version."""
    copy = tmp / "promoted"
    shutil.copytree(model_dir, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["version"] = version = meta["version"] + "-b"  # the same files under a new version id
    (copy / "metadata.json").write_text(json.dumps(meta))
    registry = [sys.executable, "-m", "app.registry", "--registry-dir", str(cluster.dir / "state" / "registry")]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "backend")}
    subprocess.run([*registry, "register", str(copy)], check=True, env=env, capture_output=True)
    t0 = time.monotonic()
    balancer = cluster.components["balancer"][0]
    subprocess.run([*registry, "promote", version, "--to", "production", "--service-url", balancer],
                   check=True, env=env, capture_output=True)  # fmt: skip
    replicas = cluster.replica_urls()
    while any(_get_json(url + "/health")["model_version"] != version for url in replicas):
        time.sleep(0.02)
    seconds = time.monotonic() - t0
    _wait_for_lists(replicas)  # the load that follows meets the new version's lists
    return seconds


def failover(model_dir: Path, scenario: S.Scenario, args, tmp: Path) -> dict:
    """Two replicas: a promotion's time to reach both, then wrk through the balancer with a SIGKILL of
    replica 1 halfway through."""
    cluster = Cluster(2, model_dir, tmp)
    cluster.start()
    try:
        promoted = promotion_seconds(cluster, model_dir, tmp)
        url, pid = cluster.components["balancer"][0], cluster.components["replica-1"][1]
        killer = threading.Timer(args.duration / 2, lambda: os.killpg(pid, signal.SIGKILL))
        killer.start()
        run = S.run_wrk(url, scenario, args.connections, args.duration, tmp, "failover")
        killer.join()
        return {
            "promotion_seconds": round(promoted, 2),
            "requests": run.requests,
            "non_2xx": run.non_2xx,
            "socket_errors": run.errors,
            "rps": run.rps,
        }
    finally:
        cluster.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, default=ROOT / "backend" / "models" / "latest")
    ap.add_argument("--replicas", default="1,2,3", help="comma-separated replica counts")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-failover", dest="failover", action="store_false")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    users, _items = S.model_ids(args.model_dir)
    rng = random.Random(0)
    paths = [f"/recommendations/{u}?limit=10" for u in rng.sample(users, min(2000, len(users)))]
    scenario = S.Scenario("/recommendations", "GET", paths)
    results = {}
    with tempfile.TemporaryDirectory(prefix="cluster-bench-", dir="/tmp") as tmp_name:
        tmp = Path(tmp_name)
        Path(tmp).chmod(0o755)
        for n in [int(x) for x in args.replicas.split(",")]:
            print(f"{n} replica(s):", flush=True)
            cluster = Cluster(n, args.model_dir, tmp)
            cluster.start()
            try:
                results[n] = measure(cluster, scenario, args, tmp)
            finally:
                cluster.stop()
        fail = failover(args.model_dir, scenario, args, tmp) if args.failover else None
    base = results[min(results)]["rps"]
    print(f"\n{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, wrk c={args.connections}, "
          f"{args.duration:g} s x {args.rounds} rounds (median), model {args.model_dir}")  # fmt: skip
    print(
        "| replicas | req/s | ratio to 1 | p50 ms | p95 ms | p99 ms | CPU us/req: replicas | nginx | PostgreSQL | wrk |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, r in results.items():
        c = r["cpu_us"]
        print(f"| {n} | {r['rps']:,.0f} | {r['rps'] / base:.2f} | {r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} "
              f"| {c['replicas']:.0f} | {c['nginx']:.0f} | {c['postgres']:.0f} | {c['wrk']:.0f} |")  # fmt: skip
    if fail:
        print(f"\nSIGKILL of 1 of 2 replicas mid-run: {fail['non_2xx']} non-2xx and {fail['socket_errors']} "
              f"socket errors in {fail['requests']:,} requests ({fail['rps']:,.0f} req/s); a promotion reached "
              f"both replicas {fail['promotion_seconds']:.2f} s after promote --service-url <balancer>")  # fmt: skip
    print(json.dumps({"results": results, "failover": fail}))


if __name__ == "__main__":
    main()
