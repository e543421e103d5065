"""How `cytopenia-cds serve` runs the app under gunicorn: workers, timeouts, metrics across processes."""

from __future__ import annotations

import gc
import math
import os
import runpy
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cds_service.config import Settings
from cds_service.observability.gunicorn_logs import logconfig_dict

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a container's CPU quota (cgroup v2)."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def prepare_metrics_directory() -> str:
    """Prometheus multiprocess mode needs one shared, empty directory per server run, set before import.
    Only the gunicorn master creates and cleans it (see `metrics_directory`)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="cytopenia-metrics-")
    Path(directory).mkdir(parents=True, exist_ok=True)
    for stale in Path(directory).glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return directory


def _worker_exited(server: Any, worker: Any) -> None:
    """In the master, whichever way a worker went: its files stay (counters keep their counts), marked dead."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def gunicorn_options(settings: Settings, config_file: str | None = None) -> dict[str, Any]:
    """Built-in defaults, then the site's gunicorn config file, then bind and workers from our settings."""
    options: dict[str, Any] = {
        "workers": available_cpus(),
        # Threads overlap the waits of a call (FHIR reads, the database); the worker reads each request
        # whole in its event loop first, so slow or stalled clients hold no thread (cds_service/worker.py).
        "worker_class": "cds_service.worker.WholeRequestWorker",
        "threads": 4,
        "preload_app": True,  # tables load once in the master; workers share them copy-on-write
        "timeout": max(30, math.ceil(2 * settings.deadlines.request_seconds)),
        "graceful_timeout": 10,
        "keepalive": 5,
        "accesslog": None,  # the app writes one JSON line per request instead
        "logconfig_dict": logconfig_dict(settings.log_level),  # gunicorn's own lines as JSON too
        "control_socket_disable": True,  # gunicorn >= 27: the socket needs a writable home directory
        "child_exit": _worker_exited,
    }
    if Path("/dev/shm").is_dir():
        options["worker_tmp_dir"] = "/dev/shm"
    if config_file:
        options.update({k: v for k, v in runpy.run_path(config_file).items() if not k.startswith("_")})
    options["bind"] = f"{settings.host}:{settings.port}"
    if settings.workers:
        options["workers"] = settings.workers
    return options


@contextmanager
def metrics_directory() -> Iterator[str]:
    """The metrics folder for one server run, removed when the master leaves. Forked workers leave through
    the same stack (gunicorn ends them with SystemExit): they must not remove what the others still write to."""
    directory = prepare_metrics_directory()
    master = os.getpid()
    try:
        yield directory
    finally:
        if os.getpid() == master:
            remove_metrics_directory(directory)


def remove_metrics_directory(directory: str) -> None:
    """Undo `prepare_metrics_directory`: the temporary directory and the variable that points at it."""
    if directory.startswith(tempfile.gettempdir()) and Path(directory).name.startswith("cytopenia-metrics-"):
        shutil.rmtree(directory, ignore_errors=True)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR") == directory:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def settle_heap() -> None:
    """Move everything built at start (the app, its validated knowledge, pydantic models) out of the
    garbage collector's sight. Requests allocate many short-lived containers; each full collection
    would otherwise walk the whole start-up heap again (measured: 1-16 ms per large call, varying
    with when it fires). Frozen before the fork, those pages also stay shared between workers."""
    gc.collect()
    gc.freeze()


def run(app: Any, options: dict[str, Any]) -> None:
    """Serve a WSGI app under gunicorn with these options (`gunicorn_options`), until it is stopped."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            for name, value in options.items():
                if name in self.cfg.settings:
                    self.cfg.set(name, value)

        def load(self) -> Any:
            return app

    settle_heap()
    Server().run()
