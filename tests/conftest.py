"""Shared fixtures: the app under test, and the real-world data in ../shared/fixtures."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cds_service.app import create_app
from cds_service.config import Settings
from cds_service.http.schemas import validator

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FIXTURES = Path(os.environ.get("CYTOPENIA_FIXTURES", ROOT.parent / "shared" / "fixtures"))
AS_OF = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)


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
        return create_app(Settings(**settings), clock=lambda: as_of)

    return factory


@pytest.fixture
def client(make_app):
    return make_app().test_client()


@pytest.fixture
def example_request() -> dict:
    return json.loads((EXAMPLES / "patient-view-neutropenia.json").read_text(encoding="utf-8"))
