"""The dashboard page (chart, quality panel, live feed), served by the API itself."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from finlake_query_api.api.deps import StateDep
from finlake_query_api.config import PACKAGE_DIR

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=PACKAGE_DIR / "templates")
CHART_LIBRARY = "lightweight-charts.standalone.production.js"
SECURITY_HEADERS = {
    # Scripts and styles from this origin only (the chart library adds style elements of its
    # own); no plugins, no framing; the page holds an API key worth keeping from any injection.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request, state: StateDep) -> HTMLResponse:
    has_chart = (state.settings.api.vendor_dir / CHART_LIBRARY).is_file()
    return templates.TemplateResponse(
        request,
        "dashboard.html",
        {
            "has_chart": has_chart,
            "hot_window_days": state.settings.api.hot_window_days,
            # The alert stream's keep-alive period: the page's watchdog waits twice that.
            "keepalive_ms": round(state.settings.api.keepalive_s * 1000),
        },
        headers=SECURITY_HEADERS,
    )
