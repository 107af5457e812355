"""The alert service's silence API: clear 422s for bad dates, the real counts on DELETE."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from finlake_alerting.api import create_api
from tests.unit.finlake_alerting.conftest import MakeService
from tests.unit.finlake_alerting.events import alert

AAPL = [{"name": "symbol", "value": "AAPL"}]


@pytest.mark.parametrize(
    "body",
    [
        {"matchers": AAPL, "starts_at": "9999-12-31T00:00:00Z", "duration": "2d"},
        {"matchers": AAPL, "ends_at": "9999-12-31T23:00:00-05:00"},
        {"matchers": AAPL, "starts_at": "9990-01-01T00:00:00Z", "duration": "3660d"},
    ],
)
def test_a_silence_past_the_last_representable_date_is_a_clear_422(
    make_service: MakeService, body: dict[str, object]
) -> None:
    client = TestClient(create_api(make_service("[{type: dashboard}]")))
    response = client.post("/api/v1/silences", json=body)
    assert response.status_code == 422
    assert response.json() == {
        "detail": "starts_at, ends_at and starts_at + duration must fall within years 1 to 9999 "
        "in UTC"
    }


def test_expiring_a_silence_answers_with_how_many_events_it_suppressed(
    make_service: MakeService,
) -> None:
    service = make_service("[{type: dashboard}]")
    client = TestClient(create_api(service))
    created = client.post("/api/v1/silences", json={"matchers": AAPL, "duration": "1h"})
    silence_id = created.json()["id"]
    for n in range(3):
        assert service.dispatch(alert(n, rule="r"), b"x", ("alerts", 0, n)) == 0
    expired = client.delete(f"/api/v1/silences/{silence_id}").json()
    assert (expired["status"], expired["suppressed"]) == ("expired", 3)


def test_a_malformed_request_is_a_one_line_422_naming_the_field(make_service: MakeService) -> None:
    client = TestClient(create_api(make_service("[{type: dashboard}]")))
    response = client.post("/api/v1/silences", json={"matchers": AAPL, "duration": "soon"})
    assert response.status_code == 422
    body = response.json()
    assert body["detail"].startswith("body.duration: "), body
    assert [error["loc"] for error in body["errors"]] == [["body", "duration"]]
    listed = client.get("/api/v1/silences", params={"state": "asleep"})
    assert listed.status_code == 422
    assert listed.json()["detail"].startswith("query.state: ")
