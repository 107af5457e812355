"""``finlake transactions upload`` as a user runs it: counts, repeat no-op, one-line errors."""

from __future__ import annotations

from pathlib import Path

from finlake.transactions.rules import TEXT_COLUMNS
from tests.conftest import run_cli

HEADER = ",".join(TEXT_COLUMNS)
ROW = "tx{n},acc1,card1,2026-05-01T10:00:00Z,12.50,EUR,Corner Grocer,5411,DE,pos,chip,approved,"


def test_upload_reports_counts_and_a_repeat_says_nothing_was_uploaded(tmp_path: Path) -> None:
    env = {"FINLAKE_HOME": str(tmp_path / "home")}
    csv = tmp_path / "day.csv"
    formula = '"=HYPERLINK(""http://evil.example"")"'
    rows = [ROW.format(n=1), ROW.format(n=2).replace("Corner Grocer", formula), "tx3,acc1"]
    csv.write_text("\n".join([HEADER, *rows]) + "\n")

    first = run_cli("transactions", "upload", str(csv), env=env)
    assert first.returncode == 0, first.stderr
    assert "3 rows to transactions.raw" in first.stdout
    assert "rows the file itself garbles: 1 (1 field count)" in first.stdout
    assert "rows the batch will quarantine: 2 (formula_injection 1, record_readable 1)" in (
        first.stdout
    )
    copy = tmp_path / "day-copy.csv"
    copy.write_bytes(csv.read_bytes())
    again = run_cli("transactions", "upload", str(copy), env=env)
    assert again.returncode == 0, again.stderr
    upload_id = first.stdout.split(" as ", 1)[1].split(":", 1)[0]
    assert again.stdout.strip().startswith(
        f"day-copy.csv: same content as upload {upload_id} (day.csv, 3 rows, received "
    )
    assert "nothing uploaded" in again.stdout


def test_an_unreadable_file_is_one_line_on_stderr_and_exit_1(tmp_path: Path) -> None:
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    result = run_cli("transactions", "upload", str(binary), env={"FINLAKE_HOME": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: the file looks binary (a NUL byte at offset 8), not a CSV text file"
    ]


def test_an_encoding_that_is_no_text_encoding_is_one_line_on_stderr(tmp_path: Path) -> None:
    csv = tmp_path / "day.csv"
    csv.write_text(f"{HEADER}\n{ROW.format(n=1)}\n")
    env = {"FINLAKE_HOME": str(tmp_path / "home")}
    result = run_cli("transactions", "upload", str(csv), "--encoding", "rot13", env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: 'rot13' is a codec but not a text encoding; name the file's text encoding, "
        "e.g. utf-8 or cp1252"
    ]


def test_pipeline_run_transactions_refuses_a_schedule_with_once(tmp_path: Path) -> None:
    result = run_cli(
        "pipeline", "run", "transactions", "--once", "--schedule", "hourly",
        env={"FINLAKE_HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 2
    assert "--schedule runs until stopped" in result.stderr
