from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from finlake.errors import ConfigurationError
from finlake_query_api.alert_feed import AlertFeed, AlertItem
from finlake_query_api.config import Settings, hash_api_key
from finlake_query_api.main import create_app
from tests.unit.finlake_query_api.lake_data import NOW

ITEM = {
    "event_id": "r-AAPL-1", "rule": "r", "kind": "price_cross", "symbol": "AAPL",
    "severity": "critical", "window_start": "2026-03-02T14:30:00Z",
    "window_end": "2026-03-02T14:31:00Z", "fired_at": "2026-03-02T14:31:00Z", "value": 201.5,
    "threshold": 200.0, "message": "AAPL crossed above 200", "labels": {"team": "desk"},
}  # fmt: skip


def test_posted_alerts_are_listed_newest_first_and_duplicates_ignored(client: TestClient) -> None:
    second = {**ITEM, "event_id": "r-AAPL-2", "fired_at": "2026-03-02T14:32:00Z"}
    first = client.post("/v1/alerts/events", json={"events": [ITEM, second]})
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 2, "duplicates": 0}
    again = client.post("/v1/alerts/events", json={"events": [ITEM]})
    assert again.json() == {"accepted": 0, "duplicates": 1}
    listed = client.get("/v1/alerts").json()["alerts"]
    assert [a["event_id"] for a in listed[:2]] == ["r-AAPL-2", "r-AAPL-1"]
    since = client.get("/v1/alerts", params={"since": "2026-03-02T14:31:30Z"}).json()["alerts"]
    assert [a["event_id"] for a in since] == ["r-AAPL-2"]


def test_posting_needs_a_key_and_a_valid_event(client: TestClient) -> None:
    no_key = client.post("/v1/alerts/events", json={"events": [ITEM]}, headers={"X-API-Key": ""})
    assert no_key.status_code == 401
    bad = client.post("/v1/alerts/events", json={"events": [{**ITEM, "value": "high"}]})
    assert bad.status_code == 422
    assert "value" in bad.json()["detail"]


@pytest.mark.parametrize("event_id", ["x\n\ndata: {}", "x\ry", "two words", "tab\there"])
def test_an_event_id_that_would_break_the_stream_s_id_line_is_a_422(
    client: TestClient, event_id: str
) -> None:
    posted = client.post("/v1/alerts/events", json={"events": [{**ITEM, "event_id": event_id}]})
    assert posted.status_code == 422, posted.text
    assert "event_id" in posted.json()["detail"]
    assert event_id not in [
        alert["event_id"] for alert in client.get("/v1/alerts").json()["alerts"]
    ]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("field", ["value", "threshold"])
def test_a_number_json_cannot_carry_is_a_422_problem(
    client: TestClient, field: str, number: str
) -> None:
    # Python's json (the API's parser) reads these tokens; a feed item must not hold them.
    item = json.dumps({**ITEM, "event_id": f"nan-{field}-{number}", field: 0.0})
    body = '{"events": [' + item.replace(f'"{field}": 0.0', f'"{field}": {number}') + "]}"
    posted = client.post(
        "/v1/alerts/events", content=body, headers={"content-type": "application/json"}
    )
    assert posted.status_code == 422, posted.text
    assert posted.headers["content-type"] == "application/problem+json"
    assert field in posted.json()["detail"]
    listed = client.get("/v1/alerts").json()["alerts"]
    assert f"nan-{field}-{number}" not in [alert["event_id"] for alert in listed]


def test_only_a_publishing_key_may_post_alerts(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    reader, publisher, hashed = "reading-key-0123456789", "alert-service-key-01234", "other-0123456"
    secret = tmp_path / "dashboard-key"
    secret.write_text(f"{publisher}\n")  # the alert service's Secret, made from a file
    settings = make_settings(
        api_keys=[reader], publisher_keys=[], publisher_keys_file=secret,
        publisher_key_hashes=[hash_api_key(hashed).upper()],
    )  # fmt: skip
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        refused = client.post(
            "/v1/alerts/events", json={"events": [ITEM]}, headers={"X-API-Key": reader}
        )
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        assert "may read but not publish alerts" in refused.json()["detail"]
        assert client.get("/v1/alerts", headers={"X-API-Key": reader}).json()["alerts"] == []
        for key, event_id in ((publisher, "from-file"), (hashed, "from-hash")):
            event = {**ITEM, "event_id": event_id}
            posted = client.post(
                "/v1/alerts/events", json={"events": [event]}, headers={"X-API-Key": key}
            )
            assert posted.status_code == 200, posted.text
        listed = client.get("/v1/alerts", headers={"X-API-Key": publisher}).json()["alerts"]
        assert sorted(a["event_id"] for a in listed) == ["from-file", "from-hash"]


def test_an_unreadable_publishing_keys_file_names_the_setting(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigurationError, match="FINLAKE_API__PUBLISHER_KEYS_FILE: cannot read"):
        make_settings(publisher_keys_file=missing).api.publisher_digests()


def test_subscribers_get_each_new_item_once() -> None:
    async def scenario() -> list[str]:
        feed = AlertFeed(size=2)
        queue = feed.subscribe()
        item = AlertItem.model_validate(ITEM)
        feed.publish([item, item])
        feed.publish([AlertItem.model_validate({**ITEM, "event_id": "x"})])
        got = [queue.get_nowait(), queue.get_nowait()]
        assert queue.empty()
        return [i.event_id for i in got if i is not None]

    assert asyncio.run(scenario()) == ["r-AAPL-1", "x"]


def test_past_items_read_back_at_start_are_listed_but_not_streamed() -> None:
    async def scenario() -> tuple[bool, list[str]]:
        feed = AlertFeed()
        queue = feed.subscribe()
        feed.publish([AlertItem.model_validate(ITEM)], notify=False)
        return queue.empty(), [i.event_id for i in feed.recent(10)]

    assert asyncio.run(scenario()) == (True, ["r-AAPL-1"])


def test_closing_ends_each_stream_after_what_it_holds_and_any_later_one_at_once() -> None:
    async def scenario() -> tuple[list[str | None], list[str | None], list[str]]:
        feed = AlertFeed()
        open_stream = feed.subscribe()
        feed.publish([AlertItem.model_validate(ITEM)])
        feed.close()
        feed.publish([AlertItem.model_validate({**ITEM, "event_id": "after"})])
        late = feed.subscribe()

        def drain(queue: asyncio.Queue[AlertItem | None]) -> list[str | None]:
            got: list[str | None] = []
            while not queue.empty():
                item = queue.get_nowait()
                got.append(item.event_id if item else None)
            return got

        return drain(open_stream), drain(late), [i.event_id for i in feed.recent(10)]

    held, late, listed = asyncio.run(scenario())
    assert held == ["r-AAPL-1", None]
    assert late == [None]
    assert listed == ["after", "r-AAPL-1"]  # still listed: a closing feed keeps what it learns
