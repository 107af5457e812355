"""The alert service's HTTP API: probes, metrics, and silences (created, listed, expired)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from finlake_alerting.service import AlertService
from finlake_alerting.silences import Silence, SilenceCreate, SilenceState

log = logging.getLogger(__name__)


class SilencePublic(Silence):
    """A silence as the API shows it, with its state now."""

    status: SilenceState


def _public(silence: Silence, now: datetime) -> SilencePublic:
    return SilencePublic(**silence.model_dump(), status=silence.state(now))


PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """An error answer (RFC 9457): one line, and for a malformed request each field's error."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries: these statuses answer with a Problem as problem+json."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        code: {"model": Problem, "description": HTTPStatus(code).phrase,
               "content": {PROBLEM_JSON: {"schema": schema}}}
        for code in codes
    }  # fmt: skip


def _problem(code: int, detail: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    body = Problem(title=HTTPStatus(code).phrase, status=code, detail=detail, errors=errors)
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=code, media_type=PROBLEM_JSON
    )


async def _invalid_request(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in error.errors()
    ]
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    return _problem(
        status.HTTP_422_UNPROCESSABLE_CONTENT, detail or "invalid request", jsonable_encoder(errors)
    )


async def _http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    return _problem(error.status_code, str(error.detail))


async def _unexpected(_: Request, error: Exception) -> JSONResponse:
    log.exception("alert service API: unexpected error", exc_info=error)
    return _problem(status.HTTP_500_INTERNAL_SERVER_ERROR, "unexpected error; see the service log")


def create_api(service: AlertService) -> FastAPI:
    """The ASGI app over a running (or starting) service."""
    app = FastAPI(title="finlake alert service", version="1.0.0")
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    silences = APIRouter(
        prefix="/api/v1/silences", tags=["silences"],
        responses=_problems(422),
    )  # fmt: skip

    @app.get("/healthz", tags=["probes"], responses={503: {"description": "The loop stalled."}})
    def healthz(response: Response) -> dict[str, str]:
        alive = service.is_alive()
        response.status_code = 200 if alive else 503
        return {"status": "ok" if alive else "stalled"}

    @app.get("/readyz", tags=["probes"], responses={503: {"description": "Not consuming yet."}})
    def readyz(response: Response) -> dict[str, str]:
        ready = service.is_consuming
        response.status_code = 200 if ready else 503
        return {"status": "ready" if ready else "not ready"}

    @app.get("/metrics", tags=["probes"], response_class=Response)
    def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/status", tags=["status"])
    def service_status() -> dict[str, Any]:
        return service.status()

    @silences.post("", status_code=status.HTTP_201_CREATED)
    def create_silence(request: SilenceCreate) -> SilencePublic:
        try:
            silence = service.add_silence(request)
        except ValueError as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
        return _public(silence, datetime.now(UTC))

    @silences.get("")
    def list_silences(
        state: Annotated[SilenceState | None, Query(description="Only this state.")] = None,
    ) -> list[SilencePublic]:
        now = datetime.now(UTC)
        found = [_public(s, now) for s in service.silences()]
        return [s for s in found if state is None or s.status is state]

    @silences.get("/{silence_id}", responses=_problems(404))
    def get_silence(silence_id: str) -> SilencePublic:
        for silence in service.silences():
            if silence.id == silence_id:
                return _public(silence, datetime.now(UTC))
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no silence {silence_id}")

    @silences.delete("/{silence_id}", responses=_problems(404))
    def expire_silence(silence_id: str) -> SilencePublic:
        silence = service.expire_silence(silence_id)
        if silence is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no silence {silence_id}")
        return _public(silence, datetime.now(UTC))

    app.include_router(silences)
    return app
