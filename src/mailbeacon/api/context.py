"""What a request handler can reach: settings, the database, the token signer.

One instance per process, built by `mailbeacon.app` and kept on `app.state.services`.
Packages that add long-lived things (the recorder, the live event feed) hang them on
`extras` under their own package name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.tokens import Signer


@dataclass
class Services:
    settings: Settings
    db: Database
    signer: Signer
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            signer=Signer(settings.secret_keys),
        )
