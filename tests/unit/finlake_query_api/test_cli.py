"""`finlake api serve` as the console script runs it, up to where uvicorn would start serving."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import typer

from finlake.cli import main as cli_main
from finlake_query_api.config import hash_api_key
from finlake_query_api.server import QueryApiServer
from tests.unit.finlake_query_api.conftest import API_KEY

SECRET_FILE = "FINLAKE_API__API_KEY_HASHES_FILE"


class Served(NamedTuple):
    """How `finlake api serve` exited, its stderr, and what uvicorn was asked to serve."""

    code: object
    err: str
    uvicorn_args: dict[str, Any] | None

    @property
    def message(self) -> str:
        """stderr as one line (the console wraps long lines at its width)."""
        return " ".join(self.err.split())


Serve = Callable[..., Served]


@pytest.fixture
def serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Serve:
    """Runs ``finlake.cli.main.main`` with ``api serve`` and its arguments, in this process."""

    def run(*args: str, interrupted: bool = False, **env: str) -> Served:
        for name in [name for name in os.environ if name.startswith("FINLAKE_")]:
            monkeypatch.delenv(name)
        for name, value in {"FINLAKE_HOME": str(tmp_path), **env}.items():
            monkeypatch.setenv(name, value)
        called: dict[str, Any] = {}

        def record(server: QueryApiServer) -> None:
            called.update(host=server.config.host, port=server.config.port)
            server.started = True
            if interrupted:  # what uvicorn does after its clean stop on Ctrl-C
                raise KeyboardInterrupt

        monkeypatch.setattr(QueryApiServer, "run", record)
        # A root app of its own: main() adds the plug-ins (`api` among them) on every call.
        monkeypatch.setattr(cli_main, "app", typer.Typer(pretty_exceptions_enable=False))
        monkeypatch.setattr(sys, "argv", ["finlake", "api", "serve", *args])
        with pytest.raises(SystemExit) as exited:
            cli_main.main()
        return Served(exited.value.code, capsys.readouterr().err, called or None)

    return run


def test_the_key_digests_file_is_read(serve: Serve, tmp_path: Path) -> None:
    secret = tmp_path / "digests"
    secret.write_text(f"\n{hash_api_key('another').upper()}\n\n{hash_api_key(API_KEY)}\n")
    served = serve(**{SECRET_FILE: str(secret)})
    assert served.code == 0, served.err
    assert served.uvicorn_args is not None
    assert "no API key configured" not in served.err  # no key of its own issued for this run


def test_the_key_issued_for_one_run_is_told_with_how_alerts_reach_the_dashboard(
    serve: Serve,
) -> None:
    served = serve()
    assert served.code == 0, served.err
    issued = re.search(r"accepts X-API-Key: (\S+)", served.message)
    assert issued is not None, served.message
    key = issued.group(1)
    assert f"FINLAKE_ALERTING__DASHBOARD__API_KEY={key} finlake alerts serve" in served.message


def test_keys_without_a_publishing_key_are_told_that_alerts_are_refused(
    serve: Serve, tmp_path: Path
) -> None:
    secret = tmp_path / "digests"
    secret.write_text(f"{hash_api_key(API_KEY)}\n")
    served = serve(**{SECRET_FILE: str(secret)})
    assert served.code == 0, served.err
    assert "no publishing key configured" in served.message
    assert "alerts posted to the live feed are refused" in served.message
    publishing = serve(
        **{SECRET_FILE: str(secret), "FINLAKE_API__PUBLISHER_KEYS": f'["{API_KEY}"]'}
    )
    assert "no publishing key configured" not in publishing.message


def test_a_missing_key_digests_file_is_one_line_naming_the_setting(
    serve: Serve, tmp_path: Path
) -> None:
    served = serve(**{SECRET_FILE: str(tmp_path / "nope")})
    assert served.code == 1
    assert "Traceback" not in served.err
    assert served.message.startswith(f"error: {SECRET_FILE}: cannot read {tmp_path / 'nope'}")
    assert served.uvicorn_args is None


def test_a_line_in_the_key_digests_file_that_is_no_digest_is_one_line_without_the_line(
    serve: Serve, tmp_path: Path
) -> None:
    secret = tmp_path / "digests"
    secret.write_text(f"{hash_api_key(API_KEY)}\n{API_KEY}\n")  # a plain key pasted by mistake
    served = serve(**{SECRET_FILE: str(secret)})
    assert served.code == 1
    assert "Traceback" not in served.err
    assert served.message == (
        f"error: {SECRET_FILE}: line 2 of {secret} is not a SHA-256 hex digest (64 hex characters)"
    )


def test_a_rate_limit_that_does_not_parse_is_one_line_naming_the_setting(serve: Serve) -> None:
    served = serve(FINLAKE_API__RATE_LIMIT="lots")
    assert served.code == 1
    assert "Traceback" not in served.err
    assert served.message.startswith("error: invalid configuration: api.rate_limit: ")
    assert "'lots'" in served.message


def test_port_zero_is_passed_on(serve: Serve) -> None:
    served = serve("--port", "0")
    assert served.code == 0, served.err
    assert served.uvicorn_args is not None
    assert served.uvicorn_args["port"] == 0
    assert "dashboard: http://127.0.0.1:PORT/#key=" in served.err  # not a URL with port 0


def test_a_port_no_socket_has_is_a_usage_error(serve: Serve) -> None:
    served = serve("--port", "65536")
    assert served.code == 2
    assert "Traceback" not in served.err
    assert "--port" in served.err
    assert served.uvicorn_args is None


def test_ctrl_c_is_a_clean_stop(serve: Serve) -> None:
    served = serve(interrupted=True)
    assert served.code == 0, served.err
    assert "Traceback" not in served.err
