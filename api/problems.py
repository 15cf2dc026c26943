"""Building problem+json responses (RFC 9457) and documenting them in the OpenAPI schema."""

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.schemas.field_error import FieldError
from api.schemas.problem import PROBLEM_MEDIA_TYPE, DuplicateTicketProblem, Problem, ValidationProblem

TITLES: Mapping[str, str] = {
    "validation_error": "The request is invalid",
    "malformed_json": "The request body is not valid JSON",
    "bad_request": "The request cannot be processed",
    "unknown_owner": "The owner does not exist",
    "unauthorized": "Authentication required",
    "forbidden": "Not allowed for this API key",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "duplicate_ticket": "The ticket already exists",
    "conflict": "The request conflicts with the current state",
    "invalid_cursor": "The pagination cursor is invalid",
    "payload_too_large": "The request body is too large",
    "too_many_items": "Too many items in the batch",
    "promotion_refused": "The prompt version evaluated worse than the active one",
    "not_correctable": "The ticket has no triage answer yet",
    "no_active_prompt": "No prompt version is active",
    "unsupported_media_type": "Unsupported media type",
    "database_unavailable": "The database is unavailable",
    "internal_error": "Internal server error",
    "unsafe_webhook_target": "The webhook URL is not allowed",
    "invalid_webhook": "The webhook subscription is invalid",
    "webhooks_not_configured": "Webhooks are not configured",
}

_DESCRIPTIONS: Mapping[int, str] = {
    400: "Malformed request (e.g. `malformed_json`, `invalid_cursor`).",
    401: "No valid API key (`unauthorized`): send `Authorization: Bearer <key>`.",
    403: "The API key's role does not allow this (`forbidden`), e.g. an owner key on an admin route.",
    404: "Unknown id (`not_found`); another owner's ticket is reported the same way.",
    409: "Conflict (`duplicate_ticket`, with `existing_id`).",
    413: "Request too large (`payload_too_large`, or `too_many_items` for a batch).",
    422: "Validation failed (`validation_error`, `unknown_owner`); `errors` names each bad field.",
    500: "Unexpected failure (`internal_error`); quote the request id.",
    503: "The database is unavailable (`database_unavailable`); retry later.",
}

_MODELS: Mapping[int, type[Problem]] = {409: DuplicateTicketProblem, 422: ValidationProblem}


class ApiProblem(Exception):
    """Raised by a router to answer with a problem: status, code, detail and extension members."""

    def __init__(
        self, status: int, code: str, detail: str, *, headers: Mapping[str, str] | None = None, **extensions: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions


def problem_type(code: str) -> str:
    """The stable problem-type URI of a code."""
    return f"urn:ticket-triage:problem:{code}"


def problem_body(status: int, code: str, detail: str, *, instance: str, request_id: str | None) -> dict[str, Any]:
    """The RFC 9457 members of a problem."""
    return {
        "type": problem_type(code),
        "title": TITLES.get(code, "Error"),
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        "request_id": request_id,
    }


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json response for this request."""
    body = problem_body(status, code, detail, instance=request.url.path, request_id=request_id_of(request))
    body.update({k: _jsonable(v) for k, v in extensions.items()})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=dict(headers or {}))


def request_id_of(request: Request) -> str | None:
    """The id the request-context middleware gave this request."""
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def field_error(field: str, message: str, error_type: str) -> FieldError:
    """One entry of a problem's `errors`."""
    return FieldError(field=field, message=message, type=error_type)


def problem_responses(
    *statuses: int,
    models: Mapping[int, type[Problem]] | None = None,
    descriptions: Mapping[int, str] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries of these error statuses (the media type is set by `api.openapi`); `models`
    and `descriptions` replace the defaults of a route whose problem of a status differs (e.g. its 409)."""
    chosen = {**_MODELS, **(models or {})}
    described = {**_DESCRIPTIONS, **(descriptions or {})}
    return {status: {"model": chosen.get(status, Problem), "description": described[status]} for status in statuses}
