"""Compose tests are pure: settings and a signer, no database (so no engine matrix)."""

from __future__ import annotations

from typing import Any

import pytest

from mailbeacon.compose import Instrumented, Options, Recipient, instrument
from mailbeacon.compose.tracking import Tracker
from mailbeacon.settings import Settings
from mailbeacon.tokens import Signer

BASE = "https://t.example.com"
ANN = Recipient(id=42, email="ann@example.com", first_name="Ann", last_name="Lee")


@pytest.fixture
def settings() -> Settings:
    """Overrides the database-backed fixture of tests/conftest.py."""
    return Settings(base_url=BASE, secret_keys=(("k1", b"compose-test-key"),))


@pytest.fixture
def signer(settings: Settings) -> Signer:
    return Signer(settings.secret_keys)


@pytest.fixture
def tracker(signer: Signer) -> Tracker:
    return Tracker(base_url=BASE, signer=signer, company_id=1, message_id=7, lead_id=42)


@pytest.fixture
def compose(settings: Settings, signer: Signer) -> Any:
    """instrument() for Ann, message 7 of company 1."""

    def run(html: str, text: str | None = None, **options: Any) -> Instrumented:
        return instrument(
            subject="Hello {{first_name}}",
            html=html,
            text=text,
            recipient=ANN,
            message_id=7,
            company_id=1,
            signer=signer,
            settings=settings,
            options=Options(**options),
        )

    return run
