"""Start-up cost of the command-line tools an integrator runs by hand, against `python -c pass`.

`config check` imports the settings model, the knowledge tables and only the checks the
configuration needs; `evaluate` builds the whole app, because it answers through the same HTTP path
as `serve`. Each command runs RUNS times in a fresh process; the median wall time is reported.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).with_name("cytopenia-cds"))
RUNS = 5


def _median_seconds(command: list[str], env: dict[str, str]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(command, env=env, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="cytopenia-startup-"))
    config = folder / "dev.toml"
    config.write_text("dev = true\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYTOPENIA_")} | {"XDG_DATA_HOME": str(folder)}
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "cytopenia-cds config check": [CLI, "config", "check", "--config", str(config)],
        "cytopenia-cds evaluate": [
            CLI,
            "evaluate",
            str(ROOT / "examples" / "patient-view-neutropenia.json"),
            "--as-of",
            "2026-11-20T10:00:00Z",
        ],
    }
    print(f"start-up, median of {RUNS} fresh processes")
    floor = None
    for name, command in commands.items():
        seconds = _median_seconds(command, env)
        floor = floor or seconds
        print(f"{name:<28} {seconds * 1000:>7.0f} ms  ({seconds / floor:.0f} x python -c pass)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
