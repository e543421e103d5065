"""Helpers for tests that look inside the database the app writes to."""

from __future__ import annotations

from sqlalchemy import select

from tests.conftest import assert_valid


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
