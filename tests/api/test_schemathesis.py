"""The OpenAPI document says what the API does: schemathesis fuzzes every operation of
the running server (real socket, SQLite, a marketing manager's key) and each answer must
be no server error, with a documented status, content type and body shape.

Bounded: a few examples per operation, derandomized so the run is the same each time,
the pipeline stages off (no campaign is actually mailed; single messages go to a local
SMTP sink), and nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 15


def _fuzz(operation: Any, mode: GenerationMode, session: requests.Session, base: str) -> Fuzzed:
    """Run one operation's examples in one generation mode; what it sent and what failed."""
    sent: list[int] = []
    failures: dict[str, str] = {}  # distinct failure -> the first request that showed it

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,  # the same run every time: a failure here is a regression
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report, don't minimise
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(base_url=base, session=session, timeout=10)
        sent.append(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                what = (
                    f"{case.operation.label} {mode.value}: {failure.title} ({response.status_code})"
                )
                failures.setdefault(what, f"{case.method} {case.formatted_path}")

    try:
        run()
    except Unsatisfiable:  # no parameters and no body: no wrong request to make
        assert mode is GenerationMode.NEGATIVE and not sent
    return Fuzzed(sent, failures)


@dataclass
class Fuzzed:
    statuses: list[int]
    failures: dict[str, str]


def test_every_answer_is_as_documented(live_api: tuple[str, str]) -> None:
    base, key = live_api
    api_schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")
    operations = [result.ok() for result in api_schema.get_all_operations()]
    # Deletions last, so the other operations also meet the seeded rows that exist.
    operations.sort(key=lambda operation: operation.method.upper() == "DELETE")
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    summary: dict[str, dict[str, Counter[int]]] = {}
    failures: dict[str, str] = {}
    started = time.monotonic()
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {key}"
        for operation in operations:
            summary[operation.label] = {}
            for mode in modes:
                fuzzed = _fuzz(operation, mode, session, base)
                summary[operation.label][mode.value] = Counter(fuzzed.statuses)
                failures.update(fuzzed.failures)
    took = time.monotonic() - started
    total = sum(sum(c.values()) for by_mode in summary.values() for c in by_mode.values())
    print(f"\nschemathesis: {len(operations)} operations, {total} requests in {took:.1f} s")
    for label, by_mode in summary.items():
        print(
            f"  {label}: " + "; ".join(f"{m} {dict(sorted(c.items()))}" for m, c in by_mode.items())
        )
    assert failures == {}, "\n".join(f"{k}: e.g. {v}" for k, v in sorted(failures.items()))
    # The run reached the API behind the key check: well-formed requests got past it.
    assert [
        label for label, by_mode in summary.items() if not set(by_mode["positive"]) - {401}
    ] == []
    assert len(operations) >= 21  # the routes of CONTRACT.md at least
