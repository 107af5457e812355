from datetime import timedelta

import pytest
from pydantic import ValidationError

from finlake.contracts.market_feed import MarketFeedSpec, ingestion_env, parse_symbol_list
from finlake.contracts.medallion_pipeline import MedallionPipelineSpec, stream_env

LAYERS = {
    "bronze": {"table": "market.raw"},
    "silver": {"table": "market.cleaned", "quarantineTable": "market.quarantine"},
    "gold": {"tables": ["market.ohlc_1m", "market.ohlc_1h"]},
}


def test_market_feed_reads_camel_case_and_durations() -> None:
    feed = MarketFeedSpec.model_validate(
        {"source": "yahoo", "symbols": ["AAPL"], "pollInterval": "15s", "lookback": "2h"}
    )
    assert feed.poll_interval == timedelta(seconds=15)
    env = ingestion_env(feed)
    assert env["FINLAKE_YAHOO__POLL_INTERVAL_S"] == "15"
    assert env["FINLAKE_YAHOO__LOOKBACK_S"] == "7200"
    assert env["FINLAKE_YAHOO__SYMBOLS"] == "AAPL"
    assert env["FINLAKE_INGESTION__SOURCE"] == "yahoo"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"source": "yahoo"}, "exactly one of symbols or symbolsFrom"),
        (
            {"source": "yahoo", "symbols": ["A"], "symbolsFrom": {"name": "x"}},
            "exactly one of symbols or symbolsFrom",
        ),
        ({"source": "replay"}, "replay is required"),
        ({"source": "simulate", "replay": {"file": "/x.csv"}}, "only allowed there"),
        (
            {"source": "yahoo", "symbols": ["A"], "producer": {"replicas": 2}},
            "at most one producer",
        ),
        ({"source": "yahoo", "symbols": ["aapl"]}, "String should match pattern"),
        ({"source": "yahoo", "symbols": ["A"], "pollInterval": "soon"}, "not a duration"),
        ({"source": "kafka"}, "Input should be"),
        (
            {"source": "simulate", "topic": "ticks", "schemaSubject": "market-data-value"},
            "schemaSubject must be the topic's name followed by -value",
        ),
    ],
)
def test_market_feed_refuses(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MarketFeedSpec.model_validate(spec)


def test_symbol_list_accepts_commas_newlines_and_comments() -> None:
    assert parse_symbol_list("aapl, MSFT # big\n\nJPM,MSFT\n# all\n") == ("AAPL", "MSFT", "JPM")


def test_pipeline_defaults_follow_the_design() -> None:
    pipeline = MedallionPipelineSpec.model_validate({"layers": LAYERS})
    assert pipeline.batch.time_zone == "UTC"
    assert pipeline.trigger == timedelta(seconds=10)
    assert [e.name for e in pipeline.expectations][:2] == ["symbol_present", "price_not_null"]
    assert stream_env(pipeline)["FINLAKE_MARKET__ALLOWED_LATENESS_S"] == "600"


def test_pipeline_refuses_a_table_used_twice_naming_the_field() -> None:
    layers = LAYERS | {"gold": {"tables": ["market.ohlc_1m", "market.raw"]}}
    with pytest.raises(ValidationError, match=r"layers.gold.tables\[1\]: table market.raw"):
        MedallionPipelineSpec.model_validate({"layers": layers})


def test_pipeline_refuses_duplicate_expectations() -> None:
    rule = {"name": "price_positive", "condition": "price > 0"}
    with pytest.raises(ValidationError, match="duplicate expectation names: price_positive"):
        MedallionPipelineSpec.model_validate({"layers": LAYERS, "expectations": [rule, rule]})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch", {"timeZone": "New York"}),
        ("batch", {"schedule": "hourly"}),
        ("spark", {"version": "3.5.1"}),
        ("freshness", {"maxQuarantineRatio": 2}),
    ],
)
def test_pipeline_refuses_bad_values(field: str, value: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match=field):
        MedallionPipelineSpec.model_validate({"layers": LAYERS, field: value})


def test_a_duration_the_crd_pattern_lets_through_is_degraded_not_a_crash() -> None:
    # "9999999999d" matches the CRD's duration pattern; it used to raise OverflowError out of the
    # handler (kopf retried it every 5 s with a traceback) instead of an InvalidSpec condition.
    from finlake_operator.reconcile import Degradation, parse_spec

    spec = {"source": "yahoo", "symbols": ["A"], "pollInterval": "9999999999d"}
    with pytest.raises(Degradation) as raised:
        parse_spec(MarketFeedSpec, spec)
    assert "spec.pollInterval: '9999999999d' is longer than 3660d" in str(raised.value)
    assert raised.value.retry is False


def test_a_transactions_pipeline_defaults_to_its_batch_s_tables_and_a_batch_lag() -> None:
    from finlake.contracts.medallion_pipeline import PipelineFlow
    from finlake.lake.tables import (
        TRANSACTIONS_QUARANTINE,
        TRANSACTIONS_RAW,
        TRANSACTIONS_SUMMARY,
        TRANSACTIONS_VALIDATED,
    )

    pipeline = MedallionPipelineSpec.model_validate({"flow": "transactions"})
    assert pipeline.flow is PipelineFlow.TRANSACTIONS
    assert [table for _, table in pipeline.layers.named_tables()] == [
        TRANSACTIONS_RAW.identifier,
        TRANSACTIONS_VALIDATED.identifier,
        TRANSACTIONS_QUARANTINE.identifier,
        TRANSACTIONS_SUMMARY.identifier,
    ]
    assert pipeline.freshness.max_lag == timedelta(minutes=90)
    # Its own objective wins; a market pipeline keeps the stream's default.
    own = MedallionPipelineSpec.model_validate(
        {"flow": "transactions", "freshness": {"maxLag": "3h", "maxQuarantineRatio": 0.1}}
    )
    assert (own.freshness.max_lag, own.freshness.max_quarantine_ratio) == (timedelta(hours=3), 0.1)
    market = MedallionPipelineSpec.model_validate({"layers": LAYERS})
    assert market.freshness.max_lag == timedelta(minutes=5)
    # What the spec ConfigMap holds: no stream field, and it loads back to the same spec.
    wired = pipeline.wire()
    assert not {
        "sourceTopic",
        "trigger",
        "watermark",
        "maxOffsetsPerTrigger",
        "expectations",
        "detection",
    } & set(wired)
    assert MedallionPipelineSpec.model_validate(wired) == pipeline
    assert {"sourceTopic", "trigger", "expectations", "detection"} <= set(market.wire())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sourceTopic", "transactions"),
        ("trigger", "10s"),
        ("watermark", "10m"),
        ("maxOffsetsPerTrigger", 10),
        ("expectations", []),
        ("detection", {"enabled": False}),
    ],
)
def test_a_transactions_pipeline_refuses_stream_fields(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=f"{field} is for a market pipeline's stream"):
        MedallionPipelineSpec.model_validate({"flow": "transactions", field: value})
    # The same field is fine on a market pipeline.
    MedallionPipelineSpec.model_validate({"layers": LAYERS, field: value})


def test_a_transactions_pipeline_has_no_stream_metrics_to_read() -> None:
    freshness = {"metricsUrl": "http://x:9100/metrics"}
    with pytest.raises(ValidationError, match=r"freshness\.metricsUrl reads a market pipeline"):
        MedallionPipelineSpec.model_validate({"flow": "transactions", "freshness": freshness})


def test_a_market_pipeline_still_needs_its_layers() -> None:
    with pytest.raises(ValidationError, match=r"layers\s+Field required"):
        MedallionPipelineSpec.model_validate({})
    with pytest.raises(ValidationError, match=r"layers\s+Field required"):
        MedallionPipelineSpec.model_validate({"flow": "market"})


def test_a_market_pipeline_detects_alerts_unless_told_not_to() -> None:
    from finlake.contracts.medallion_pipeline import detection_env

    pipeline = MedallionPipelineSpec.model_validate(
        {"layers": LAYERS, "sourceTopic": "ticks", "detection": {"statePartitions": 4}}
    )
    assert pipeline.detection.enabled is True
    assert detection_env(pipeline) == {
        # Its state is in the driver's checkpoint: its tasks run there, on the driver's cores.
        "FINLAKE_SPARK__MASTER": "local[1]",
        "FINLAKE_DETECTION__SOURCE_TOPIC": "ticks",
        "FINLAKE_DETECTION__ALERTS_TOPIC": "alerts",
        "FINLAKE_DETECTION__STATE_PARTITIONS": "4",
        # A first start evaluates ticks from then on, not the whole retained topic.
        "FINLAKE_DETECTION__STARTING_OFFSETS": "latest",
        "FINLAKE_DETECTION__METRICS_PORT": "9100",
        "FINLAKE_DETECTION__METRICS_HOST": "0.0.0.0",
    }
    with pytest.raises(ValidationError, match="statePartitions"):
        MedallionPipelineSpec.model_validate(
            {"layers": LAYERS, "detection": {"statePartitions": 0}}
        )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"batch": {"schedule": "61 * * * *"}},
            "spec.batch.schedule: cron '61 * * * *': minute 61 is out of range 0-59",
        ),
        (
            {"batch": {"timeZone": "Europe/Pari"}},
            "spec.batch.timeZone: 'Europe/Pari' is not an IANA time zone, e.g. UTC or Europe/Paris",
        ),
        (
            {"maintenance": {"schedule": "30 25 * * *"}},
            "spec.maintenance.schedule: cron '30 25 * * *': hour 25 is out of range 0-23",
        ),
        (
            {"maintenance": {"timeZone": "America/Nowhere"}},
            "spec.maintenance.timeZone: 'America/Nowhere' is not an IANA time zone",
        ),
        (
            {"batch": {"schedule": "0 0 * * 7"}},
            "day of week 7 is out of range 0-6 (Sunday is 0 or SUN)",
        ),
        ({"batch": {"schedule": "0 0 32 * *"}}, "day of month 32 is out of range 1-31"),
        ({"batch": {"schedule": "0 0 * 13 *"}}, "month 13 is out of range 1-12"),
        ({"batch": {"schedule": "*/0 * * * *"}}, "minute '*/0': the step after / must be"),
        ({"batch": {"schedule": "0 9-5 * * *"}}, "hour '9-5': the range starts after it ends"),
        ({"batch": {"schedule": "0 0 * * MON-FRY"}}, "day of week 'FRY' is not a number or a name"),
    ],
)
def test_a_schedule_the_spark_operator_would_not_parse_is_an_invalid_spec(
    spec: dict[str, object], message: str
) -> None:
    from finlake_operator.reconcile import Degradation, parse_spec

    with pytest.raises(Degradation) as raised:
        parse_spec(MedallionPipelineSpec, {"layers": LAYERS, **spec})
    assert message in raised.value.message
    assert raised.value.reason == "InvalidSpec"


@pytest.mark.parametrize(
    "schedule",
    ["5 * * * *", "*/15 0-23/2 1,15 JAN-jun mon-FRI", "5/10 * ? * *", "0 0 * * 0,6", "0 0 31 12 6"],
)
def test_every_cron_shape_the_spark_operator_parses_is_taken(schedule: str) -> None:
    pipeline = MedallionPipelineSpec.model_validate(
        {"layers": LAYERS, "batch": {"schedule": schedule}, "maintenance": {"schedule": schedule}}
    )
    assert pipeline.batch.schedule == pipeline.maintenance.schedule == schedule
