"""POST /v1/transactions/uploads and GET /v1/transactions/summary over a real local lake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from pyiceberg.expressions import EqualTo

from finlake.lake.tables import TRANSACTIONS_RAW, TRANSACTIONS_SUMMARY
from finlake.transactions.iceberg import ensure_table
from finlake.transactions.rules import TEXT_COLUMNS
from finlake.transactions.upload import open_lake
from finlake_query_api.main import create_app
from tests.unit.finlake_query_api.conftest import API_KEY, api_settings

HEADER = ",".join(TEXT_COLUMNS)
ROW = "tx{n},acc1,card1,2026-05-01T10:00:00Z,12.50,EUR,Corner Grocer,5411,DE,pos,chip,approved,"
UPLOADS = "/v1/transactions/uploads"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def client(home: Path) -> Iterator[TestClient]:
    app = create_app(api_settings(home, max_upload_mb=1))
    with TestClient(app, headers={"X-API-Key": API_KEY}) as test_client:
        yield test_client


def csv_of(*rows: str) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def test_an_upload_answers_its_id_and_counts_and_a_repeat_is_a_no_op(client: TestClient) -> None:
    body = csv_of(ROW.format(n=1), ROW.format(n=2).replace("Corner Grocer", "=HYPERLINK(1)"))
    first = client.post(UPLOADS, params={"file_name": "may.csv"}, content=body)
    assert first.status_code == 201, first.text
    answer = first.json()
    assert answer["upload_id"].startswith("up-")
    assert answer["is_duplicate"] is False
    assert (answer["file_name"], answer["rows_total"], answer["rows_flagged"]) == ("may.csv", 2, 0)
    assert answer["failing_by_rule"] == {"formula_injection": 1}
    assert answer["rows_expected_valid"] == 1
    again = client.post(UPLOADS, params={"file_name": "may-copy.csv"}, content=body)
    assert again.status_code == 200  # nothing created
    assert again.json()["is_duplicate"] is True
    assert again.json()["upload_id"] == answer["upload_id"]
    assert (again.json()["file_name"], again.json()["first_file_name"]) == (
        "may-copy.csv", "may.csv",
    )  # fmt: skip
    assert answer["first_file_name"] is None
    assert f"upload {answer['upload_id']} (may.csv); nothing uploaded" in again.json()["message"]
    counts = ("rows_flagged", "flagged_by_issue", "rows_failing_rules", "failing_by_rule")
    for name in (*counts, "rows_expected_valid", "rows_total"):
        assert again.json()[name] == answer[name], name


def test_a_repeat_whose_bronze_rows_are_gone_answers_null_counts(
    client: TestClient, home: Path
) -> None:
    body = csv_of(ROW.format(n=1), ROW.format(n=2).replace("Corner Grocer", "=HYPERLINK(1)"))
    first = client.post(UPLOADS, content=body).json()
    catalog, _ = open_lake(api_settings(home, max_upload_mb=1))
    catalog.load_table(TRANSACTIONS_RAW.identifier).delete(
        EqualTo(term="upload_id", value=first["upload_id"])
    )
    again = client.post(UPLOADS, content=body)
    assert again.status_code == 200
    answer = again.json()
    assert answer["rows_total"] == 2
    assert answer["failing_by_rule"] is None
    assert answer["rows_expected_valid"] is None
    assert "counts unknown" in answer["message"]


def test_a_body_that_is_no_csv_is_a_422_problem(client: TestClient) -> None:
    for body, words in [
        (b"", "empty"),
        (b"\x00\x01binary\x00", "binary"),
        (b"a;b;c\n1;2;3\n", "wrong header"),
    ]:
        response = client.post(UPLOADS, params={"file_name": "x.csv"}, content=body)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert words in response.json()["detail"]


def test_a_multipart_form_is_refused_with_415_saying_how_to_send_the_csv(
    client: TestClient,
) -> None:
    files = {"file": ("may.csv", csv_of(ROW.format(n=1)), "text/csv")}
    response = client.post(UPLOADS, params={"file_name": "may.csv"}, files=files)
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "--data-binary @file.csv" in response.json()["detail"]


def test_an_encoding_that_cannot_read_text_is_a_422_problem(client: TestClient) -> None:
    body = csv_of(ROW.format(n=1))
    for encoding, words in [
        ("rot13", "not a text encoding"),
        ("hex", "not a text encoding"),
        ("idna", "cannot read a CSV file"),
        ("undefined", "cannot read a CSV file"),
        ("nope", "unknown text encoding"),
        ("\x00", "unknown text encoding"),
    ]:
        response = client.post(UPLOADS, params={"encoding": encoding}, content=body)
        assert response.status_code == 422, (encoding, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert words in response.json()["detail"]


def test_a_body_over_the_limit_is_refused_with_413(client: TestClient) -> None:
    big = csv_of(*(ROW.format(n=n) for n in range(20_000)))
    assert len(big) > 1 << 20

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        yield big[: 1 << 19]
        yield big[1 << 19 :]

    for content in (big, chunks()):
        response = client.post(UPLOADS, content=content)
        assert response.status_code == 413
        assert "limit of 1,048,576 bytes" in response.json()["detail"]


def test_uploads_need_an_api_key(home: Path) -> None:
    with TestClient(create_app(api_settings(home))) as anonymous:
        assert anonymous.post(UPLOADS, content=csv_of(ROW.format(n=1))).status_code == 401


def test_summary_before_any_batch_is_404(client: TestClient) -> None:
    response = client.get("/v1/transactions/summary", params={"account_id": "acc1"})
    assert response.status_code == 404
    assert "run the transactions batch" in response.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {"start": "0001-01-01T00:00:00+05:00"},  # before year 1 in UTC
        {"end": "9999-12-31T23:00:00-05:00"},  # after year 9999 in UTC
        {"end": "0001-01-01T00:00:00Z"},  # its default start would be before year 1
    ],
)
def test_summary_outside_the_years_the_engines_hold_is_400(
    client: TestClient, params: dict[str, str]
) -> None:
    response = client.get("/v1/transactions/summary", params={"account_id": "acc1", **params})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "must lie in" in response.json()["detail"]


def write_summary(home: Path) -> None:
    catalog, warehouse = open_lake(api_settings(home))
    table = ensure_table(catalog, TRANSACTIONS_SUMMARY, warehouse)
    updated = datetime(2026, 5, 2, tzinfo=UTC)

    def window(granularity: str, start: datetime, end: datetime, n: int) -> dict[str, object]:
        return {
            "account_id": "acc1", "granularity": granularity, "window_start": start,
            "window_end": end, "currency": "EUR", "transaction_count": n,
            "amount_sum": Decimal("12.50") * n, "amount_max": Decimal("12.50"),
            "declined_count": 0, "count_by_category": {"5411": n},
            "amount_by_category": {"5411": Decimal("12.50") * n},
            "count_by_channel": {"pos": n}, "amount_by_channel": {"pos": Decimal("12.50") * n},
            "updated_at": updated,
        }  # fmt: skip

    may_1 = datetime(2026, 5, 1, tzinfo=UTC)
    rows = [
        window("hour", may_1 + timedelta(hours=10), may_1 + timedelta(hours=11), 2),
        window("hour", may_1 + timedelta(hours=11), may_1 + timedelta(hours=12), 1),
        window("day", may_1, may_1 + timedelta(days=1), 3),
    ]
    table.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))


def test_summary_answers_hour_and_day_windows_of_one_account(home: Path) -> None:
    write_summary(home)
    with TestClient(create_app(api_settings(home)), headers={"X-API-Key": API_KEY}) as client:
        params = {
            "account_id": "acc1",
            "start": "2026-05-01T00:00:00Z",
            "end": "2026-05-03T00:00:00Z",
        }
        hours = client.get("/v1/transactions/summary", params={**params, "granularity": "hour"})
        days = client.get("/v1/transactions/summary", params={**params, "granularity": "day"})
        other = client.get("/v1/transactions/summary", params={**params, "account_id": "acc2"})
    assert hours.status_code == 200, hours.text
    windows = hours.json()["windows"]
    assert [(w["window_start"], w["transaction_count"]) for w in windows] == [
        ("2026-05-01T10:00:00Z", 2),
        ("2026-05-01T11:00:00Z", 1),
    ]
    assert windows[0]["count_by_category"] == {"5411": 2}
    assert Decimal(windows[0]["amount_by_channel"]["pos"]) == Decimal("25.00")
    [day] = days.json()["windows"]
    assert (day["transaction_count"], Decimal(day["amount_sum"])) == (3, Decimal("37.50"))
    assert other.json()["windows"] == []


def test_summary_pages_walk_every_window_once(home: Path) -> None:
    """Hours of one account, two currencies in every third: pages of 4 cut between the currencies
    of an hour, and each window is on exactly one page."""
    catalog, warehouse = open_lake(api_settings(home))
    table = ensure_table(catalog, TRANSACTIONS_SUMMARY, warehouse)
    first = datetime(2026, 5, 1, tzinfo=UTC)
    rows = [
        {"account_id": "acc1", "granularity": "hour", "window_start": first + timedelta(hours=h),
         "window_end": first + timedelta(hours=h + 1), "currency": currency,
         "transaction_count": h, "amount_sum": Decimal(h), "amount_max": Decimal(h),
         "declined_count": 0, "updated_at": first}
        for h in range(30) for currency in (("EUR", "USD") if h % 3 == 0 else ("EUR",))
    ]  # fmt: skip
    table.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))
    window = {"account_id": "acc1", "granularity": "hour", "start": "2026-05-01T00:00:00Z",
              "end": "2026-05-03T00:00:00Z"}  # fmt: skip
    with TestClient(create_app(api_settings(home)), headers={"X-API-Key": API_KEY}) as client:
        whole = client.get("/v1/transactions/summary", params=window).json()
        pages: list[list[dict[str, Any]]] = []
        cursors: list[str | None] = [None]
        while cursors[-1] is not None or not pages:
            params = {**window, "limit": "4", **({"cursor": cursors[-1]} if cursors[-1] else {})}
            page = client.get("/v1/transactions/summary", params=params).json()
            assert len(page["windows"]) <= 4
            pages.append(page["windows"])
            cursors.append(page["next_cursor"])
        days = {**window, "granularity": "day", "cursor": cursors[1]}
        other = client.get("/v1/transactions/summary", params=days)
    assert whole["next_cursor"] is None
    assert len(whole["windows"]) == len(rows) == 40
    assert [w for page in pages for w in page] == whole["windows"]
    assert len(pages) == 10
    keys = [(w["window_start"], w["currency"]) for page in pages for w in page]
    assert len(set(keys)) == len(rows)
    assert other.status_code == 400
    assert "interval hour, not day" in other.json()["detail"]
