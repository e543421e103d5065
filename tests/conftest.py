"""Shared fixtures: the app under test, and the real-world data in ../shared/fixtures."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy

from cds_service.app import create_app
from cds_service.config import Settings
from cds_service.http.schemas import validator

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FIXTURES = Path(os.environ.get("CYTOPENIA_FIXTURES", ROOT.parent / "shared" / "fixtures"))
AS_OF = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


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
    def factory(as_of: datetime = AS_OF, **settings):
        settings.setdefault("dev", True)
        settings.setdefault("database_url", "sqlite://")  # a fresh in-memory database per app
        settings.setdefault("audit_key", "test-audit-key")  # production refuses to start without one
        return create_app(Settings(**settings), clock=lambda: as_of)

    return factory


@pytest.fixture
def client(make_app):
    return make_app().test_client()


@pytest.fixture
def example_request() -> dict:
    return json.loads((EXAMPLES / "patient-view-neutropenia.json").read_text(encoding="utf-8"))


POSTGRES_URL = os.environ.get("CYTOPENIA_TEST_POSTGRES_URL", "postgresql+psycopg://127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database: a SQLite file, or a schema of its own on the machine's PostgreSQL (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cds.sqlite3'}"
        return
    schema = f"cytopenia_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sqlalchemy.exc.OperationalError as error:
        admin.dispose()
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable: {error.orig}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


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
