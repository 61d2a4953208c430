"""docs/reference/settings.md is generated from the Settings class, and the committed page matches it."""

from __future__ import annotations

from pathlib import Path

from service.settings import Settings, reference

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "settings.md"


def test_the_committed_settings_reference_is_what_the_settings_class_generates() -> None:
    assert PAGE.read_text(encoding="utf-8") == reference(), (
        "docs/reference/settings.md is stale: python -m service.settings > docs/reference/settings.md"
    )


def test_every_setting_is_in_the_reference_with_its_default_and_a_description() -> None:
    page = reference()
    for name, field in Settings.model_fields.items():
        assert field.description, f"Settings.{name} has no description"
        row = next(line for line in page.splitlines() if line.startswith(f"| `SERVICE_{name.upper()}` |"))
        assert field.description in row
    assert "| `SERVICE_MAX_BATCH_SIZE` | `32` | >= 1, <= 1024 |" in page
    assert "| `SERVICE_LOG_LEVEL` | `info` | `debug`, `info`, `warning`, `error` |" in page
