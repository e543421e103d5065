"""Served benchmark: `cytopenia-cds serve` and the floor under the same gunicorn settings, driven by wrk.

The request is the typical Synthea patient-view (`benchmarks.payloads`: Thanh Mosciski, 30 CBC
Observations up to his WBC nadir and 10 Conditions, all prefetched; dates moved so today is the nadir)
POSTed to cytopenia-review, which evaluates it, screens the cards against the patient's alert state and
writes the audit row (repeat window 0: every call is a first view and builds all its cards). Each call
names a different patient (`context.patientId` bench-N), as an EHR's concurrent calls do: calls for the
same patient take turns on that patient's alert state (`tests/test_concurrent_calls.py` covers that).
The floor (`benchmarks.floor`) parses the same body and answers no cards. For each configuration the
two alternate at 1, 4 and 16 connections, each step `LOAD_STEP_SECONDS`, for `LOAD_ROUNDS` rounds (ours
first in the first round, the floor first in the next: A B B A ...). Every ratio is taken within a round
(steps seconds apart, under the same load) and reported as the median of the rounds with their range: one
step of one server moves by tens of per cent with the machine's load, so a single round's ratio could
land either side of a target.

Configurations: dev mode + SQLite; dev mode + PostgreSQL + Redis (rate limiter); production mode
(an ES256-signed token with a fresh jti on every call, Redis replay cache and rate limiter) + SQLite;
production mode + PostgreSQL + Redis. PostgreSQL is 127.0.0.1:5432 database `test` (a schema of its
own, dropped after), Redis 127.0.0.1:6379 (a key prefix of its own, deleted after); a configuration
whose service is unreachable is skipped and says so.

`--soak`: 100,000 calls (dev mode, SQLite, 4 connections) and each worker's resident memory after
10,000 and after 100,000 calls. wrk runs on the same machine and takes CPU from the servers.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

from benchmarks.floor import URL
from benchmarks.payloads import SOURCE, moved_to, payloads
from tests.conftest import POSTGRES_URL, postgres_schema

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("CYTOPENIA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
GUNICORN_CONFIG = ROOT / "docker" / "gunicorn.conf.py"
CONCURRENCY = (1, 4, 16)
STEP_SECONDS = float(os.environ.get("LOAD_STEP_SECONDS", "3"))
ROUNDS = int(os.environ.get("LOAD_ROUNDS", "3"))
SOAK_REQUESTS, SOAK_FIRST = 100_000, 10_000
ISSUER = "https://ehr.bench.invalid"
PUBLIC_BASE_URL = "https://cds.bench.invalid"  # production requires https; wrk calls the same server on loopback
AUDIENCE = PUBLIC_BASE_URL + URL
TOKENS_PER_SECOND = 2_000  # more than ours answers here: a step never runs out of fresh jtis
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
WRK_SCRIPT = """
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
local body = f:read("*a")
f:close()
local head, tail = body:match('^(.-"patientId":")[^"]*(".*)$')
local tokens = {}
local sent = 0
local threads = 1
started = 0
function setup(thread)
  thread:set("id", started)
  started = started + 1
end
function init(args)
  threads = tonumber(os.getenv("BENCH_THREADS"))
  local path = os.getenv("BENCH_TOKENS")
  if path ~= nil and path ~= "" then
    for line in io.lines(path) do tokens[#tokens + 1] = line end
  end
end
function request()
  local n = id + sent * threads
  sent = sent + 1
  local headers = {["Content-Type"] = "application/json"}
  if #tokens > 0 then
    headers["Authorization"] = "Bearer " .. tokens[n % #tokens + 1]
  end
  return wrk.format("POST", nil, headers, head .. "bench-" .. n .. tail)
end
"""


@dataclass
class Step:
    server: str
    connections: int
    round: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class Configuration:
    name: str
    production: bool
    postgres: bool
    redis: bool
    steps: list[Step] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited during start-up:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not become ready:\n{log.read_text()[-3000:]}")


def worker_pids(master: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _ms(number: str, unit: str) -> float:
    return float(number) * UNITS_MS[unit]


def run_wrk(port: int, connections: int, seconds: float, body: Path, tokens: Path | None, folder: Path) -> Step:
    script = folder / "bench.lua"
    script.write_text(WRK_SCRIPT)
    threads = min(2, connections)
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_TOKENS": str(tokens or ""), "BENCH_THREADS": str(threads)}
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s"]
    output = subprocess.run(
        [*command, str(script), f"http://127.0.0.1:{port}{URL}"], capture_output=True, text=True, check=True, env=env
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+(?:us|ms|s))\s*$", output, re.M))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)

    def ms(text: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
        return _ms(number, unit)

    return Step(
        server="",
        connections=connections,
        round=0,
        requests=int(re.search(r"(\d+) requests in", output).group(1)),
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=ms(latency["50"]),
        p99_ms=ms(latency["99"]),
        errors=(int(bad.group(1)) if bad else 0) + (sum(int(n) for n in errors.groups()) if errors else 0),
    )


def _reachable_postgres() -> bool:
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(POSTGRES_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except sqlalchemy.exc.SQLAlchemyError:
        return False


def _reachable_redis() -> bool:
    import redis

    try:
        with redis.Redis.from_url(REDIS_URL, socket_timeout=2) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


@contextmanager
def redis_prefix() -> Iterator[str]:
    import redis

    prefix = f"cytopenia-bench-{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        with redis.Redis.from_url(REDIS_URL) as client:
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                client.delete(key)


class Tokens:
    """ES256 tokens as the registered EHR would sign them, a fresh jti on each."""

    def __init__(self, folder: Path):
        from tests.jwt_support import SigningKey, write_jwks

        self.key = SigningKey.generate("ES256")
        self.jwks = write_jwks(folder / "jwks.json", self.key)
        self.folder = folder

    def file(self, audience: str, count: int) -> Path:
        from tests.jwt_support import claims

        path = self.folder / f"tokens-{uuid.uuid4().hex[:8]}.txt"
        path.write_text("\n".join(self.key.mint(claims(aud=audience, iss=ISSUER)) for _ in range(count)) + "\n")
        return path


def start_ours(config: Configuration, port: int, workers: int, folder: Path, env: dict[str, str]) -> subprocess.Popen:
    command = [str(Path(sys.executable).parent / "cytopenia-cds"), "serve", "--port", str(port)]
    command += ["--workers", str(workers), "--gunicorn-config", str(GUNICORN_CONFIG)]
    if not config.production:
        command.append("--dev")
    log = folder / "ours.log"
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    wait_ready(port, server, log)
    return server


def start_floor(port: int, workers: int, folder: Path) -> subprocess.Popen:
    log = folder / "floor.log"
    command = [sys.executable, "-m", "benchmarks.floor", "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen(
        [*command, "--gunicorn-config", str(GUNICORN_CONFIG)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    wait_ready(port, server, log)
    return server


def _environment(config: Configuration, folder: Path, database_url: str, prefix: str, jwks: Path | None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYTOPENIA_")}
    env |= {
        "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics"),
        "CYTOPENIA_DATABASE_URL": database_url,
        "CYTOPENIA_REPEAT_WINDOW_HOURS": "0",
        "CYTOPENIA_RATE_LIMIT": "10000000 per minute",
        "CYTOPENIA_AUDIT_KEY": "benchmark-audit-key",
    }
    if config.redis:
        env |= {"CYTOPENIA_REDIS_URL": REDIS_URL, "CYTOPENIA_REDIS_KEY_PREFIX": prefix}
    if config.production:
        toml = folder / "cytopenia-cds.toml"
        toml.write_text(f'[[clients]]\nissuer = "{ISSUER}"\njwks_file = "{jwks}"\nalgorithms = ["ES256"]\n')
        env |= {"CYTOPENIA_CONFIG": str(toml), "CYTOPENIA_PUBLIC_BASE_URL": PUBLIC_BASE_URL}
    return env


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _check_cards(port: int, body: Path, tokens: Tokens | None) -> int:
    headers = {"Content-Type": "application/json"}
    if tokens:
        headers["Authorization"] = "Bearer " + tokens.file(AUDIENCE, 1).read_text().strip()
    response = requests.post(f"http://127.0.0.1:{port}{URL}", data=body.read_bytes(), headers=headers, timeout=30)
    if response.status_code != 200:
        raise SystemExit(f"the benchmark request got {response.status_code}: {response.text[:500]}")
    cards = len(response.json()["cards"])
    if cards == 0:  # a call that builds no cards skips most of the work: its figures would flatter us
        raise SystemExit("the benchmark request built no cards: check the payload's dates against the clock")
    return cards


def measure(config: Configuration, body: Path, workers: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="cytopenia-served-"))
    (folder / "metrics").mkdir()
    ours_port, floor_port = free_port(), free_port()
    tokens = Tokens(folder) if config.production else None
    with (
        postgres_schema("cytopenia_bench") if config.postgres else _sqlite(folder) as database_url,
        redis_prefix() if config.redis else _nothing() as prefix,
    ):
        env = _environment(config, folder, database_url, prefix, tokens.jwks if tokens else None)
        ours = start_ours(config, ours_port, workers, folder, env)
        floor = start_floor(floor_port, workers, folder)
        try:
            cards = _check_cards(ours_port, body, tokens)
            print(f"  {config.name}: {cards} cards per call", flush=True)
            servers = (("ours", ours_port, tokens), ("floor", floor_port, None))
            for round_ in range(ROUNDS):
                for connections in CONCURRENCY:
                    for server, port, server_tokens in servers if round_ % 2 == 0 else servers[::-1]:
                        step = _step(port, connections, server_tokens, body, folder)
                        step.server, step.round = server, round_
                        config.steps.append(step)
        finally:
            _stop(ours)
            _stop(floor)
            shutil.rmtree(folder, ignore_errors=True)


def _step(port: int, connections: int, tokens: Tokens | None, body: Path, folder: Path) -> Step:
    """A 1 s warm-up at this concurrency, then the measured step; each with its own fresh tokens."""
    count = math.ceil((STEP_SECONDS + 1) * TOKENS_PER_SECOND)
    run_wrk(port, connections, 1, body, tokens.file(AUDIENCE, count) if tokens else None, folder)
    return run_wrk(port, connections, STEP_SECONDS, body, tokens.file(AUDIENCE, count) if tokens else None, folder)


@contextmanager
def _sqlite(folder: Path) -> Iterator[str]:
    yield f"sqlite:///{folder / 'bench.sqlite3'}"


@contextmanager
def _nothing() -> Iterator[str]:
    yield ""


def _spread(values: list[float], digits: int = 2, scale: float = 1.0) -> tuple[str, str]:
    """The median and the range (low-high) of one figure over the rounds, as text."""
    scaled = [scale * v for v in values]
    return f"{statistics.median(scaled):.{digits}f}", f"{min(scaled):.{digits}f}-{max(scaled):.{digits}f}"


def report(config: Configuration) -> None:
    """Medians over the rounds; each ratio is taken within a round, then its median and range are printed."""
    rounds = sorted({s.round for s in config.steps})
    by = {(s.server, s.connections, s.round): s for s in config.steps}

    def series(server: str, connections: int, figure: str) -> list[float]:
        return [getattr(by[(server, connections, r)], figure) for r in rounds]

    def ratios(first: list[float], second: list[float]) -> list[float]:
        return [a / b for a, b in zip(first, second, strict=True)]

    def latency(server: str, connections: int) -> str:
        p50, p99 = (statistics.median(series(server, connections, f)) for f in ("p50_ms", "p99_ms"))
        return f"{p50:>8.1f}/{p99:<8.1f}"

    print(f"\n{config.name} ({len(rounds)} rounds: medians; ratios within each round, median and range)")
    print(
        f"{'conns':>5} {'ours req/s':>10} {'floor req/s':>11} {'% of floor (range)':>19} {'ours p50/p99 ms':>17} "
        f"{'floor p50/p99 ms':>17} {'errors':>7}"
    )
    for c in CONCURRENCY:
        ours, floor = series("ours", c, "rps"), series("floor", c, "rps")
        share, share_range = _spread(ratios(ours, floor), 0, 100)
        errors = sum(series("ours", c, "errors")) + sum(series("floor", c, "errors"))
        print(
            f"{c:>5} {statistics.median(ours):>10.0f} {statistics.median(floor):>11.0f} "
            f"{share + '% (' + share_range + ')':>19} "
            f"{latency('ours', c)} {latency('floor', c)} {errors:>7}"
        )
    at_16 = _spread(ratios(series("ours", 16, "rps"), series("floor", 16, "rps")), 0, 100)
    four_vs_one = _spread(ratios(series("ours", 4, "rps"), series("ours", 1, "rps")))
    p50_at_1 = _spread(ratios(series("ours", 1, "p50_ms"), series("floor", 1, "p50_ms")), 1)
    print(
        f"  at 16 connections {at_16[0]} % of the floor's req/s (rounds {at_16[1]} %; target >= 35 %); "
        f"4 vs 1 connection {four_vs_one[0]}x (rounds {four_vs_one[1]}; target >= 1.5x); "
        f"p50 at 1 connection {p50_at_1[0]}x the floor's (rounds {p50_at_1[1]}; target <= 3x)"
    )


def soak(body: Path, workers: int) -> None:
    """100,000 calls; RSS per worker after 10,000 and after 100,000 (target: growth <= 5 % per worker)."""
    config = Configuration("dev mode, SQLite", production=False, postgres=False, redis=False)
    folder = Path(tempfile.mkdtemp(prefix="cytopenia-soak-"))
    (folder / "metrics").mkdir()
    port = free_port()
    with _sqlite(folder) as database_url:
        server = start_ours(config, port, workers, folder, _environment(config, folder, database_url, "", None))
        try:
            sent, at_first, first_count = 0, None, 0
            rate = run_wrk(port, 4, 2, body, None, folder)
            sent += rate.requests
            for target in (SOAK_FIRST, SOAK_REQUESTS):
                while sent < target:
                    seconds = min(60.0, max(1.0, (target - sent) / max(rate.rps, 1.0)))
                    sent += run_wrk(port, 4, seconds, body, None, folder).requests
                memory = {pid: rss_mib(pid) for pid in worker_pids(server.pid)}
                rounded = {pid: round(mib, 1) for pid, mib in memory.items()}
                print(f"  after {sent:,} calls: worker RSS MiB {rounded}")
                if at_first is None:
                    at_first, first_count = memory, sent
            growth = {pid: 100 * (memory[pid] - at_first[pid]) / at_first[pid] for pid in memory if pid in at_first}
            print(
                f"  RSS growth per worker {first_count:,} -> {sent:,} calls: "
                + ", ".join(f"{g:+.1f} %" for g in growth.values())
                + " (target <= 5 %)"
            )
        finally:
            _stop(server)
            shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak", action="store_true", help="also run the 100,000-call memory soak (about 10 min)")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("served benchmark skipped: wrk is not installed (Debian package wrk)")
        return 1
    workers = int(os.environ.get("LOAD_WORKERS", "2"))
    bodies, as_of = payloads()
    folder = Path(tempfile.mkdtemp(prefix="cytopenia-body-"))
    body = folder / "typical.json"
    body.write_bytes(moved_to(bodies["typical"], as_of, datetime.now(UTC)))
    postgres, redis = _reachable_postgres(), _reachable_redis()
    configurations = [
        Configuration("dev mode, SQLite", production=False, postgres=False, redis=False),
        Configuration("dev mode, PostgreSQL + Redis", production=False, postgres=True, redis=True),
        Configuration("production mode (signed tokens, Redis replay cache), SQLite", True, False, True),
        Configuration("production mode (signed tokens, Redis replay cache), PostgreSQL + Redis", True, True, True),
    ]
    print(
        f"served: typical Synthea patient-view ({Path(SOURCE).name}, {body.stat().st_size // 1024} KiB) -> {URL}, "
        f"{workers} gunicorn workers each ({GUNICORN_CONFIG.relative_to(ROOT)}), wrk, {STEP_SECONDS:g} s per step, "
        f"{ROUNDS} rounds of ours and floor alternating (A B, then B A); {os.cpu_count()} CPUs shared with wrk; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    try:
        for config in configurations:
            if (config.postgres and not postgres) or (config.redis and not redis):
                print(
                    f"  {config.name}: skipped, {POSTGRES_URL if config.postgres and not postgres else REDIS_URL} "
                    "is not reachable"
                )
                continue
            measure(config, body, workers)
            report(config)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        if args.soak:
            print("\nsoak: dev mode, SQLite, 4 connections")
            soak(body, workers)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
