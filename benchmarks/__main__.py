"""`make bench`: the service against the floor, in process and served, with ratios that tell the truth.

1. In process (Flask test client): patient-view to cytopenia-review with the typical and the large
   Synthea payload (`benchmarks.payloads`), ours and the floor (`benchmarks.floor`) alternating call by
   call (A B A B), so both see the same machine load; p50/p95 and the ratio to the floor.
2. Start-up of the command-line tools: `benchmarks.startup`.
3. The fallback path (nothing prefetched, the real FHIR engine): `benchmarks.fallback`.
4. Served under gunicorn with wrk, four configurations: `benchmarks.served`.

`python -m benchmarks --soak` adds the 100,000-call memory soak. The default run takes about 5 minutes.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
from flask import Flask

from benchmarks import fallback, served, startup
from benchmarks.floor import URL, floor_app
from benchmarks.payloads import SOURCE, payloads
from cds_service.app import create_app
from cds_service.config import Settings
from cds_service.serving import settle_heap

WARMUP, RUNS = 30, 300
TARGET_RATIO = {"typical": 8.0, "large": 3.0}  # p50 as a multiple of the floor's (issue 14)
TARGET_RSS_MB = 200


def _timed(client, body: bytes) -> tuple[float, float]:
    """(wall-clock ms, this thread's CPU ms): CPU time barely moves with the machine's load, wall time does."""
    start, cpu = time.perf_counter(), time.thread_time()
    response = client.post(URL, data=body, content_type="application/json")
    elapsed, used = (time.perf_counter() - start) * 1000, (time.thread_time() - cpu) * 1000
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return elapsed, used


def interleaved(ours: Flask, floor: Flask, body: bytes) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """A B A B: one call to ours, one to the floor, RUNS times after WARMUP of each."""
    a, b = ours.test_client(), floor.test_client()
    for _ in range(WARMUP):
        _timed(a, body), _timed(b, body)
    pairs = [(_timed(a, body), _timed(b, body)) for _ in range(RUNS)]
    return [x for x, _ in pairs], [y for _, y in pairs]


def p(timings: list[float], q: int) -> float:
    return statistics.quantiles(timings, n=100, method="inclusive")[q - 1]


def in_process() -> bool:
    """True when every target is met."""
    bodies, as_of = payloads()
    # The default store on a fresh file; repeat window 0 so every call pays for building and auditing
    # its cards, as a first view of the chart does (a held-back repeat is cheaper).
    database = Path(tempfile.mkdtemp(prefix="cytopenia-bench-")) / "bench.sqlite3"
    settings = Settings(
        dev=True, database_url=f"sqlite:///{database}", repeat_window_hours=0, rate_limit="1000000 per minute"
    )
    service = create_app(settings, clock=lambda: as_of)
    floor = floor_app(settings)
    settle_heap()  # as `cytopenia-cds serve` and the served floor do before their workers start
    print(
        f"in process: patient-view {Path(SOURCE).name} -> {URL}, SQLite, dev mode, {RUNS} calls each after "
        f"{WARMUP} warm-up, ours and floor alternating, evaluated as of {as_of:%Y-%m-%d}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"{'payload':<8} {'KiB':>5} {'ours p50':>9} {'ours p95':>9} {'floor p50':>10} {'floor p95':>10} {'x floor':>8}"
    )
    met = True
    for name, body in bodies.items():
        cards = len(
            orjson.loads(service.test_client().post(URL, data=body, content_type="application/json").data)["cards"]
        )
        if cards == 0:  # a call that builds no cards skips most of the work: its figures would flatter us
            sys.exit(f"the {name} benchmark request built no cards")
        ours_both, base_both = interleaved(service, floor, body)
        ours, base = [wall for wall, _ in ours_both], [wall for wall, _ in base_both]
        cpu_ours, cpu_base = (statistics.median(cpu for _, cpu in both) for both in (ours_both, base_both))
        ratio = p(ours, 50) / p(base, 50)
        met &= ratio <= TARGET_RATIO[name]
        print(
            f"{name:<8} {len(body) / 1024:>5.0f} {p(ours, 50):>9.2f} {p(ours, 95):>9.2f} {p(base, 50):>10.2f} "
            f"{p(base, 95):>10.2f} {ratio:>8.1f} {cpu_ours:>9.2f}/{cpu_base:<8.2f} {cpu_ours / cpu_base:>8.1f}"
            f"  (target p50 <= {TARGET_RATIO[name]:g}x: "
            f"{'met' if ratio <= TARGET_RATIO[name] else 'MISSED'}; {cards} cards)"
        )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    met &= rss_mb <= TARGET_RSS_MB
    print(f"peak RSS {rss_mb:.0f} MB (target <= {TARGET_RSS_MB} MB: {'met' if rss_mb <= TARGET_RSS_MB else 'MISSED'})")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description="cytopenia-cds benchmarks (make bench)")
    parser.add_argument("--soak", action="store_true", help="add the 100,000-call memory soak (about 10 more minutes)")
    args = parser.parse_args()
    met = in_process()
    print()
    startup.main()
    print()
    fallback.main()
    print()
    served.main(["--soak"] if args.soak else [])
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
