"""The JSON API fuzzed by schemathesis from its own OpenAPI description, against the app running
in its own process, as every role: no input it generates gets a server error (5xx)."""

from __future__ import annotations

import os

# Requests per operation and phase; the whole run is a few thousand requests per role.
MAX_EXAMPLES = int(os.environ.get("CC_FUZZ_EXAMPLES", "10"))


def test_the_description_is_for_signed_in_supervisors_only(served):
    anonymous = served.client()
    assert anonymous.get("/api/openapi.json").status_code == 401
    for public in ("/openapi.json", "/docs", "/redoc"):
        assert anonymous.get(public).status_code == 404
    seat, _ = served.login("seat1001")
    assert seat.get("/api/openapi.json").status_code == 403
    supervisor, _ = served.login("super")
    schema = supervisor.get("/api/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/orders" in paths and "/open311/v2/requests.{fmt}" in paths
    assert not [p for p in paths if not p.startswith(("/api/", "/open311/"))]


def test_no_server_error_for_any_role(served, tmp_path, web):
    supervisor, _ = served.login("super")
    schema = tmp_path / "openapi.json"
    schema.write_bytes(supervisor.get("/api/openapi.json").content)
    total, errors = 0, []
    for role, username in web.FUZZ_ROLES.items():
        headers = served.role_headers(username)
        workdir = tmp_path / role
        workdir.mkdir()
        run = web.run_fuzz(served.base_url, schema, headers, workdir, max_examples=MAX_EXAMPLES)
        assert run.requests > 0, run.output[-2000:]
        total += run.requests
        errors += [f"{role}: {e}" for e in run.server_errors]
    assert not errors, "\n".join(errors[:50])
    assert total >= 5000, total
