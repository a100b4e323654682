"""Property-based run of the OpenAPI schema (schemathesis) against the real server.

Every operation gets generated schema-valid requests (positive mode) and schema-invalid ones
(negative mode), with a channel key and an officer token so authorised paths are exercised too
(the Open311 form's ``api_key`` included), and every answer goes through all of schemathesis'
checks: no 5xx, only documented status codes, headers and content types, bodies matching the
documented schemas, invalid data never accepted, valid data accepted, 405 with ``Allow``. The
seed is fixed, so CI is repeatable.

The exceptions a schema cannot express: a schema-valid point (or an Open311 address) outside
Jakarta is rightly refused (422 on the native API, 400 on Open311, "outside Jakarta" / "could not
be located"), and so is an export range whose end is before its start or more than a year on
(400); for such an answer, and only for it, "valid data is accepted" is not checked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from intake.bench import issue_key, running_server, twin_command
from tests.intake.conftest import KEL_A

CREDENTIALS: dict[str, str] = {}


@pytest.fixture(scope="module")
def live_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import subprocess

    from tests.synthetic import write_city

    root = tmp_path_factory.mktemp("fuzz")
    data = write_city(root / "data")
    url = f"sqlite:///{root / 'fuzz.db'}"
    CREDENTIALS["key"] = issue_key(url)
    CREDENTIALS["officer"] = subprocess.run(
        twin_command("officers", "add", "--kelurahan", KEL_A, "--role", "coordinator", "--database-url", url, "--data", str(data)),
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    with running_server(url, data_dir=str(data)) as (base, _):
        yield schemathesis.openapi.from_url(f"{base}/openapi.json")


OUTSIDE_JAKARTA = ("lies outside Jakarta", "address_string could not be located")
BAD_RANGE = ("is before since", "spans more than a year")  # relations between two dates
EXAMPLES = 100  # per operation and mode


def outside_jakarta(response: Any) -> bool:
    """The documented exception: a point (or address) that no kelurahan of Jakarta handles."""
    return response.status_code in (400, 422) and any(t in response.text for t in OUTSIDE_JAKARTA)


def bad_range(response: Any) -> bool:
    """The documented exception of the export: a reversed range, or one over a year."""
    return response.status_code == 400 and any(t in response.text for t in BAD_RANGE)


def endless(operation: Any) -> bool:
    """An event stream (text/event-stream) never ends: it cannot be fuzzed case by case
    (tests/intake/test_events.py tests it)."""
    responses = operation.definition.raw.get("responses", {})
    return "text/event-stream" in responses.get("200", {}).get("content", {})


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_the_server_keeps_its_contract(
    live_schema: Any, mode: GenerationMode, record_property: Any
) -> None:
    """Each operation: `EXAMPLES` generated cases (fixed seed), every answer as the schema says.

    Driven through hypothesis directly (schemathesis' pytest plugin does not support pytest 9).
    """
    from hypothesis import given

    headers = {"X-API-Key": CREDENTIALS["key"], "Authorization": f"Bearer {CREDENTIALS['officer']}"}
    failures: list[str] = []
    operations = [
        op for op in (result.ok() for result in live_schema.get_all_operations()) if not endless(op)
    ]
    assert len(operations) >= 15
    fuzzed = 0
    cases = 0

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            nonlocal cases
            cases += 1
            for fields in (case.query, case.body):
                if isinstance(fields, dict) and isinstance(fields.get("api_key"), str):
                    fields["api_key"] = CREDENTIALS["key"]
            generated = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
            # credentials, unless the case's headers are the invalid part (e.g. a missing token)
            sent = None if generated and generated.mode.is_negative else headers
            try:
                response = case.call(headers=sent, timeout=30)
                excusable = outside_jakarta(response) or bad_range(response)
                excused = [positive_data_acceptance] if excusable else []
                case.validate_response(response, headers=sent, excluded_checks=excused)
            except BaseException as exc:  # schemathesis raises a group of check failures
                failures.append(f"{case.method} {case.formatted_path}: {str(exc)[:400]}")

        try:
            fuzz()
            fuzzed += 1
        except Unsatisfiable:  # negative mode: nothing to make invalid (no parameters)
            assert mode is GenerationMode.NEGATIVE
    assert fuzzed >= 10
    record_property("schemathesis_cases", cases)
    logging.getLogger(__name__).info("schemathesis %s: %d cases", mode.value, cases)
    assert cases >= 10 * EXAMPLES
    assert not failures, failures[:5]
