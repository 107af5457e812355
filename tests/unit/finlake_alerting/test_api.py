"""The alert service's silence API: clear problem+json 4xx answers, Alertmanager's spelling, the
real counts on DELETE."""

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
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "starts_at, ends_at and starts_at + duration must fall within years 1 to 9999 "
        "in UTC",
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


def test_alertmanager_spelt_silences_mean_what_they_say(make_service: MakeService) -> None:
    service = make_service("[{type: dashboard}]")
    client = TestClient(create_api(service))
    body = {
        "matchers": [{"name": "symbol", "value": "AAPL"},
                     {"name": "severity", "value": "crit.*", "isRegex": True, "isEqual": False}],
        "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z", "createdBy": "ops",
    }  # fmt: skip
    created = client.post("/api/v1/silences", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["matchers"][1] == {
        "name": "severity", "value": "crit.*", "is_regex": True, "is_equal": False,
    }  # fmt: skip
    assert created.json()["created_by"] == "ops"
    critical = alert(0, rule="r1", severity="critical")
    warning = alert(0, rule="r2", severity="warning")
    assert service.dispatch(critical, b"x", ("alerts", 0, 0)) > 0
    assert service.dispatch(warning, b"x", ("alerts", 0, 1)) == 0
    expired = client.delete(f"/api/v1/silences/{created.json()['id']}").json()
    assert expired["suppressed"] == 1


@pytest.mark.parametrize(
    ("matchers", "said"),
    [
        ([{"name": "symbol", "value": "AAPL", "is_equl": False}], "body.matchers.0.is_equl: Extra"),
        ([{"name": "sevrity", "value": "critical", "is_equal": False}], "silence every alert"),
        ([{"name": "symbol", "value": ".*", "is_regex": True}], "silence every alert"),
        ([{"name": "symbol", "value": "A{4294967296}", "is_regex": True}],
         "is not a regular expression"),
    ],
)  # fmt: skip
def test_a_silence_that_would_not_do_what_it_says_is_refused(
    make_service: MakeService, matchers: list[dict[str, object]], said: str
) -> None:
    client = TestClient(create_api(make_service("[{type: dashboard}]")))
    response = client.post("/api/v1/silences", json={"matchers": matchers, "duration": "1h"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert said in response.json()["detail"]
    assert client.get("/api/v1/silences").json() == []


def test_an_unknown_silence_is_a_problem_json_404(make_service: MakeService) -> None:
    client = TestClient(create_api(make_service("[{type: dashboard}]")))
    response = client.delete("/api/v1/silences/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "no silence nope"
