"""Helpers for tests that look inside the database the app writes to."""
from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from cds_service.app import create_app
from cds_service.config import Settings
from tests.conftest import AS_OF, assert_valid


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


def rows(app, table) -> list:
    with app.extensions["cytopenia.store"].engine.connect() as connection:
        return list(connection.execute(select(table)))


def cards_for(client, request: dict) -> list[dict]:
    response = client.post("/cds-services/cytopenia-review", json=request)
    assert response.status_code == 200, response.get_data(as_text=True)
    document = response.get_json()
    assert_valid("response", document)
    return document["cards"]


def summaries(cards: list[dict]) -> list[str]:
    return [card["summary"].split(":")[0] for card in cards]
