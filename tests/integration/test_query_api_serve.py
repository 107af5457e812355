"""`finlake api serve` as a real process over a PyIceberg-built lake."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.unit.finlake_query_api.conftest import api_settings
from tests.unit.finlake_query_api.lake_data import build_lake


def test_serve_issues_a_key_and_answers_on_the_chosen_port(tmp_path: Path) -> None:
    build_lake(api_settings(tmp_path), symbols=("AAPL",))
    port = free_port()
    env = {**os.environ, "FINLAKE_HOME": str(tmp_path)}
    env.pop("FINLAKE_API__API_KEYS", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "finlake.cli.main", "api", "serve", "--port", str(port)],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        key = ""
        deadline = time.monotonic() + 90
        while not key and time.monotonic() < deadline:
            line = process.stderr.readline()
            if match := re.search(r"X-API-Key: (\S+)", line):
                key = match.group(1)
        assert key, "serve printed no API key"
        base = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        assert httpx.get(f"{base}/v1/symbols", timeout=10).status_code == 401
        symbols = httpx.get(f"{base}/v1/symbols", headers={"X-API-Key": key}, timeout=10)
        assert [s["symbol"] for s in symbols.json()["symbols"]] == ["AAPL"]
        assert "finlake dashboard" in httpx.get(base + "/", timeout=10).text
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()
    # uvicorn shuts down cleanly, then re-raises the SIGTERM it caught (exit status -15).
    assert process.returncode in (0, -signal.SIGTERM)
