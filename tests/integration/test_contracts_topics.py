"""`finlake contracts topics --create`: the topics a cluster's Kafka needs, created if missing."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, ConfigResource

from finlake.config import FinlakeSettings
from finlake.contracts.topics import ALERT_FEED, FEED_RETENTION_MS, declared_topics
from tests.conftest import free_port, run_cli
from tests.receivers import wait_until


def test_missing_topics_are_created_with_their_partitions_and_retention(
    settings: FinlakeSettings,
) -> None:
    bootstrap = settings.kafka.bootstrap
    env = {"FINLAKE_HOME": str(settings.home), "FINLAKE_KAFKA__BOOTSTRAP_SERVERS": bootstrap}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.delete_topics([ALERT_FEED])[ALERT_FEED].result(timeout=30)
    wait_until(lambda: ALERT_FEED not in admin.list_topics(timeout=10).topics, 30, "the delete")

    done = run_cli("contracts", "topics", "--create", env=env)
    assert done.returncode == 0, done.stderr
    assert f"created on {bootstrap}: {ALERT_FEED}" in done.stdout
    for topic in declared_topics(settings.topics):
        assert topic.name in done.stdout
    metadata = admin.list_topics(timeout=10).topics[ALERT_FEED]
    assert len(metadata.partitions) == 1
    resource = ConfigResource(ConfigResource.Type.TOPIC, ALERT_FEED)
    config = admin.describe_configs([resource])[resource].result(timeout=30)
    assert config["retention.ms"].value == str(FEED_RETENTION_MS)

    again = run_cli("contracts", "topics", "--create", env=env)
    assert again.returncode == 0, again.stderr
    assert f"every topic exists on {bootstrap}" in again.stdout


def test_no_broker_is_one_line() -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    done = run_cli(
        "contracts", "topics", "--create", env={"FINLAKE_KAFKA__BOOTSTRAP_SERVERS": nowhere}
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"no Kafka broker answers at {nowhere}" in done.stderr
