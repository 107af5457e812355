"""Alerts: pattern tick produced -> email received and -> Slack webhook received (end to end,
through the detection job and the alert service), p50/p99 over a few hundred alerts, against a
bare smtplib send (STARTTLS + AUTH) and a bare webhook POST to the same receivers, measured in the
same run. Goal: p99 <= 1 s (the issue's "with a 1 s trigger"; ``--trigger 1`` measures that).

Starts its own stack (Kafka + Apicurio) in a temp home, a real SMTP server (aiosmtpd, STARTTLS +
AUTH) and a loopback webhook server in place of Slack, then:

1. **End to end.** ``finlake pipeline run alerts`` (local[2]; ``--trigger`` 0, the job's default,
   runs micro-batches back to back) and ``finlake alerts serve`` run as subprocesses, as users
   run them. Simulated ticks (``finlake.simulate``: every symbol ticks once per
   ``--tick-interval``, spread evenly over it, event time = wall time) go to a fresh market-data
   topic; after ``--warmup`` seconds of them (the detection job's first
   seconds are its JIT's), the simulator's pattern injection makes each of ``--alerts`` symbols
   cross above one rule's level once, ``--pattern-rate`` per second. Each pattern tick is
   timestamped when it is produced; its alert is matched by symbol (the alerts topic) and event id
   (the email's X-Finlake-Event-Ids header, the Slack message's context block). The breakdown:
   tick -> evaluated (the event's ``fired_at``, set in the stateful step), -> on the alerts topic
   (the record's Kafka create time), -> received; and the detection query's micro-batches per
   phase (``finlake_pipeline_microbatch_phase_seconds``).
2. **Service only.** Alert events produced straight to a topic (``fired_at`` = produce time) at
   ``--service-rate`` per second while the alert service runs in-process.

    uv run --frozen python bench/bench_alerts.py [--alerts 300] [--pattern-rate 5]
        [--sections e2e,service]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from bench.alert_harness import (
    TickProducer,
    alive,
    arrivals,
    finlake,
    line,
    pace,
    peer,
    tick,
    verdict,
    wait_for,
    watching,
)
from bench.alert_service_only import ServiceOnly, report_service, service_only
from bench.processes import started
from bench.stream_phases import BatchStats, batch_stats, phase_totals
from finlake.config import FinlakeSettings
from finlake.contracts.alert_conditions import ConditionType
from finlake.contracts.topics import TopicSpec
from finlake.simulate import Injection, random_walk_ticks
from finlake.stack.kafka import create_topics
from finlake.stack.manager import Stack
from tests.conftest import free_port
from tests.integration.alert_detection import detection_env
from tests.integration.alerting_env import email_ids, make_topic, slack_ids
from tests.integration.conftest import stack_settings
from tests.receivers import SMTP_PASSWORD, SMTP_USER, SmtpServer, WebhookServer

LEVEL = 1000.0  # simulated prices start in [50, 500]: only an injected tick crosses a level
LEVEL_STEP = 100.0  # one rule per level; a symbol crosses them in turn, each rule firing once


def cross_rule(level: float) -> str:
    return f"""\
apiVersion: finlake.io/v1alpha1
kind: AlertRule
metadata: {{name: cross-{level:.0f}}}
spec:
  selector: {{pattern: ".*"}}
  condition: {{type: price_cross, direction: above, level: {level:.0f}}}
  fire: once
  severity: critical
  channels: [{{type: email, to: [ops@example.com]}}, {{type: slack}}]
  cooldown: 0s
"""


WARMUP = "WARMUP"


# -- 1: end to end -----------------------------------------------------------------------------


@dataclass
class EndToEnd:
    """Per-alert timings (s) of the end-to-end section."""

    alerts: int
    ticks: int
    seconds: float
    produced: dict[str, float]  # symbol -> pattern tick produced
    event_of: dict[str, str]  # symbol -> event id
    fired: dict[str, float]
    on_kafka: dict[str, float]
    email: dict[str, float]  # event id -> received
    slack: dict[str, float]
    duplicates: int
    unexpected: int  # events of a rule and symbol no pattern tick was for
    batches: BatchStats
    emails: int
    posts: int


def end_to_end(args: argparse.Namespace, root: Path, settings: FinlakeSettings,
               smtp: SmtpServer, slack: WebhookServer) -> EndToEnd:  # fmt: skip
    source, alerts_topic = "bench-ticks", "bench-alerts"
    create_topics(settings.kafka.bootstrap,
                  [TopicSpec(source, 3, 86_400_000, "symbol", "market_tick")])  # fmt: skip
    make_topic(settings, alerts_topic)
    rules = root / "rules.yaml"
    levels = [LEVEL + n * LEVEL_STEP for n in range(math.ceil(args.alerts / args.symbols))]
    rules.write_text("---\n".join(cross_rule(level) for level in levels))
    metrics_port = free_port()
    detection = detection_env(
        settings, root / "detection", source, alerts_topic,
        FINLAKE_DETECTION__TRIGGER_INTERVAL_S=str(args.trigger),
        FINLAKE_DETECTION__METRICS_PORT=str(metrics_port),
    )  # fmt: skip
    service = {
        **os.environ,
        "FINLAKE_HOME": str(root / "alerting"),
        "FINLAKE_KAFKA__PORT": str(settings.kafka.port),
        "FINLAKE_REGISTRY__PORT": str(settings.registry.port),
        "FINLAKE_ALERTING__TOPIC": alerts_topic,
        "FINLAKE_ALERTING__GROUP_ID": "bench-alerting",
        "FINLAKE_ALERTING__SMTP__PORT": str(smtp.port),
        "FINLAKE_ALERTING__SMTP__USERNAME": SMTP_USER,
        "FINLAKE_ALERTING__SMTP__PASSWORD": SMTP_PASSWORD,
        "FINLAKE_ALERTING__SMTP__CA_FILE": str(smtp.ca_file),
        "FINLAKE_ALERTING__SMTP__RATE_LIMIT": "1000/second",
        "FINLAKE_ALERTING__SLACK__WEBHOOK_URL": slack.url,
        "FINLAKE_ALERTING__SLACK__RATE_LIMIT": "1000/second",
    }
    symbols = [f"S{n:03d}" for n in range(args.symbols)]
    pattern_steps = math.ceil(args.alerts / (args.pattern_rate * args.tick_interval))
    lead, tail = 3, 3  # ticks below every level first; a few quiet intervals after the last cross
    patterns: dict[int, dict[str, str]] = {}
    injections = []
    for n in range(args.alerts):  # alert n: symbol n % symbols crosses its (n // symbols)th level
        symbol, level = symbols[n % args.symbols], levels[n // args.symbols]
        step = lead + n * pattern_steps // args.alerts  # a symbol's crossings in level order
        patterns.setdefault(step, {})[symbol] = f"cross-{level:.0f}/{symbol}"
        at = timedelta(seconds=step * args.tick_interval)
        injections.append(Injection(ConditionType.PRICE_CROSS, symbol, at, level))
    steps = lead + pattern_steps + tail
    interval = timedelta(seconds=args.tick_interval)
    ticks = random_walk_ticks(symbols, count=steps, seed=7, start=datetime.now(UTC),
                              interval=interval, injections=injections)  # fmt: skip
    producer = TickProducer(settings, source)
    detection_log, service_log = root / "detection.log", root / "alerting.log"
    with (
        watching(settings, alerts_topic) as seen,
        started(finlake("pipeline", "run", "alerts", "--rules", str(rules)), detection,
                detection_log) as job,
        started(finlake("alerts", "serve", "--rules", str(rules), "--port", str(free_port())),
                service, service_log) as server,
    ):  # fmt: skip
        guards = (alive(job, detection_log, "the detection job"),
                  alive(server, service_log, "the alert service"))  # fmt: skip
        # Warm-up: the JVM, the Python workers, the state store, both channels' connections.
        producer.send(tick(WARMUP, LEVEL * 0.9))
        producer.send(tick(WARMUP, LEVEL * 1.01))
        producer.flush()
        print("e2e: waiting for the detection job and the alert service (warm-up alert) ...")
        began = time.monotonic()
        wait_for(lambda: bool(smtp.messages()) and bool(slack.bodies()), 600, "the warm-up alert",
                 *guards)  # fmt: skip
        print(
            f"e2e: warm-up alert delivered after {time.monotonic() - began:.0f} s; "
            f"{args.alerts} crossings over {steps * args.tick_interval:.0f} s, "
            f"{len(symbols)} symbols, {len(symbols) / args.tick_interval:.0f} ticks/s"
        )
        if args.warmup > 0:  # steady state: a freshly started JVM compiles its hot paths first
            warm = math.ceil(args.warmup / args.tick_interval)
            quiet = random_walk_ticks(symbols, count=warm, seed=3, start=datetime.now(UTC),
                                      interval=interval)  # fmt: skip
            pace(quiet, producer, len(symbols), warm, args.tick_interval, {})
        warm_mails, warm_posts = len(smtp.messages()), len(slack.bodies())
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        before = phase_totals(metrics_url, "alert-detection")
        began = time.monotonic()
        produced = pace(ticks, producer, len(symbols), steps, args.tick_interval, patterns)
        seconds = time.monotonic() - began

        def complete() -> bool:
            with seen.lock:
                ids = {seen.by_key[k][0] for k in produced if k in seen.by_key}
            if len(ids) < len(produced):
                return False
            return ids <= set(email_ids(smtp.messages())) and ids <= set(slack_ids(slack.bodies()))

        wait_for(complete, 600, "every alert to be delivered", *guards)
        time.sleep(2 * max(args.trigger, 1.0))  # duplicates, if any, would show up now
        batches = batch_stats(before, phase_totals(metrics_url, "alert-detection"))
    with seen.lock:
        event_of = {k: seen.by_key[k][0] for k in produced}
        duplicates = sum(len(ids) - 1 for ids in seen.by_key.values())
        unexpected = len(set(seen.by_key) - set(produced) - {f"cross-{LEVEL:.0f}/{WARMUP}"})
        fired = {k: seen.events[event_of[k]].fired_at.timestamp() for k in produced}
        on_kafka = {k: seen.created[event_of[k]] for k in produced}
    return EndToEnd(
        alerts=args.alerts, ticks=steps * len(symbols), seconds=seconds, produced=produced,
        event_of=event_of, fired=fired, on_kafka=on_kafka,
        email=arrivals(smtp.received.snapshot(), lambda items: email_ids([m for _, m in items])),
        slack=arrivals(slack.received.snapshot(), slack_ids), duplicates=duplicates,
        unexpected=unexpected,
        batches=batches, emails=len(smtp.messages()) - warm_mails,
        posts=len(slack.bodies()) - warm_posts,
    )  # fmt: skip


def report_end_to_end(e2e: EndToEnd, mail_peer: list[float], hook_peer: list[float],
                      args: argparse.Namespace) -> bool:  # fmt: skip
    symbols = sorted(e2e.produced)  # "rule/symbol" keys
    email = [e2e.email[e2e.event_of[s]] - e2e.produced[s] for s in symbols]
    posts = [e2e.slack[e2e.event_of[s]] - e2e.produced[s] for s in symbols]
    batches = e2e.batches
    whole = batches.mean_s.get("triggerExecution", 0.0)
    phases = ", ".join(f"{phase} {seconds * 1000:.0f}" for phase, seconds in
                       sorted(batches.mean_s.items()) if phase != "triggerExecution")  # fmt: skip
    print(f"\n== 1. end to end: pattern tick -> detection job ({args.trigger:g} s trigger, "
          f"local[2]) -> alert service -> receivers ==")  # fmt: skip
    print(
        f"{e2e.alerts} alerts from {e2e.ticks} ticks in {e2e.seconds:.0f} s "
        f"({e2e.ticks / e2e.seconds:.0f} ticks/s, {args.pattern_rate:g} crossings/s) -> "
        f"{e2e.emails} emails, {e2e.posts} Slack messages; duplicate events: {e2e.duplicates}, "
        f"unexpected: {e2e.unexpected}"
    )
    print(f"detection micro-batches: {batches.count}, mean {whole * 1000:.0f} ms "
          f"({phases} ms), {batches.slow:.0%} longer than 1 s")  # fmt: skip
    print(line("tick -> email received:", email))
    print(line("tick -> slack received:", posts))
    print("breakdown:")
    print(
        line("  tick -> evaluated (fired_at):", [e2e.fired[s] - e2e.produced[s] for s in symbols])
    )
    print(
        line("  evaluated -> on alerts topic:", [e2e.on_kafka[s] - e2e.fired[s] for s in symbols])
    )
    print(line("  tick -> on alerts topic:", [e2e.on_kafka[s] - e2e.produced[s] for s in symbols]))
    print(line("  on alerts topic -> email:",
               [e2e.email[e2e.event_of[s]] - e2e.on_kafka[s] for s in symbols]))  # fmt: skip
    print(line("  on alerts topic -> slack:",
               [e2e.slack[e2e.event_of[s]] - e2e.on_kafka[s] for s in symbols]))  # fmt: skip
    return verdict(email, posts, mail_peer, hook_peer)


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=300, help="alerts per section")
    parser.add_argument(
        "--symbols",
        type=int,
        default=50,
        help="end to end: symbols (each crosses alerts/symbols levels)",
    )
    parser.add_argument("--pattern-rate", type=float, default=5.0,
                        help="end to end: pattern ticks (crossings) per second")  # fmt: skip
    parser.add_argument("--tick-interval", type=float, default=1.0,
                        help="end to end: each symbol ticks once per so many seconds")  # fmt: skip
    parser.add_argument("--trigger", type=float, default=0.0,
                        help="detection trigger (s); 0: back to back (default)")  # fmt: skip
    parser.add_argument("--warmup", type=float, default=20.0,
                        help="end to end: seconds of ticks before the patterns")  # fmt: skip
    parser.add_argument("--service-rate", type=float, default=50.0,
                        help="service only: alerts per second")  # fmt: skip
    parser.add_argument("--sections", default="e2e,service", help="e2e, service or both")
    args = parser.parse_args()
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    if not sections or sections - {"e2e", "service"}:
        parser.error("--sections takes e2e, service or e2e,service")
    e2e: EndToEnd | None = None
    alone: ServiceOnly | None = None
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp, ExitStack() as cleanup:
        root = Path(tmp)
        stack = Stack(stack_settings(root / "stack"))
        cleanup.callback(stack.down)
        smtp = SmtpServer(free_port(), root).start()
        cleanup.callback(smtp.stop)
        slack = WebhookServer(free_port()).start()
        cleanup.callback(slack.stop)
        stack.up()
        if "e2e" in sections:
            e2e = end_to_end(args, root, stack.settings, smtp, slack)
        if "service" in sections:
            alone = service_only(args, root, stack.settings, smtp, slack)
        mail_peer, hook_peer = peer(smtp, slack, min(args.alerts, 200))
    print(f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    print(line("peer: bare smtplib send:", mail_peer))
    print(line("peer: bare webhook POST:", hook_peer))
    if e2e is not None:
        report_end_to_end(e2e, mail_peer, hook_peer, args)
    if alone is not None:
        report_service(alone, mail_peer, hook_peer, args)


if __name__ == "__main__":
    main()
