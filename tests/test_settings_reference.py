"""The documented defaults are the model's: the settings page is generated and kept current."""

from __future__ import annotations

from pathlib import Path

from cds_service.config import ClientConfig, Deadlines, Settings, SmartAppConfig
from cds_service.settings_reference import MEANING, render

PAGE = Path(__file__).resolve().parent.parent / "docs" / "reference" / "settings.md"


def test_every_setting_has_a_meaning_and_no_meaning_outlives_its_setting():
    names = {
        *Settings.model_fields,
        *(f"clients.{n}" for n in ClientConfig.model_fields),
        *(f"deadlines.{n}" for n in Deadlines.model_fields),
        *(f"smart_app.{n}" for n in SmartAppConfig.model_fields),
    }
    assert set(MEANING) == names


def test_the_settings_page_is_current():
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "regenerate: python -m cds_service.settings_reference > docs/reference/settings.md"
    )
