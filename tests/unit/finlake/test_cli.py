from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.conftest import free_port, run_cli


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


def test_every_command_renders_its_help() -> None:
    # Help texts are rich markup: a literal "[/DURATION]" once crashed `ingest simulate --help`.
    import typer.main
    from typer.testing import CliRunner

    from finlake.cli import main

    main._add_plugins()
    root = typer.main.get_command(main.app)
    runner = CliRunner()
    paths: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        paths.append(path)
        for name, child in getattr(command, "commands", {}).items():  # a group's commands
            walk(child, [*path, name])

    walk(root, [])
    assert len(paths) > 30  # every group and its commands, plug-ins included
    for path in paths:
        done = runner.invoke(main.app, [*path, "--help"], terminal_width=100)
        assert done.exit_code == 0, (
            f"finlake {' '.join(path)} --help: {done.output}{done.exception!r}"
        )
        assert "Usage:" in done.output


def test_stack_logs_without_a_service_prints_every_services_tail(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "kafka.log").write_text("k1\nk2\nk3\n")
    (logs / "registry.log").write_text("r1\n")
    env = {"FINLAKE_HOME": str(tmp_path)}
    every = run_cli("stack", "logs", "-n", "2", env=env)
    assert every.returncode == 0, every.stderr
    assert every.stdout.splitlines() == ["kafka     | k2", "kafka     | k3", "registry  | r1"]
    one = run_cli("stack", "logs", "kafka", "-n", "1", env=env)
    assert one.stdout.splitlines() == ["k3"]
    unknown = run_cli("stack", "logs", "nope", env=env)
    assert unknown.returncode == 1
    assert "no service 'nope' in the stack; known: kafka, registry" in unknown.stderr


def test_contracts_register_without_a_registry_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"
    done = run_cli("contracts", "register", env={"FINLAKE_REGISTRY__URL": url})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: no schema registry answers at {url} (registering ")
    assert "`finlake stack up`" in line


def test_contracts_register_at_something_else_than_a_registry_is_one_line() -> None:
    class NotARegistry(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"<html>no such page</html>")

        def log_message(self, *_: object) -> None:
            """Quiet."""

    with ThreadingHTTPServer(("127.0.0.1", 0), NotARegistry) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/apis/ccompat/v7"
        done = run_cli("contracts", "register", env={"FINLAKE_REGISTRY__URL": url})
        server.shutdown()
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: schema registry at {url} refused registering ")
