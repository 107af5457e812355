"""Alert detection end to end: ticks with known patterns -> exactly the expected alert events.

One module-scoped scenario, three runs of the job: the first finds every pattern; the second
(same checkpoint, a rule added, a few more ticks) finds only the new firing; the third (a new
checkpoint over all the same ticks) finds nothing new, on the topic and in the table.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer

from finlake.config import FinlakeSettings
from finlake.contracts.models import AlertEvent
from finlake.contracts.topics import TopicSpec
from finlake.kafka_io import publish
from finlake.query import QueryError
from finlake.stack.kafka import CLIENT_LOGGER, create_topics
from tests.conftest import free_port
from tests.integration.alert_detection import (
    detection_env,
    run_detection_once,
    table_events,
    topic_events,
)
from tests.integration.alert_patterns import (
    ADDED_RULE,
    ALERTS,
    CROSS_UP,
    DROP,
    GAP,
    MORE,
    RULES,
    SOURCE,
    STEPS,
    SURGE,
    at,
    expected_first_run,
    price,
    ticks,
    unusable_ticks,
)


@dataclass
class Scenario:
    home: Path
    env: dict[str, str]
    rules: Path
    runs: list[Callable[[], None]]
    first: list[AlertEvent]
    first_table: list[tuple[object, ...]]
    second: list[AlertEvent]
    second_table: list[tuple[object, ...]]
    third: list[AlertEvent]
    third_table: list[tuple[object, ...]]
    output: str


@pytest.fixture(scope="module")
def scenario(settings: FinlakeSettings, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    home = tmp_path_factory.mktemp("alerts-home")
    create_topics(
        settings.kafka.bootstrap,
        [TopicSpec(SOURCE, 3, 86_400_000, "symbol", None), TopicSpec(ALERTS, 3, 86_400_000,
                                                                       "event_id", None)],
    )  # fmt: skip
    rules = home / "rules"
    rules.mkdir()
    (rules / "desk.yaml").write_text(RULES)
    env = detection_env(settings, home, SOURCE, ALERTS)
    publish(settings, SOURCE, ticks(0, STEPS) + unusable_ticks(), key_field="symbol")
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap, "logger": CLIENT_LOGGER})
    producer.produce(SOURCE, b"not avro at all", b"AAA")
    producer.flush(10)

    output = run_detection_once(env, rules)
    first, first_table = topic_events(settings, ALERTS), table_events(home)

    (rules / "added.yml").write_text(ADDED_RULE)
    publish(settings, SOURCE, ticks(STEPS, STEPS + MORE), key_field="symbol")
    run_detection_once(env, rules)
    second, second_table = topic_events(settings, ALERTS), table_events(home)

    shutil.rmtree(home / "checkpoints")
    run_detection_once(env, rules)
    third, third_table = topic_events(settings, ALERTS), table_events(home)
    return Scenario(home, env, rules, [], first, first_table, second, second_table, third,
                    third_table, output)  # fmt: skip


def _key(event: AlertEvent) -> tuple[str, str, datetime]:
    return (event.rule, event.symbol, event.window_start)


def test_each_pattern_fires_exactly_the_expected_events(scenario: Scenario) -> None:
    expected = expected_first_run()
    got = {_key(event): event for event in scenario.first}
    assert len(scenario.first) == len(got) == len(expected)
    assert set(got) == {(e.rule, e.symbol, e.bar) for e in expected}
    for item in expected:
        event = got[(item.rule, item.symbol, item.bar)]
        assert event.window_end == item.bar + timedelta(minutes=1)
        if item.value:
            assert event.value == pytest.approx(item.value, rel=1e-6)
    assert got[("ddd-volume", "DDD", at(SURGE))].value == pytest.approx(3000 / 600)


def test_events_carry_the_rule_content(scenario: Scenario) -> None:
    got = {_key(event): event for event in scenario.first}
    cross = got[("aaa-cross", "AAA", at(CROSS_UP))]
    assert (cross.kind, cross.severity, cross.threshold) == ("price_cross", "critical", 105.0)
    assert cross.labels == {"team": "desk-a"}
    assert cross.message == "AAA crossed above 105.00: 106.00 at 2026-11-25 23:45:00 UTC"
    gap = got[("e-gap", "EEE", at(GAP))]
    assert (gap.kind, gap.severity, gap.threshold) == ("gap", "info", 2.0)
    opening = (price("EEE", GAP) / price("EEE", GAP - 1) - 1) * 100
    assert gap.message == (
        f"EEE opened 2026-11-26 up {opening:.2f}% from the previous close 100.01 (open 103.00)"
    )
    surge = got[("ddd-volume", "DDD", at(SURGE))]
    assert surge.message.startswith("DDD traded 3,000 in 1m, 5.0x the rolling average of 600")
    assert all(e.fired_at >= e.window_start for e in scenario.first)


def test_the_table_holds_the_same_events_once(scenario: Scenario) -> None:
    ids = [row[0] for row in scenario.first_table]
    assert sorted(ids) == sorted(e.event_id for e in scenario.first)
    assert len(set(ids)) == len(ids)


def test_a_rule_added_while_the_checkpoint_is_kept_fires_on_new_ticks_only(
    scenario: Scenario,
) -> None:
    new = [e for e in scenario.second if e.event_id not in {x.event_id for x in scenario.first}]
    assert [(e.rule, e.symbol, e.window_start) for e in new] == [("aaa-drop", "AAA", at(DROP))]
    assert len(scenario.second) == len(scenario.first) + 1
    assert len(scenario.second_table) == len(scenario.first_table) + 1


def test_a_replay_over_a_new_checkpoint_emits_nothing_twice(scenario: Scenario) -> None:
    assert [e.event_id for e in scenario.third] == [e.event_id for e in scenario.second]
    assert scenario.third_table == scenario.second_table


def test_undecodable_and_unusable_records_are_counted_not_fatal(scenario: Scenario) -> None:
    said = next(line for line in scenario.output.splitlines() if "not evaluated" in line)
    assert "4 market-data records not evaluated" in said
    assert "timestamp more than 300 s after the record was produced" in said
    assert "price or volume missing, not a finite number or not positive" in said


def test_a_running_job_publishes_and_stores_the_same_events(
    scenario: Scenario, settings: FinlakeSettings, tmp_path: Path
) -> None:
    """Not ``--once``: the detection and the events-table queries run side by side until SIGTERM.

    The ticks are published only once the job runs: their writer schema is not registered when
    the query is planned, so the JVM cannot decode them and every tick takes the processor's
    Python decoding instead, which must find the same events.
    """
    source, alerts = "alert-ticks-live", "alert-events-live"
    create_topics(
        settings.kafka.bootstrap,
        [TopicSpec(source, 3, 86_400_000, "symbol", None),
         TopicSpec(alerts, 3, 86_400_000, "event_id", None)],
    )  # fmt: skip
    env = detection_env(
        settings, tmp_path, source, alerts, FINLAKE_DETECTION__EVENTS_INTERVAL_S="1"
    )
    rules = ["--rules", str(scenario.rules / "desk.yaml")]
    command = [sys.executable, "-m", "finlake.cli.main", "pipeline", "run", "alerts", *rules]
    expected = sorted(event.event_id for event in scenario.first)
    log = tmp_path / "detection.log"
    with log.open("w") as output:
        job = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 600
            while "decoding every record in Python" not in log.read_text():
                assert job.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
            publish(settings, source, ticks(0, STEPS), key_field="symbol")
            stored: list[object] = []
            while sorted(stored) != expected and job.poll() is None:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(2)
                with suppress(QueryError):  # the job has not created the table yet
                    stored = [row[0] for row in table_events(tmp_path)]
            job.send_signal(signal.SIGTERM)
            assert job.wait(120) == 0, log.read_text()[-3000:]
        finally:
            if job.poll() is None:
                job.kill()
    assert sorted(stored) == expected
    published = {event.event_id for event in topic_events(settings, alerts)}
    assert published == set(expected)


def test_a_registry_away_stops_the_job_in_one_line_and_rejects_no_tick(
    scenario: Scenario, settings: FinlakeSettings, tmp_path: Path
) -> None:
    """The registry is away from the start: no writer schema is known to the JVM, each tick
    waits in Python for the registry, then the job stops saying so; nothing is published or
    rejected, and the next run with the registry back finds every event."""
    source, alerts = "alert-ticks-away", "alert-events-away"
    create_topics(
        settings.kafka.bootstrap,
        [TopicSpec(source, 3, 86_400_000, "symbol", None),
         TopicSpec(alerts, 3, 86_400_000, "event_id", None)],
    )  # fmt: skip
    publish(settings, source, ticks(0, STEPS), key_field="symbol")
    nowhere = free_port()
    env = detection_env(settings, tmp_path, source, alerts)
    wait = {"FINLAKE_REGISTRY__PORT": str(nowhere), "FINLAKE_DETECTION__REGISTRY_WAIT_S": "2"}
    away = {**env, **wait}
    rules = ["--rules", str(scenario.rules / "desk.yaml")]
    command = [sys.executable, "-m", "finlake.cli.main", "pipeline", "run", "alerts", "--once"]
    done = subprocess.run(
        [*command, *rules], env=away, capture_output=True, text=True, timeout=900, check=False
    )
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, said[-3000:]
    assert f"error: schema registry at http://127.0.0.1:{nowhere}/" in said, said[-3000:]
    assert "did not answer decoding a tick (asked for up to 2 s)" in said
    assert "the batch stops, its records stay in Kafka" in said
    assert "Traceback" not in done.stderr.split("error: schema registry")[-1]
    assert topic_events(settings, alerts) == []

    output = run_detection_once(env, scenario.rules / "desk.yaml")  # the registry answers again
    assert "records not evaluated" not in output
    published = sorted(event.event_id for event in topic_events(settings, alerts))
    assert published == sorted(event.event_id for event in scenario.first)
