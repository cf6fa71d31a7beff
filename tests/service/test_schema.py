"""The service's OpenAPI schema, fuzzed with schemathesis against a real server.

Every operation of the live ``/openapi.json`` gets a bounded, derandomized number of
schemathesis cases, valid ones (positive) and invalid ones (negative), sent with a valid
API key. No answer may be a 5xx, every answer must be one the schema describes (status,
content type, body), and every error must be the service's JSON error envelope.

schemathesis' own pytest loader (``schemathesis.pytest.from_fixture``) does not run on
pytest 9.2 (it sets ``Node._nodeid``, which pytest no longer has), so each operation's
cases come from its public strategy, ``APIOperation.as_strategy``, under ``@given``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from service_proc import ALICE, Service, service

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {ALICE['key']}"}
# Every operation the schema holds (checked below, so that a new one is not left out).
# The events stream is fuzzed too: fuzzed ids name no job, so it answers 404 at once (a
# job's stream would last until the job ends; the timeout bounds even that).
OPERATIONS = [
    ("GET", "/v1/health"),
    ("GET", "/v1/ready"),
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs"),
    ("GET", "/v1/jobs/{job_id}"),
    ("DELETE", "/v1/jobs/{job_id}"),
    ("GET", "/v1/jobs/{job_id}/events"),
    ("GET", "/v1/jobs/{job_id}/artifacts/{fmt}"),
    ("POST", "/v1/jobs/{job_id}/cancel"),
]
# Health and readiness take no parameters: there is nothing to make invalid.
NEGATIVE = [op for op in OPERATIONS if "{" in op[1] or op[1] == "/v1/jobs"]
EXAMPLES = 25


def error_envelope(ctx: object, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every error answer is ``{"error": {"type", "message"}}`` as JSON, no traceback."""
    if response.status_code < 400:
        return
    assert response.headers["content-type"] == ["application/json"], response.headers
    body = json.loads(response.content)
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}, body
    assert "Traceback" not in response.content.decode(), body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with service(tmp_path_factory.mktemp("service")) as s:
        yield s


@pytest.fixture(scope="module")
def api_schema(server: Service) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def test_the_schema_holds_these_operations(api_schema: schemathesis.BaseSchema) -> None:
    found = set()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        found.add((operation.method.upper(), operation.path))
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [
        pytest.param(*op, GenerationMode.POSITIVE, id=f"{' '.join(op)} positive")
        for op in OPERATIONS
    ]
    + [
        pytest.param(*op, GenerationMode.NEGATIVE, id=f"{' '.join(op)} negative")
        for op in NEGATIVE
    ],
)
def test_no_answer_is_a_server_error_or_undocumented(
    api_schema: schemathesis.BaseSchema,
    server: Service,
    session: requests.Session,
    method: str,
    path: str,
    mode: GenerationMode,
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(
            session=session,
            headers=AUTH,
            checks=[not_a_server_error, response_schema_conformance, error_envelope],
            timeout=10,
        )

    fuzz()
