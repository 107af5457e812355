"""Errors as RFC 9457 application/problem+json: domain errors mapped to HTTP once, here."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from finlake.errors import FinlakeError, UnavailableError
from finlake.query import CatalogUnavailableError, LakeStorageUnavailableError
from finlake_query_api.errors import (
    FeedUnavailableError,
    InvalidCursorError,
    InvalidRangeError,
    LakeUnavailableError,
    ModelRegistryUnavailableError,
    NotAuthenticatedError,
    NotPermittedError,
    RateLimitedError,
    UnknownSymbolError,
)  # fmt: skip
from finlake_query_api.schemas import Problem

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_S = 5  # what a 503 asks a client to wait: the lake polls, the feed retries, in seconds
STATUS_OF: dict[type[FinlakeError], int] = {
    UnknownSymbolError: 404,
    InvalidRangeError: 400,
    InvalidCursorError: 400,
    NotAuthenticatedError: 401,
    NotPermittedError: 403,
    RateLimitedError: 429,
    LakeUnavailableError: 503,
    CatalogUnavailableError: 503,
    LakeStorageUnavailableError: 503,
    FeedUnavailableError: 503,
    ModelRegistryUnavailableError: 503,
}
_SCHEMA = {"$ref": "#/components/schemas/Problem"}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries of problem+json answers with these statuses."""
    return {
        status: {"model": Problem, "description": HTTPStatus(status).phrase,
                 "content": {PROBLEM_JSON: {"schema": _SCHEMA}}}
        for status in statuses
    }  # fmt: skip


PROBLEMS = problem_responses(400, 401, 404, 422, 429, 503)


def problem(
    request: Request, status: int, detail: str, headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:  # fmt: skip
    """A problem+json response."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
            "detail": detail, "instance": request.url.path, **extra}  # fmt: skip
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def _domain_error(request: Request, error: Exception) -> JSONResponse:
    status = next((code for kind, code in STATUS_OF.items() if isinstance(error, kind)), 500)
    headers = {}
    if isinstance(error, RateLimitedError):
        headers["Retry-After"] = str(error.retry_after_s)
    if isinstance(error, NotAuthenticatedError):
        headers["WWW-Authenticate"] = 'ApiKey header="X-API-Key"'
    if status == 500:
        log.error("unmapped finlake error: %s", error)
        return problem(request, 500, "internal error")
    if isinstance(error, UnavailableError):  # the cause names hosts, users, paths: logs only
        if str(error) != error.public:
            log.warning("%s %s: %s", request.method, request.url.path, error)
        return problem(request, status, error.public, {"Retry-After": str(RETRY_AFTER_S)})
    return problem(request, status, str(error), headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in error.errors()
    ]
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    return problem(request, 422, detail or "invalid request", errors=jsonable_encoder(errors))


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    return problem(request, error.status_code, str(error.detail), dict(error.headers or {}))


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error on %s", request.url.path, exc_info=error)
    return problem(request, 500, "internal error")


def install_problem_handlers(app: FastAPI) -> None:
    """Every error the app answers with is problem+json."""
    app.add_exception_handler(FinlakeError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
