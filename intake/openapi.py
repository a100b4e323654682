"""The published contract: FastAPI's generated OpenAPI, corrected to the errors this API sends.

FastAPI documents a 422 carrying its own list of validation errors on every operation with
parameters. This service answers every error as one readable line (``{"detail": "..."}``, see
`intake.main`) and, on Open311 paths, as the specification's error list with 400 (Open311 knows
no 422). A client generated from the schema, or a contract fuzzer, must see what is really sent.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from intake.models import Message

ERROR_MESSAGE = {**Message.model_json_schema(), "title": "ErrorMessage"}
OPEN311_ERRORS = {
    "title": "Open311Errors",
    "type": "array",
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
}
FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
RATE_LIMITED = {
    "description": "rate limit (failed authentications, or new reports): retry after Retry-After",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
}


def corrected_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, built once, with the error responses this API really sends."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in FASTAPI_VALIDATION:
        schemas.pop(name, None)
    schemas["ErrorMessage"] = ERROR_MESSAGE
    schemas["Open311Errors"] = OPEN311_ERRORS
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if operation.get("security") or (method == "post" and "requests" in path):
                operation["responses"].setdefault("429", RATE_LIMITED)
            _correct_errors(operation, open311=path.startswith("/open311/"))
    app.openapi_schema = spec
    return spec


def _correct_errors(operation: dict[str, Any], *, open311: bool) -> None:
    responses = operation["responses"]
    takes_input = bool(operation.get("parameters") or operation.get("requestBody"))
    validation = responses.pop("422", None)
    if takes_input:
        responses.setdefault("400", {"description": "malformed request"})
        if not open311:
            described = validation and validation.get("description") != "Validation Error"
            responses["422"] = {
                "description": validation["description"] if described else "invalid field"
            }
    if open311:
        content = {
            "application/json": {"schema": {"$ref": "#/components/schemas/Open311Errors"}},
            "text/xml": {"schema": {"type": "string"}},  # what a .xml path answers
        }
        for status, response in responses.items():
            if status.startswith("2"):  # a .xml path answers its documents in XML too
                response.setdefault("content", {}).setdefault(
                    "text/xml", {"schema": {"type": "string"}}
                )
    else:
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorMessage"}}}
    for status, response in responses.items():
        if status.startswith("4") or status == "503":
            response = responses[status] = dict(response)  # RATE_LIMITED is shared
            response["content"] = content
