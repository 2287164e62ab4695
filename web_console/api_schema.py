"""The OpenAPI description of the JSON API, for signed-in supervisors only.

The public documentation routes of FastAPI stay off (``app.py``): the description names every
route, so it is not for strangers. It covers the console's JSON API (``/api/…``) and Open311;
the test suite fuzzes the running app from it with schemathesis, as every role.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from web_console.deps import CurrentAccount, protected_router

router = protected_router()

SCHEMA_PATH = "/api/openapi.json"
DESCRIBED_PREFIXES = ("/api/", "/open311/")


def json_api_schema(full: dict[str, Any]) -> dict[str, Any]:
    """The app's OpenAPI document cut to the JSON API's paths."""
    paths = {
        path: item
        for path, item in full.get("paths", {}).items()
        if path.startswith(DESCRIBED_PREFIXES) and path != SCHEMA_PATH
    }
    return {**full, "paths": paths}


@router.get(SCHEMA_PATH, include_in_schema=False)
def openapi_schema(request: Request, account: CurrentAccount) -> JSONResponse:
    return JSONResponse(json_api_schema(request.app.openapi()), headers={"Cache-Control": "no-store"})
