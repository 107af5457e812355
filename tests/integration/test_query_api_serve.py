"""`finlake api serve` as a real process over a PyIceberg-built lake."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx

from tests.conftest import free_port
from tests.unit.finlake_query_api.conftest import api_settings
from tests.unit.finlake_query_api.lake_data import build_lake


class Served(NamedTuple):
    process: subprocess.Popen[str]
    base: str
    key: str


@contextmanager
def serving(home: Path) -> Iterator[Served]:
    """`finlake api serve` on a free port, ready; SIGTERM on exit, which it must obey."""
    build_lake(api_settings(home), symbols=("AAPL",))
    port = free_port()
    env = {**os.environ, "FINLAKE_HOME": str(home)}
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
        yield Served(process, base, key)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError("serve did not exit within 30 s of its SIGTERM") from None
    # uvicorn shuts down cleanly, then re-raises the SIGTERM it caught (exit status -15).
    assert process.returncode in (0, -signal.SIGTERM)


def test_serve_issues_a_key_and_answers_on_the_chosen_port(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        base = served.base
        assert httpx.get(f"{base}/v1/symbols", timeout=10).status_code == 401
        symbols = httpx.get(f"{base}/v1/symbols", headers={"X-API-Key": served.key}, timeout=10)
        assert [s["symbol"] for s in symbols.json()["symbols"]] == ["AAPL"]
        assert "finlake dashboard" in httpx.get(base + "/", timeout=10).text
    assert served.process.stderr is not None
    served.process.stderr.close()


def test_a_sigterm_ends_the_open_alert_streams_and_runs_the_app_s_shutdown(
    tmp_path: Path,
) -> None:
    # uvicorn waits for open responses before the app's shutdown; an event stream never ends
    # by itself, so the server must end it, or the process outlives its SIGTERM.
    lines: list[str] = []
    errors: list[BaseException] = []
    opened, ended = threading.Event(), threading.Event()

    def listen(base: str, key: str) -> None:
        try:
            with httpx.stream(
                "GET", f"{base}/v1/alerts/stream", headers={"X-API-Key": key}, timeout=60
            ) as stream:
                for line in stream.iter_lines():
                    lines.append(line)
                    opened.set()
        except BaseException as error:  # an end cut short (a cancelled response): reported
            errors.append(error)
        ended.set()

    with serving(tmp_path) as served:
        listener = threading.Thread(target=listen, args=(served.base, served.key), daemon=True)
        listener.start()
        assert opened.wait(30), "the stream sent nothing"
    assert ended.wait(10), "the stream did not end"
    assert not errors, f"the stream ended badly: {errors[0]!r}"
    assert "event: ready" in lines
    assert served.process.stderr is not None
    log = served.process.stderr.read()
    served.process.stderr.close()
    assert "Application shutdown complete" in log, log[-2000:]
    assert "timeout graceful shutdown exceeded" not in log
