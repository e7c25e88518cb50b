"""Serving benchmark: one uvicorn worker on loopback, driven by wrk, impression logging on (``--no-impressions``: off, for comparison).

    PYTHONPATH=backend python benchmarks/serving.py                      # import ML-100K, train, measure
    PYTHONPATH=backend python benchmarks/serving.py --model-dir DIR      # reuse a trained model

Steps: (1) import MovieLens 100K into a scratch directory with ``app.data.movielens`` and train a
model with ``app.registry.train`` defaults (unless ``--model-dir``); (2) start ``python -m
app.service`` (uvicorn, uvloop + httptools, one worker) on 127.0.0.1 with a fresh SQLite database;
(3) for each endpoint and concurrency (1, 8, 64) run wrk for ``--duration`` seconds over many user
and item ids, and print requests/s and p50/p95/p99; (4) repeat the main endpoints on a synthetic
27,000-item model (random factors). Steps 3 and 4 go over every endpoint ``--rounds`` times (3); the
table and the verdicts are medians over the rounds, with the worst round's p95 beside them. wrk
comes from Debian's ``wrk`` package; without it an asyncio httpx load generator is used (much slower
client: the figures are then a lower bound).

The targets (2-core machine, concurrency 8): /recommendations p95 < 5 ms and >= 2,500 req/s
and >= 40% of /health's throughput in the same run; /recommend with filters, /similar, /popular
p95 < 5 ms; the 27k-item model p95 < 10 ms. MovieLens data and models stay outside the repository.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "backend"
sys.path.insert(0, str(BACKEND))

GENRES_ML100K = ["Action", "Adventure", "Comedy", "Drama", "Romance", "Sci-Fi", "Thriller", "Crime", "War"]
TARGETS = {  # endpoint -> p95 ms at concurrency 8
    "/recommendations": 5.0,
    "/recommend (filters)": 5.0,
    "/similar": 5.0,
    "/popular": 5.0,
    "/recommendations?engine=hybrid": 10.0,
}


@dataclass
class Run:
    model: str
    endpoint: str
    concurrency: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    non_2xx: int
    cpu_us: float = 0.0  # server process CPU time per request (user + system): holds up on a busy machine
    round: int = 0
    worst_p95_ms: float = 0.0  # in a summary row: the highest p95 of the rounds


# ----- model preparation -------------------------------------------------------------------------------------------
def env(backend: Path = BACKEND) -> dict[str, str]:
    """The environment for a child process that imports ``app`` from ``backend``."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(backend) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e.setdefault("OPENBLAS_NUM_THREADS", "1")
    e.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return e


def ml100k_source() -> Path:
    for c in (os.environ.get("ML100K_DIR"), ROOT.parent / "shared" / "datasets" / "ml-100k"):
        if c and (Path(c) / "u.data").is_file():
            return Path(c)
    sys.exit("MovieLens 100K not found: set ML100K_DIR or pass --model-dir")


def train_ml100k(work: Path) -> Path:
    """Import ML-100K and train with the CLI defaults (outputs under ``work``, never in the repository)."""
    data = work / "ml100k"
    model = work / "model-ml100k"
    if (model / "metadata.json").is_file():
        print(f"reusing {model}")
        return model
    py = sys.executable
    subprocess.run(
        [py, "-m", "app.data.movielens", "import", "--source", str(ml100k_source()), "--out", str(data)],
        check=True,
        env=env(),
        cwd=ROOT,
    )
    started = time.time()
    subprocess.run(
        [
            py,
            "-m",
            "app.registry.train",
            "--data-path",
            str(data / "interactions.jsonl"),
            "--items-path",
            str(data / "items.jsonl"),
            "--model-dir",
            str(model),
        ],
        check=True,
        env=env(),
        cwd=ROOT,
    )
    print(f"trained ML-100K model in {time.time() - started:.1f}s -> {model}")
    return model


def write_synthetic_model(path: Path, n_items: int, n_users: int, dim: int = 64, seed: int = 0) -> Path:
    """A model of ``n_items`` items with random factors and a power-law random history (for catalogue-size cost)."""
    import scipy.sparse as sp

    from app.model.artifacts import save_arrays_bundle

    if (path / "metadata.json").is_file():
        return path
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 120, size=n_users)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    pop /= pop.sum()
    rows = np.repeat(np.arange(n_users), lengths)
    cols = rng.choice(n_items, size=int(lengths.sum()), p=pop)
    hist = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n_users, n_items))
    hist.sum_duplicates()
    hist.data[:] = 1.0
    hist.sort_indices()
    item_ids = [str(i + 1) for i in range(n_items)]
    user_ids = [str(u + 1) for u in range(n_users)]
    genres = rng.integers(0, len(GENRES_ML100K), size=(n_items, 2))
    years = rng.integers(1930, 2024, size=n_items)
    catalogue = {
        iid: {
            "item_id": iid,
            "title": f"Synthetic item {iid}",
            "genres": sorted({GENRES_ML100K[g] for g in genres[i]}),
            "year": int(years[i]),
        }
        for i, iid in enumerate(item_ids)
    }
    factors = (rng.standard_normal((n_items, dim)) / np.sqrt(dim)).astype(np.float32)
    last_ts = 1_700_000_000 + rng.integers(0, 365 * 86_400, size=n_items)
    arrays = {
        "user_factors": np.zeros((n_users, dim), np.float32),
        "history_factors": (rng.standard_normal((n_items, dim)) / np.sqrt(dim)).astype(np.float32),
        "item_factors": factors,
        "item_bias": (rng.standard_normal(n_items) * 0.1).astype(np.float32),
        "history_indptr": hist.indptr.astype(np.int64),
        "history_indices": hist.indices.astype(np.int64),
        "history_data": hist.data.astype(np.float32),
        "item_popularity": np.diff(hist.tocsc().indptr).astype(np.float64),
        "item_avg_rating": np.where(rng.random(n_items) < 0.5, rng.uniform(1, 5, n_items), np.nan).astype(np.float32),
        "item_last_ts": last_ts.astype(np.int64),
    }
    save_arrays_bundle(
        path,
        arrays=arrays,
        user_ids=user_ids,
        item_ids=item_ids,
        catalogue=catalogue,
        version=f"synthetic-{n_items}",
        hyperparameters={"history_pooling": "sqrt", "embedding_dim": dim},
    )
    return path


# ----- server -----------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn in a subprocess, one worker, uvloop + httptools, access log off, impression logging on unless asked;
    ``backend``: the source tree to serve (another revision's, for an A/B)."""

    def __init__(self, model_dir: Path, data_dir: Path, log_impressions: bool = True, backend: Path = BACKEND):
        self.model_dir = model_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        e = env(backend)
        e.update(
            RECOMMENDER_MODEL_DIR=str(model_dir),
            RECOMMENDER_DATA_DIR=str(data_dir),
            RECOMMENDER_LOG_IMPRESSIONS=str(log_impressions).lower(),
            RECOMMENDER_MODEL_POLL_SECONDS="0",
        )
        e.pop("DATABASE_URL", None)
        e.pop("RECOMMENDER_DATABASE_URL", None)
        e.pop("RECOMMENDER_REGISTRY_DIR", None)
        self.log = open(data_dir / "server.log", "wb")
        # The service's own launcher (its connection limits), or plain uvicorn for a revision without one.
        if (Path(backend) / "app" / "service" / "__main__.py").is_file():
            command = ["app.service"]
        else:
            command = ["uvicorn", "app.service.api:app", "--loop", "uvloop", "--http", "httptools"]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                *command,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=e,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        started = time.monotonic()
        self.wait_ready()
        self.start_seconds = time.monotonic() - started  # process start to /ready and the hybrid lists built
        print(
            f"server for {model_dir.name}: ready in {self.start_seconds:.1f} s, RSS {self.rss_mb():.0f} MB", flush=True
        )

    def wait_ready(self, timeout: float = 600.0) -> dict:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                r = httpx.get(self.url + "/ready", timeout=2)
                # measured once the hybrid lists built in the background are in (as a service runs after warm-up)
                if r.status_code == 200 and r.json().get("hybrid_lists") != "building":
                    return r.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become ready")

    def rss_mb(self) -> float:
        """Resident memory of the server process (Linux /proc)."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0]) / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def drive(self, s: Scenario, concurrency: int, duration: float, tmp: Path, model: str, use_wrk: bool) -> Run:
        """One load run, with the server's CPU time per request."""
        cpu0 = self.cpu_seconds()
        run = (
            run_wrk(self.url, s, concurrency, duration, tmp, model)
            if use_wrk
            else run_httpx(self.url, s, concurrency, duration, model)
        )
        run.cpu_us = round((self.cpu_seconds() - cpu0) / max(1, run.requests) * 1e6, 1)
        return run

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# ----- load generation --------------------------------------------------------------------------------------------
@dataclass
class Scenario:
    name: str
    method: str
    paths: list[str]  # one is picked at random per request
    bodies: list[str] | None = None


def model_ids(model_dir: Path) -> tuple[list[str], list[str]]:
    meta = json.loads((Path(model_dir) / "metadata.json").read_text())
    return meta["user_ids"], meta["item_ids"]


def scenarios(
    info: dict, user_ids: list[str], item_ids: list[str], rng: random.Random, n: int = 2000
) -> list[Scenario]:
    """Requests over many user and item ids (up to ``n`` of each, drawn from the model's own ids)."""
    users = rng.sample(user_ids, min(n, len(user_ids)))
    items = rng.sample(item_ids, min(n, len(item_ids)))
    genres = [g for g in GENRES_ML100K if g in set(info.get("genres", []))] or info.get("genres", [])[:5]
    recommend = [
        json.dumps({"user_id": u, "k": 10, "genres": rng.sample(genres, 2), "year_min": 1970, "year_max": 1998})
        for u in users
    ]
    similar = [json.dumps({"item_id": i, "k": 10}) for i in items]
    popular = [
        f"/popular?k=10&genre={g}&year_min=1980" + ("&trending=true" if t else "") for g in genres for t in (0, 1)
    ]
    hybrid = (info.get("engines") or {}).get("hybrid") in ("ready", "fitted on first use")
    return [
        Scenario("/health", "GET", ["/health"]),
        Scenario("/recommendations", "GET", [f"/recommendations/{u}?limit=10" for u in users]),
        *(
            [
                Scenario(
                    "/recommendations?engine=hybrid",
                    "GET",
                    [f"/recommendations/{u}?limit=10&engine=hybrid" for u in users],
                )
            ]
            if hybrid
            else []
        ),
        Scenario("/recommend (filters)", "POST", ["/recommend"], recommend),
        Scenario("/similar", "POST", ["/similar"], similar),
        Scenario("/popular", "GET", popular),
    ]


def wrk_script(s: Scenario, path: Path) -> Path:
    lua_list = lambda xs: "{" + ",".join(json.dumps(x) for x in xs) + "}"  # noqa: E731 - JSON strings are Lua strings
    body = "nil" if s.bodies is None else "bodies[math.random(#bodies)]"
    path.write_text(f"""
local paths = {lua_list(s.paths)}
local bodies = {lua_list(s.bodies or [])}
local headers = {{}}
headers["Content-Type"] = "application/json"
math.randomseed(os.time())
request = function()
  return wrk.format("{s.method}", paths[math.random(#paths)], headers, {body})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
""")
    return path


def run_wrk(url: str, s: Scenario, concurrency: int, duration: float, tmp: Path, model: str) -> Run:
    script = wrk_script(s, tmp / f"bench-{abs(hash(s.name))}.lua")
    threads = 1  # one wrk thread drives >20k req/s; a second would take CPU from the server on 2 cores
    proc = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(concurrency),
            "-d",
            f"{max(1, round(duration))}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    out = proc.stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    n, dur_us, p50, p95, p99, errors, non2xx = (int(v) for v in line.split()[1:])
    secs = dur_us / 1e6
    return Run(
        model,
        s.name,
        concurrency,
        n,
        round(secs, 2),
        round(n / secs, 1),
        p50 / 1000,
        p95 / 1000,
        p99 / 1000,
        errors,
        non2xx,
    )


async def _httpx_load(url: str, s: Scenario, concurrency: int, duration: float) -> tuple[list[float], int, float]:
    import httpx

    latencies: list[float] = []
    bad = 0
    stop = time.perf_counter() + duration
    rng = random.Random(1)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal bad
        while time.perf_counter() < stop:
            path = rng.choice(s.paths)
            t0 = time.perf_counter()
            if s.method == "GET":
                r = await client.get(path)
            else:
                r = await client.post(
                    path, content=rng.choice(s.bodies or ["{}"]), headers={"content-type": "application/json"}
                )
            latencies.append(time.perf_counter() - t0)
            bad += r.status_code >= 300

    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return latencies, bad, time.perf_counter() - started


def run_httpx(url: str, s: Scenario, concurrency: int, duration: float, model: str) -> Run:
    lat, bad, secs = asyncio.run(_httpx_load(url, s, concurrency, duration))
    ms = np.asarray(lat) * 1000
    p50, p95, p99 = (float(np.percentile(ms, q)) for q in (50, 95, 99))
    return Run(
        model,
        s.name,
        concurrency,
        len(lat),
        round(secs, 2),
        round(len(lat) / secs, 1),
        round(p50, 3),
        round(p95, 3),
        round(p99, 3),
        0,
        bad,
    )


def measure(
    server: Server,
    model: str,
    concurrencies: list[int],
    duration: float,
    names: set[str] | None,
    use_wrk: bool,
    tmp: Path,
    rounds: int,
) -> list[Run]:
    """Every endpoint at every concurrency, ``rounds`` times over, in the same order each round.

    Why rounds: this machine's speed changes from minute to minute (the same /health run varies up to
    2x), so one run per endpoint says as much about the minute as about the endpoint. /health and
    /recommendations run back to back in each round, so their ratio compares the same minute."""
    import httpx

    info = httpx.get(server.url + "/ready").json()
    users, items = model_ids(server.model_dir)
    chosen = [s for s in scenarios(info, users, items, random.Random(7)) if names is None or s.name in names]
    for s in chosen:  # warm-up (lazy paths, caches), not measured
        for p in s.paths[:20]:
            if s.method == "GET":
                httpx.get(server.url + p)
            else:
                httpx.post(
                    server.url + p, content=(s.bodies or ["{}"])[0], headers={"content-type": "application/json"}
                )
    runs = []
    for r in range(1, rounds + 1):
        for c in concurrencies:
            for s in chosen:
                run = server.drive(s, c, duration, tmp, model, use_wrk)
                run.round = r
                runs.append(run)
                print(f"  round {r} {describe(run)}", flush=True)
    return runs


def describe(run: Run) -> str:
    """One run as a progress line."""
    return (
        f"{run.model:<10} {run.endpoint:<22} c={run.concurrency:<3} {run.rps:>9.1f} req/s  p50 {run.p50_ms:6.2f}  "
        f"p95 {run.p95_ms:6.2f}  p99 {run.p99_ms:6.2f} ms  cpu {run.cpu_us:6.0f} us/req  "
        f"errors {run.errors} non-2xx {run.non_2xx}"
    )


def summarise(runs: list[Run]) -> list[Run]:
    """One row per (model, endpoint, concurrency): the median of each figure over the rounds, and the worst p95."""
    groups: dict[tuple[str, str, int], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.model, r.endpoint, r.concurrency), []).append(r)
    out = []
    for (model, endpoint, c), rs in groups.items():

        def med(f: str, rs: list[Run] = rs) -> float:
            return float(np.median([getattr(r, f) for r in rs]))

        out.append(
            Run(
                model,
                endpoint,
                c,
                sum(r.requests for r in rs),
                round(sum(r.seconds for r in rs), 2),
                round(med("rps"), 1),
                med("p50_ms"),
                med("p95_ms"),
                med("p99_ms"),
                sum(r.errors for r in rs),
                sum(r.non_2xx for r in rs),
                round(med("cpu_us"), 1),
                0,
                max(r.p95_ms for r in rs),
            )
        )
    return out


def round_ratios(runs: list[Run]) -> list[float]:
    """/recommendations over /health throughput at c=8 on ML-100K, one per round (back-to-back runs)."""
    at8 = {(r.round, r.endpoint): r.rps for r in runs if r.model == "ml-100k" and r.concurrency == 8}
    rounds = sorted({rnd for rnd, _ in at8})
    return [
        at8[(rnd, "/recommendations")] / at8[(rnd, "/health")]
        for rnd in rounds
        if (rnd, "/recommendations") in at8 and (rnd, "/health") in at8
    ]


def table(summary: list[Run]) -> str:
    lines = [
        "| model | endpoint | concurrency | req/s | p50 ms | p95 ms | worst p95 ms | p99 ms | server CPU us/req | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in summary:
        lines.append(
            f"| {r.model} | {r.endpoint} | {r.concurrency} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p95_ms:.2f} | "
            f"{r.worst_p95_ms:.2f} | {r.p99_ms:.2f} | {r.cpu_us:.0f} | {r.errors + r.non_2xx} |"
        )
    return "\n".join(lines)


def verdicts(summary: list[Run], synthetic: bool, ratios: list[float]) -> list[str]:
    """PASS/FAIL per target, on the medians over the rounds (the worst round's p95 is shown beside)."""
    at8 = {(r.model, r.endpoint): r for r in summary if r.concurrency == 8}
    out = []
    if ratios:
        med = float(np.median(ratios))
        out.append(
            f"/recommendations / /health throughput at c=8, back to back in each round: median {med:.0%} "
            f"(rounds: {', '.join(f'{r:.0%}' for r in ratios)}) (target >= 40%) {'PASS' if med >= 0.40 else 'FAIL'}"
        )
    health, recs = at8.get(("ml-100k", "/health")), at8.get(("ml-100k", "/recommendations"))
    if health and recs:
        out.append(
            f"/recommendations at c=8: {recs.rps:,.0f} req/s (target >= 2,500) {'PASS' if recs.rps >= 2500 else 'FAIL'}"
        )
        if recs.cpu_us and health.cpu_us:
            out.append(
                f"server CPU per request at c=8: /health {health.cpu_us:.0f} us, /recommendations {recs.cpu_us:.0f} us "
                f"-> CPU-bound throughput ratio {health.cpu_us / recs.cpu_us:.0%}, /recommendations capacity "
                f"{1e6 / recs.cpu_us:,.0f} req/s per free core"
            )
    for name, limit in TARGETS.items():
        r = at8.get(("ml-100k", name))
        if r:
            out.append(
                f"{name} p95 at c=8: {r.p95_ms:.2f} ms, worst round {r.worst_p95_ms:.2f} (target < {limit:g}) "
                f"{'PASS' if r.p95_ms < limit else 'FAIL'}"
            )
    if synthetic:
        for (model, name), r in sorted(at8.items()):
            if model.startswith("synthetic") and name != "/health":
                out.append(
                    f"{model} {name} p95 at c=8: {r.p95_ms:.2f} ms, worst round {r.worst_p95_ms:.2f} (target < 10) "
                    f"{'PASS' if r.p95_ms < 10 else 'FAIL'}"
                )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model-dir", type=Path, help="serve this model instead of training one on ML-100K")
    p.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "serving-bench",
        help="scratch directory (imported data, trained and synthetic models, databases)",
    )
    p.add_argument("--duration", type=int, default=5, help="seconds per endpoint and concurrency")
    p.add_argument("--concurrency", default="1,8,64", help="comma-separated connection counts")
    p.add_argument(
        "--synthetic-items", type=int, default=27_000, help="catalogue size of the synthetic model (0: skip)"
    )
    p.add_argument("--synthetic-users", type=int, default=20_000)
    p.add_argument("--load-generator", choices=("auto", "wrk", "httpx"), default="auto")
    p.add_argument(
        "--no-impressions", action="store_true", help="serve with impression logging off (the targets assume it on)"
    )
    p.add_argument(
        "--rounds", type=int, default=3, help="measure every endpoint this many times; figures are medians over rounds"
    )
    p.add_argument("--json", type=Path, help="also write the runs as JSON here")
    args = p.parse_args(argv)

    use_wrk = args.load_generator == "wrk" or (args.load_generator == "auto" and shutil.which("wrk") is not None)
    if args.load_generator == "wrk" and shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk (or --load-generator httpx)")
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    model_dir = args.model_dir or train_ml100k(work)
    print(
        f"load generator: {'wrk' if use_wrk else 'httpx (asyncio)'}; {args.duration:g}s per run; cpus: {os.cpu_count()}"
    )

    runs: list[Run] = []
    with tempfile.TemporaryDirectory(dir=work) as tmp_name:
        tmp = Path(tmp_name)
        server = Server(model_dir, tmp / "db-ml100k", not args.no_impressions)
        try:
            runs += measure(server, "ml-100k", concurrencies, args.duration, None, use_wrk, tmp, args.rounds)
        finally:
            server.stop()
        if args.synthetic_items:
            synth = write_synthetic_model(
                work / f"model-synthetic-{args.synthetic_items}-{args.synthetic_users}u",
                args.synthetic_items,
                args.synthetic_users,
            )
            server = Server(synth, tmp / "db-synthetic", not args.no_impressions)
            try:
                runs += measure(
                    server,
                    f"synthetic-{args.synthetic_items // 1000}k",
                    [8],
                    args.duration,
                    {"/health", "/recommendations", "/recommend (filters)", "/similar", "/popular"},
                    use_wrk,
                    tmp,
                    args.rounds,
                )
                print(f"synthetic model server after the runs: RSS {server.rss_mb():.0f} MB", flush=True)
            finally:
                server.stop()

    cmd = "PYTHONPATH=backend python benchmarks/serving.py " + " ".join(argv if argv is not None else sys.argv[1:])
    summary, ratios = summarise(runs), round_ratios(runs)
    print(f"\nmedians over {args.rounds} round(s) of {args.duration:g} s runs\n" + table(summary))
    print("\n" + "\n".join(verdicts(summary, bool(args.synthetic_items), ratios)))
    if not use_wrk:
        print("note: the httpx load generator is the bottleneck (Python client); the targets assume wrk")
    print(f"\ncommand: {cmd.strip()}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"runs": [asdict(r) for r in runs], "summary": [asdict(r) for r in summary], "ratios": ratios}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
