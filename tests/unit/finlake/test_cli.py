from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli


def test_help_lists_every_command_group_with_its_purpose() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    for group in ("stack", "config", "contracts", "demo"):
        assert f" {group} " in done.stdout


def test_config_show_prints_effective_settings_with_secrets_masked(tmp_path: Path) -> None:
    done = run_cli(
        "config",
        "show",
        env={
            "FINLAKE_HOME": str(tmp_path),
            "FINLAKE_REGISTRY__BASIC_AUTH_PASSWORD": "hunter2",
        },
    )
    assert done.returncode == 0, done.stderr
    assert str(tmp_path) in done.stdout
    assert "hunter2" not in done.stdout
    assert "********" in done.stdout


def test_wrong_java_is_one_line_without_traceback(tmp_path: Path) -> None:
    done = run_cli(
        "stack",
        "up",
        env={
            "FINLAKE_HOME": str(tmp_path),
            "FINLAKE_STACK__JAVA_HOME": str(tmp_path / "nojdk"),
        },
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "has no bin/java" in lines[0]


def test_invalid_setting_is_one_line(tmp_path: Path) -> None:
    done = run_cli(
        "config", "show", env={"FINLAKE_HOME": str(tmp_path), "FINLAKE_KAFKA__PORT": "x"}
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "invalid configuration: kafka.port" in done.stderr


def test_contracts_check_passes_on_the_committed_contracts() -> None:
    done = run_cli("contracts", "check")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("BACKWARD compatible") == 3
