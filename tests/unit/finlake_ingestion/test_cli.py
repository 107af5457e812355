from __future__ import annotations

import socket
from pathlib import Path

from tests.conftest import run_cli


def test_ingest_group_lists_its_sources() -> None:
    done = run_cli("ingest", "--help")
    assert done.returncode == 0, done.stderr
    for command in ("yahoo", "replay", "simulate"):
        assert f" {command} " in done.stdout


def test_replay_check_validates_without_a_broker(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text("symbol,timestamp,price,volume,bid\nAAPL,1795530600000,1.5,10,1.4\n")
    done = run_cli("ingest", "replay", str(path), "--check", env={"FINLAKE_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "1 valid rows" in done.stdout
    assert "extra columns: bid" in done.stdout


def test_malformed_replay_file_is_one_line_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text("symbol,timestamp,price,volume\nAAPL,1795530600000,1.5,10\nAAPL,x,1,1\n")
    done = run_cli("ingest", "replay", str(path), env={"FINLAKE_HOME": str(tmp_path)})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {path}:3: timestamp 'x' is neither ISO-8601 nor epoch milliseconds"]


def test_bad_pace_is_one_line(tmp_path: Path) -> None:
    done = run_cli("ingest", "replay", str(tmp_path / "x.csv"), "--pace", "slow")
    assert done.returncode == 1
    assert "pace 'slow' is not fast, original or a speed-up" in done.stderr


def test_replay_volume_beyond_avro_long_fails_before_publishing(tmp_path: Path) -> None:
    # No broker runs here: the file must be refused before the publisher is even built.
    path = tmp_path / "ticks.csv"
    path.write_text("symbol,timestamp,price,volume\nAAPL,1795530600000,1.5,10\nAAPL,1,1,1e30\n")
    done = run_cli("ingest", "replay", str(path), env={"FINLAKE_HOME": str(tmp_path)})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "published" not in done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {path}:3: volume '1e30' does not fit a 64-bit integer"]


def test_yahoo_budget_too_small_for_a_new_symbol_is_one_line(tmp_path: Path) -> None:
    done = run_cli("ingest", "yahoo", "--budget", "1", env={"FINLAKE_HOME": str(tmp_path)})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: invalid configuration: requests_per_minute: 1 request(s) per minute can never "
        "fetch a new symbol, which takes 2 (yfinance probes its time zone first); use at least 2"
    ]


def test_a_busy_serve_port_is_one_line_before_anything_is_published(tmp_path: Path) -> None:
    # No broker runs here: the port is checked before the publisher is built.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"FINLAKE_HOME": str(tmp_path), "FINLAKE_INGESTION__HTTP_HOST": "127.0.0.1"}
        done = run_cli(
            "ingest", "simulate", "--count", "1", "--serve", "--port", str(port), env=env
        )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: 127.0.0.1:{port} is already in use; pick another port with --port or "
        "FINLAKE_INGESTION__HTTP_PORT"
    ]
