"""The stack's bookkeeping around its services, on real short-lived processes (``sh`` stands in
for a broker: the manager only starts, watches and stops processes) and real file locks. The
real Kafka and Apicurio: tests/integration/test_stack_lifecycle.py."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from pathlib import Path

import pytest

from finlake.config import FinlakeSettings
from finlake.errors import JavaNotFoundError, ServiceStartError
from finlake.stack.artifacts import MANIFEST, ArtifactCache, Bundle, sha256_file
from finlake.stack.java import java_major
from finlake.stack.kafka import KafkaService
from finlake.stack.manager import Stack
from finlake.stack.process import ManagedProcess
from finlake.stack.registry import RegistryService
from tests.conftest import hold_lock


class ScriptService:
    """A service whose process is ``sh -c script``; healthy while it runs, when ``answers``."""

    stop_signal = signal.SIGTERM
    ports = ()
    address = "nowhere:0"

    def __init__(self, home: Path, script: str, *, answers: bool = True) -> None:
        self.name = "script"
        self.process = ManagedProcess(self.name, home)
        self.script = script
        self.answers = answers
        self.after_starts = 0

    def check(self) -> None:
        """Nothing to check."""

    def prepare(self) -> list[str]:
        return ["sh", "-c", self.script]

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def healthy(self) -> bool:
        return self.answers and self.process.running() is not None

    def after_start(self) -> list[str]:
        self.after_starts += 1
        return ["topic t"] if self.after_starts == 1 else []

    def diagnose(self, _log: list[str]) -> str | None:
        return None


def _stack(home: Path, service: ScriptService) -> Stack:
    stack = Stack(FinlakeSettings.model_validate({"home": home}))
    stack.services = [service]
    stack.bundles = ()  # nothing to download for `sh`
    return stack


def test_up_finishes_what_an_interrupted_up_left_undone(tmp_path: Path) -> None:
    service = ScriptService(tmp_path, "exec sleep 60")
    stack = _stack(tmp_path, service)
    # The first `up` started the process and was interrupted before creating the topics.
    service.process.start(service.prepare(), env=service.environment(), cwd=tmp_path)
    messages: list[str] = []
    try:
        stack.up(report=messages.append)
        assert messages == ["script: already running at nowhere:0; created topic t"]
        messages.clear()
        stack.up(report=messages.append)
        assert messages == ["script: already running at nowhere:0"]
        assert service.after_starts == 2
    finally:
        stack.down()


def test_a_failed_start_quotes_its_own_log_not_an_earlier_runs(tmp_path: Path) -> None:
    failing = ScriptService(tmp_path, "echo 'ERROR: port 9092 taken'; exit 3", answers=False)
    with pytest.raises(ServiceStartError, match="ERROR: port 9092 taken"):
        _stack(tmp_path, failing).up()
    failing = ScriptService(tmp_path, "echo 'disk full'; exit 3", answers=False)
    with pytest.raises(ServiceStartError) as caught:
        _stack(tmp_path, failing).up()
    assert "disk full" in str(caught.value)
    assert "9092" not in str(caught.value)


def test_stack_commands_in_one_home_take_turns_and_say_so(tmp_path: Path) -> None:
    stack = _stack(tmp_path, ScriptService(tmp_path, "exec sleep 60"))
    holder = hold_lock(tmp_path / "run" / "stack.lock", 1.0)  # another `up`, still starting
    messages: list[str] = []
    started = time.monotonic()
    stack.down(report=messages.append)
    assert time.monotonic() - started > 0.5
    holder.communicate(timeout=10)
    assert messages == [
        f"waiting for another `finlake stack` command on {tmp_path.resolve()} to finish "
        f"(it holds {tmp_path.resolve() / 'run' / 'stack.lock'})",
        "script: not running",
    ]


def test_a_download_waits_for_anothers_and_uses_its_result(tmp_path: Path) -> None:
    # No Maven at all: the bundle must come from the download waited for.
    cache = ArtifactCache(tmp_path / "cache", maven=str(tmp_path / "no-mvn"))
    bundle = Bundle("tiny", ("org.example:tiny:1",))
    staged = tmp_path / "staged"
    (staged / "lib").mkdir(parents=True)
    (staged / "lib" / "tiny-1.jar").write_bytes(b"jar")
    manifest = {"lib/tiny-1.jar": sha256_file(staged / "lib" / "tiny-1.jar")}
    (staged / MANIFEST).write_text(json.dumps(manifest))
    cache.root.mkdir(parents=True)
    holder = hold_lock(cache.root / ".resolve.lock", 0.5, then_move=(staged, cache.folder(bundle)))
    said: list[str] = []
    assert cache.ensure(bundle, report=said.append) == cache.folder(bundle)
    holder.communicate(timeout=10)
    assert said == [f"tiny: waiting for another process downloading into {cache.root}"]


def test_the_stack_manages_its_own_broker_and_registry_not_the_clients_remote_ones(
    tmp_path: Path,
) -> None:
    settings = FinlakeSettings.model_validate(
        {
            "home": tmp_path,
            "kafka": {"port": 19092, "bootstrap_servers": "kafka.example.com:9092"},
            "registry": {"port": 18081, "url": "https://registry.example.com/apis/ccompat/v7"},
        }
    )
    artifacts = ArtifactCache(tmp_path)
    assert KafkaService(settings, artifacts).address == "127.0.0.1:19092"
    assert RegistryService(settings, artifacts).address == (
        "http://127.0.0.1:18081/apis/ccompat/v7"
    )
    assert settings.kafka.bootstrap == "kafka.example.com:9092"  # what clients use


def test_a_cluster_id_mismatch_in_the_broker_log_is_diagnosed(tmp_path: Path) -> None:
    kafka = KafkaService(
        FinlakeSettings.model_validate({"home": tmp_path}), ArtifactCache(tmp_path)
    )
    reason = kafka.diagnose(["ERROR Invalid cluster ID in the data directory: abc"])
    assert reason is not None
    assert "finlake stack reset kafka" in reason


def _hanging(tmp_path: Path) -> Path:
    script = tmp_path / "hangs"
    script.write_text("#!/bin/sh\nexec sleep 60\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_a_hanging_storage_format_is_one_clear_error(tmp_path: Path) -> None:
    kafka = KafkaService(
        FinlakeSettings.model_validate({"home": tmp_path}), ArtifactCache(tmp_path)
    )
    kafka.root.mkdir()
    with pytest.raises(ServiceStartError, match=r"formatting Kafka storage .* within 0.5s"):
        kafka._format_once(str(_hanging(tmp_path)), "", kafka.root / "server.properties", 0.5)


def test_a_hanging_java_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JavaNotFoundError, match=r"-version did not answer within 0.5s"):
        java_major(_hanging(tmp_path), timeout_s=0.5)
