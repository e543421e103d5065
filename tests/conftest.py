"""Shared fixtures: the app under test, and the real-world data in ../shared/fixtures."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import sqlalchemy

from cds_service import hooks
from cds_service.app import create_app
from cds_service.config import Settings
from cds_service.hooks.service import CdsService
from cds_service.http.schemas import validator
from cds_service.storage import Store
from cds_service.storage.engine import upgrade

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FIXTURES = Path(os.environ.get("CYTOPENIA_FIXTURES", ROOT.parent / "shared" / "fixtures"))
AS_OF = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
# How long a real server may take to start: generous, because a loaded 2-core machine starts gunicorn
# and its workers slowly. Waiting is not measuring; a start that fails prints the server's output.
SERVER_START_S = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(
    url: str,
    process: subprocess.Popen,
    output: Callable[[], str],
    ready: Callable[[requests.Response], bool] = lambda response: True,
) -> None:
    """Poll `url` until it answers (and `ready` says so); fail with the server's output if it exits or never does."""
    deadline = time.monotonic() + SERVER_START_S
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode} before serving {url}:\n{output()}")
        try:
            if ready(requests.get(url, timeout=2)):
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the server did not serve {url} within {SERVER_START_S} s:\n{output()}")
        time.sleep(0.1)


DATA_HOME = pytest.StashKey[str]()


def pytest_configure(config):
    """A test that leaves `database_url` at its default writes to a throw-away data directory, never to
    the developer's own (`$XDG_DATA_HOME/cytopenia-cds`) or the working tree; servers started by tests
    inherit it."""
    config.stash[DATA_HOME] = os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="cytopenia-test-data-")


def pytest_unconfigure(config):
    shutil.rmtree(config.stash[DATA_HOME], ignore_errors=True)


def load_fixture(relative: str) -> dict:
    path = FIXTURES / relative
    if not path.exists():
        pytest.fail(f"fixture {path} is missing: set CYTOPENIA_FIXTURES to the shared fixtures folder")
    return json.loads(path.read_text(encoding="utf-8"))


def assert_valid(schema: str, document: dict) -> None:
    errors = sorted(validator(schema).iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors]


@pytest.fixture
def make_app():
    def factory(as_of: datetime = AS_OF, services: tuple[CdsService, ...] = hooks.SERVICES, **settings):
        settings.setdefault("dev", True)
        settings.setdefault("database_url", "sqlite://")  # a fresh in-memory database per app
        settings.setdefault("audit_key", "test-audit-key")  # production refuses to start without one
        return create_app(Settings(**settings), clock=lambda: as_of, services=services)

    return factory


@pytest.fixture
def client(make_app):
    return make_app().test_client()


@pytest.fixture
def example_request() -> dict:
    return json.loads((EXAMPLES / "patient-view-neutropenia.json").read_text(encoding="utf-8"))


POSTGRES_URL = os.environ.get("CYTOPENIA_TEST_POSTGRES_URL", "postgresql+psycopg://127.0.0.1:5432/test")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test-fast` runs `-m "not slow"`: real servers and the corpus are slow by nature."""
    for item in items:
        if item.get_closest_marker("server") or item.get_closest_marker("corpus"):
            item.add_marker(pytest.mark.slow)


@contextmanager
def postgres_schema(prefix: str = "cytopenia_test") -> Iterator[str]:
    """A URL for a fresh schema of its own on the machine's PostgreSQL, dropped on exit."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sqlalchemy.exc.OperationalError:
        admin.dispose()
        raise
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def database_url(request, tmp_path):
    """An empty database: a SQLite file, or a schema of its own on the machine's PostgreSQL (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cds.sqlite3'}"
        return
    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_schema())
        except sqlalchemy.exc.OperationalError as error:
            pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable: {error.orig}")
        yield url


class Clock:
    """A clock the test moves forward, shared by the app and the assertions."""

    def __init__(self, now: datetime = AS_OF):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(database_url, clock):
    application = create_app(Settings(dev=True, database_url=database_url, audit_key="test-key"), clock=clock)
    yield application
    application.extensions["cytopenia.store"].engine.dispose()


@pytest.fixture
def sqlite_store(tmp_path) -> Iterator[Store]:
    """The store on a fresh SQLite file, at the newest schema."""
    store = Store(f"sqlite:///{tmp_path / 'cds.sqlite3'}")
    upgrade(store.engine)
    yield store
    store.engine.dispose()
