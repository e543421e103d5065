"""`cytopenia-cds serve` as a real gunicorn process on a free port, for tests that need the real server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

CLI = str(Path(sys.executable).with_name("cytopenia-cds"))
STARTUP_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(**settings: str) -> dict[str, str]:
    """The environment without the developer's CYTOPENIA_* settings, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYTOPENIA_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    return env | {f"CYTOPENIA_{name.upper()}": value for name, value in settings.items()}


class Server:
    """One server; `log` keeps everything it printed, so a failing assertion can show it."""

    def __init__(self, folder: Path, *args: str, workers: int = 2, **settings: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"server-{self.port}.log"
        self.workers_expected = workers
        settings.setdefault("database_url", f"sqlite:///{folder / 'cds.sqlite3'}")
        settings.setdefault("audit_key", "served-test")
        command = [CLI, "serve", "--port", str(self.port), "--workers", str(workers), *args]
        self.process = subprocess.Popen(
            command, env=clean_env(**settings), stdout=self.log.open("ab"), stderr=subprocess.STDOUT, cwd=folder
        )
        self.wait_until(lambda: self.answers("/healthz") and len(self.workers()) == workers, "server did not start")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def answers(self, path: str) -> bool:
        try:
            return requests.get(self.url + path, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def wait_until(self, condition, what: str, seconds: float = STARTUP_SECONDS) -> None:
        """Generous: polls until `condition()`; on failure shows the server's output."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"{what}; server output:\n{self.output()[-6000:]}")

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def production_settings(folder: Path, key, redis_url: str, prefix: str) -> dict[str, str]:
    """Production mode for `Server`: one EHR client signing with `key` (tests.jwt_support), Redis at `redis_url`."""
    from tests.jwt_support import BASE_URL, EHR_ISSUER, write_jwks

    client = {"issuer": EHR_ISSUER, "jwks_file": str(write_jwks(folder / "jwks.json", key)), "algorithms": ["ES384"]}
    return {
        "clients": json.dumps([client]),
        "public_base_url": BASE_URL,
        "redis_url": redis_url,
        "redis_key_prefix": prefix,
    }
