"""GET /: the dashboard page's HTML (its behaviour: tests/integration/test_dashboard.py)."""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from finlake_query_api.api.routes.dashboard import CHART_LIBRARY
from finlake_query_api.config import Settings
from finlake_query_api.main import create_app
from tests.unit.finlake_query_api.lake_data import NOW


class _Assets(HTMLParser):
    """The URLs of the page's own scripts and stylesheets."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.urls.append(str(found["src"]))
        if tag == "link" and found.get("rel") == "stylesheet":
            self.urls.append(str(found["href"]))


@pytest.mark.parametrize(
    ("base_url", "headers"),
    [
        ("https://finlake.example.com", {}),
        # A TLS-terminating ingress: the app sees http, the browser's page is https.
        ("http://finlake.example.com", {"X-Forwarded-Proto": "https"}),
    ],
)
def test_asset_urls_are_root_relative_whatever_the_scheme_seen(
    make_settings: Callable[..., Settings], tmp_path: Path, base_url: str, headers: dict[str, str]
) -> None:
    (tmp_path / CHART_LIBRARY).write_text("window.LightweightCharts = {};")
    app = create_app(make_settings(vendor_dir=tmp_path), clock=lambda: NOW)
    with TestClient(app, base_url=base_url) as client:
        page = client.get("/", headers=headers)
        assert page.status_code == 200
        assets = _Assets()
        assets.feed(page.text)
        assert sorted(assets.urls) == [
            "/static/dashboard.css",
            "/static/dashboard.js",
            f"/vendor/{CHART_LIBRARY}",
        ]
        for url in assets.urls:  # each one served at that path, whatever the host
            assert client.get(url).status_code == 200, url


def test_the_page_allows_only_its_own_scripts_and_no_framing(
    make_settings: Callable[..., Settings],
) -> None:
    with TestClient(create_app(make_settings(), clock=lambda: NOW)) as client:
        page = client.get("/")
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in page.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in page.text  # an inline script would be refused by the policy
