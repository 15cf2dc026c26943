"""Exception handlers: every domain, validation, HTTP and database error becomes a problem+json response."""

import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.problems import ApiProblem, field_error, problem_response
from api.schemas.field_error import FieldError
from triage_pipeline.domain.exceptions import (
    DomainError,
    DuplicateTicket,
    Forbidden,
    InvalidCursor,
    InvalidPrompt,
    InvalidWebhook,
    NotFound,
    PromotionRefused,
    Unauthenticated,
    UnknownLabel,
    UnsafeWebhookTarget,
    WebhooksNotConfigured,
)

logger = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_S = 5

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})
_BODY_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's detail for an undecodable body

DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def validation_errors(errors: Sequence[Any], *, in_request: bool = True, root: str = "body") -> list[FieldError]:
    """Pydantic / FastAPI errors as field errors.

    With `in_request`, the leading location (body, query, path) is dropped from each path; an error
    about the whole body or item is reported on `root`.
    """
    result = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        where = root
        if in_request and len(loc) > 1 and loc[0] in _LOCATIONS:
            where, loc = loc[0], loc[1:]  # a nameless field (e.g. the query `?=x`) is named by its location
        field = ".".join(loc) if any(loc) else where
        result.append(field_error(field, str(error.get("msg", "invalid")), str(error.get("type"))))
    return result


async def _api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(request, exc.status, exc.code, exc.detail, headers=exc.headers, **exc.extensions)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    malformed = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if malformed is not None:
        reason = (malformed.get("ctx") or {}).get("error", "invalid JSON")
        position = malformed.get("loc", ("body", "?"))[-1]
        return problem_response(
            request, 400, "malformed_json", f"The request body is not valid JSON: {reason} at position {position}."
        )
    fields = validation_errors(errors)
    names = ", ".join(dict.fromkeys(f.field for f in fields))
    return problem_response(
        request, 422, "validation_error", f"{len(fields)} validation error(s): {names}.", errors=fields
    )


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    detail = str(exc.detail)
    if exc.status_code == 400 and detail == _BODY_PARSE_ERROR:
        code, detail = "malformed_json", "The request body could not be decoded as UTF-8 JSON."
    elif exc.status_code == 404:
        detail = f"No resource at {request.url.path}."
    return problem_response(request, exc.status_code, code, detail, headers=exc.headers)


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NotFound)
    return problem_response(request, 404, exc.code, str(exc), entity=exc.entity)


async def _duplicate_ticket(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DuplicateTicket)
    headers = {"Location": f"/tickets/{exc.existing_id}"} if exc.existing_id is not None else None
    return problem_response(request, 409, exc.code, str(exc), headers=headers, existing_id=exc.existing_id)


async def _invalid_cursor(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidCursor)
    return problem_response(request, 400, exc.code, "The cursor is malformed or was not issued by this service.")


async def _promotion_refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PromotionRefused)
    return problem_response(request, 409, exc.code, str(exc), comparisons=exc.comparisons)


async def _unprocessable(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    field = exc.field if isinstance(exc, UnknownLabel) else "body"
    return problem_response(request, 422, exc.code, str(exc), errors=[field_error(field, str(exc), exc.code)])


async def _webhook_refused(request: Request, exc: Exception) -> JSONResponse:
    """A refused URL (`url`) or subscription (`event_types`): 422 naming the field, with the policy's reason."""
    assert isinstance(exc, UnsafeWebhookTarget | InvalidWebhook)
    return problem_response(
        request,
        422,
        exc.code,
        str(exc),
        errors=[field_error(exc.field, str(exc), exc.code)],
    )


async def _webhooks_not_configured(request: Request, exc: Exception) -> JSONResponse:
    """The operator's fix goes to the log; the caller learns only that the service lacks its key (no retry helps)."""
    assert isinstance(exc, WebhooksNotConfigured)
    logger.warning(
        "webhook signing is not configured", extra={"fields": {"path": request.url.path, "reason": str(exc)}}
    )
    return problem_response(
        request,
        503,
        exc.code,
        "Webhooks are not configured on this service: its operator must set WEBHOOK_SECRETS_KEY.",
    )


async def _unauthenticated(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Unauthenticated)
    logger.info("request not authenticated", extra={"fields": {"path": request.url.path}})
    return problem_response(
        request,
        401,
        exc.code,
        "Send a valid API key as `Authorization: Bearer <key>`.",
        headers={"WWW-Authenticate": 'Bearer realm="ticket-triage"'},
    )


async def _forbidden(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Forbidden)
    return problem_response(request, 403, exc.code, f"This API key may not {exc.action}.")


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem_response(request, 409, exc.code, str(exc))


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning(
        "database unavailable",
        extra={"fields": {"error_class": type(exc).__name__, "path": request.url.path}},
    )
    return problem_response(
        request,
        503,
        "database_unavailable",
        "The database is unavailable; retry later.",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler; what none handles becomes a 500 in `api.middleware`."""
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(DuplicateTicket, _duplicate_ticket)
    app.add_exception_handler(InvalidCursor, _invalid_cursor)
    app.add_exception_handler(PromotionRefused, _promotion_refused)
    app.add_exception_handler(Unauthenticated, _unauthenticated)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(UnknownLabel, _unprocessable)
    app.add_exception_handler(InvalidPrompt, _unprocessable)
    app.add_exception_handler(UnsafeWebhookTarget, _webhook_refused)
    app.add_exception_handler(InvalidWebhook, _webhook_refused)
    app.add_exception_handler(WebhooksNotConfigured, _webhooks_not_configured)
    app.add_exception_handler(DomainError, _domain_error)
    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, _database_unavailable)
