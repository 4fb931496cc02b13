"""schemathesis against the app's own /openapi.json, on each backend: whatever it sends to
each operation (valid, invalid, absurd), the answer is never a 5xx.

(schemathesis's pytest plugin does not run under pytest 9, so the operations are walked here
and each one's strategy is given to hypothesis directly.)
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from queuectl.api.app import create_app

schemathesis = pytest.importorskip("schemathesis")

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = {"sqlite": 25, "postgres": 10}  # per operation; 21 operations


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_no_operation_answers_a_server_error(target: str, backend: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = create_app(target, TOKEN)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    errors: list[str] = []
    calls = 0
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    try:
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES[backend],
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def call(case: Any) -> None:
                nonlocal calls
                calls += 1
                response = case.call(headers=AUTH)
                if response.status_code >= 500:
                    errors.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code} "
                        f"{response.text[:200]}\n  {case.as_curl_command()}"
                    )

            call()
    finally:
        app.state.queue.close()
    print(f"{backend}: {calls} requests to {len(operations)} operations")
    assert calls >= 10 * (len(operations) - 1)  # /api/health takes no input: one example
    assert not errors, "\n".join(errors[:10])


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_lookups_with_a_nul_byte_are_refused_not_server_errors(target: str) -> None:
    """PostgreSQL text cannot hold NUL: a lookup of such an id is invalid input, not a 503."""
    from fastapi.testclient import TestClient

    with TestClient(create_app(target, TOKEN), base_url="http://127.0.0.1") as client:
        for method, path in [
            ("GET", "/api/jobs/x%00"),
            ("GET", "/api/jobs/x%00/output"),
            ("GET", "/api/jobs?queue=x%00"),
            ("POST", "/api/jobs/x%00/cancel"),
            ("DELETE", "/api/schedules/x%00"),
            ("POST", "/api/queues/x%00/pause"),
        ]:
            response = client.request(method, path, headers=AUTH)
            assert response.status_code in (200, 404, 422), (method, path, response.text)
