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
