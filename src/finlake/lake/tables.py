"""Every Iceberg table of the lake (market, transactions, alerts): one spec drives Spark DDL, tests
and the query layer."""

from __future__ import annotations

from finlake.lake.table_spec import Column, TableSpec

_KAFKA = (
    Column("kafka_partition", "int", "Kafka partition the record was read from."),
    Column("kafka_offset", "bigint", "Offset of the record in its partition."),
)
_TICK = (
    Column("symbol", "string", "Instrument ticker."),
    Column("timestamp", "timestamp", "Event time of the tick, UTC."),
)
_SOURCE = (
    Column("currency", "string", "ISO 4217 price currency, if known."),
    Column("exchange", "string", "Venue (MIC where known)."),
    Column("source", "string", "Ingestion source: yahoo, replay or simulate."),
)
_INGEST = Column("ingest_ts", "timestamp", "When the pipeline read the record from Kafka, UTC.")

MARKET_RAW = TableSpec(
    "market.raw",
    "market/raw",
    (
        *_TICK,
        Column("price", "double", "Price as the source sent it."),
        Column("volume", "bigint", "Volume as the source sent it."),
        *_SOURCE,
        Column("produced_at", "timestamp", "When the producer published the record, UTC."),
        Column("kafka_topic", "string", "Topic the record was read from."),
        *_KAFKA,
        Column("kafka_key", "string", "Record key (the symbol)."),
        Column("kafka_timestamp", "timestamp", "Kafka record timestamp, UTC."),
        Column("schema_id", "int", "Registry id of the writer schema."),
        _INGEST,
        Column(
            "headers",
            "array<struct<key:string,value:string>>",
            "Kafka record headers as text, in order: what the contract has no field for, e.g. a "
            "replay file's extra columns; null when the record has none.",
        ),
    ),
    "days(timestamp)",
    "Bronze: every decoded market-data record as-is, plus Kafka coordinates.",
    append_only=True,
)
MARKET_DEAD_LETTER = TableSpec(
    "market.dead_letter",
    "market/dead_letter",
    (
        Column("kafka_topic", "string", "Topic the record was read from."),
        *_KAFKA,
        Column("kafka_key", "string", "Record key, if any."),
        Column("kafka_timestamp", "timestamp", "Kafka record timestamp, UTC."),
        Column("value", "binary", "The undecodable payload, byte for byte."),
        Column("error", "string", "Why the payload could not be decoded."),
        _INGEST,
    ),
    "days(ingest_ts)",
    "Records of market-data that are not a decodable MarketTick.",
    append_only=True,
)
MARKET_CLEANED = TableSpec(
    "market.cleaned",
    "market/cleaned",
    (
        *_TICK,
        Column("price", "decimal(10,2)", "Price, two decimals."),
        Column("volume", "bigint", "Shares traded."),
        *_SOURCE,
        *_KAFKA,
        _INGEST,
    ),
    "days(timestamp)",
    "Silver: validated ticks, one per (symbol, timestamp).",
    append_only=True,
)
MARKET_QUARANTINE = TableSpec(
    "market.quarantine",
    "market/quarantine",
    (
        *_TICK,
        Column("price", "double", "Price as the source sent it."),
        Column("volume", "bigint", "Volume as the source sent it."),
        *_SOURCE,
        *_KAFKA,
        _INGEST,
        Column("rule", "string", "The expectation that failed (or late)."),
        Column("detail", "string", "What the rule checks."),
        Column("quarantined_at", "timestamp", "When the row was quarantined, UTC."),
    ),
    "days(timestamp)",
    "Ticks that failed a silver expectation, with the rule.",
    append_only=True,
)


def _bars(identifier: str, location: str, width: str) -> TableSpec:
    money = "decimal(10,2)"
    return TableSpec(
        identifier,
        location,
        (
            Column("symbol", "string", "Instrument ticker."),
            Column("window_start", "timestamp", f"Start of the {width} window, UTC, inclusive."),
            Column("window_end", "timestamp", f"End of the {width} window, UTC, exclusive."),
            Column("open", money, "Price of the earliest tick in the window (event time)."),
            Column("high", money, "Highest price in the window."),
            Column("low", money, "Lowest price in the window."),
            Column("close", money, "Price of the latest tick in the window (event time)."),
            Column("volume", "bigint", "Sum of tick volumes."),
            Column("trade_count", "bigint", "Number of ticks."),
            Column("vwap", "decimal(18,6)", "Volume-weighted average price."),
            Column("updated_at", "timestamp", "When the bar was last recomputed, UTC."),
        ),
        "days(window_start)",
        f"Gold: {width} OHLCV bars per symbol.",
        # One symbol's day is a few row groups of its day's file (bench/bench_query_api.py).
        sort_by=("symbol", "window_start"),
        row_group_bytes=256 << 10,
    )


MARKET_OHLC_1M = _bars("market.ohlc_1m", "market/metrics/ohlc_1m", "1-minute")
MARKET_OHLC_1H = _bars("market.ohlc_1h", "market/metrics/ohlc_1h", "1-hour")
MARKET_RUNS = TableSpec(
    "market.pipeline_runs",
    "market/pipeline_runs",
    (
        Column("batch_key", "string", "Checkpoint id and micro-batch id."),
        Column("batch_id", "bigint", "Micro-batch id."),
        Column("watermark", "timestamp", "Max event time so far minus the allowed lateness."),
        Column("max_event_time", "timestamp", "Latest event time that passed the checks so far."),
        Column(
            "partition_max_event_time",
            "map<int,timestamp>",
            "Per Kafka partition, the latest event time seen so far (the watermark and lag).",
        ),
        Column(
            "symbol_max_event_time",
            "map<string,timestamp>",
            "Per symbol, the latest event time that passed the checks so far (drives lateness).",
        ),
        Column("rows_in", "bigint", "Kafka records in the batch."),
        Column("bronze_rows", "bigint", "Rows appended to bronze."),
        Column("dead_letter_rows", "bigint", "Undecodable records."),
        Column("silver_rows", "bigint", "Rows appended to silver."),
        Column("duplicate_rows", "bigint", "Rows dropped as duplicates of (symbol, timestamp)."),
        Column("dropped_rows", "bigint", "Rows dropped by expectations with action drop."),
        Column("quarantined_rows", "bigint", "Rows quarantined."),
        Column("quarantined_by_rule", "map<string,bigint>", "Quarantined rows per rule."),
        Column("gold_1m_rows", "bigint", "1-minute bars written."),
        Column("gold_1h_rows", "bigint", "1-hour bars written."),
        Column("duration_s", "double", "Batch duration in seconds."),
        Column("kafka_topic", "string", "Topic the batch read."),
        Column(
            "next_offsets",
            "map<int,bigint>",
            "Per Kafka partition the batch read, the offset after its last record: where a "
            "stream whose checkpoint was lost resumes.",
        ),
        Column("committed_at", "timestamp", "When the batch finished, UTC."),
    ),
    None,
    "One row per micro-batch of the market pipeline: counts and freshness.",
)
MARKET_TABLES = (
    MARKET_RAW,
    MARKET_DEAD_LETTER,
    MARKET_CLEANED,
    MARKET_QUARANTINE,
    MARKET_OHLC_1M,
    MARKET_OHLC_1H,
    MARKET_RUNS,
)

# --- Transactions flow (DESIGN.md flow 2) -------------------------------------------------------

_TRANSACTION_LINEAGE = (
    Column("upload_id", "string", "Upload the row arrived in (see transactions.uploads)."),
    Column("row_number", "bigint", "1-based number of the record in its file, header excluded."),
    Column("received_at", "timestamp", "When the upload was received (bronze commit), UTC."),
)
_TRANSACTION_TEXT = (
    Column("transaction_id", "string", "transaction_id exactly as uploaded."),
    Column("account_id", "string", "account_id exactly as uploaded."),
    Column("card_id", "string", "card_id exactly as uploaded (null if the file has no column)."),
    Column("timestamp", "string", "timestamp exactly as uploaded (ISO 8601 expected)."),
    Column("amount", "string", "amount exactly as uploaded (decimal text expected)."),
    Column("currency", "string", "currency exactly as uploaded."),
    Column("merchant", "string", "merchant exactly as uploaded."),
    Column("merchant_category", "string", "merchant_category exactly as uploaded."),
    Column("country", "string", "country exactly as uploaded."),
    Column("channel", "string", "channel exactly as uploaded."),
    Column("entry_mode", "string", "entry_mode exactly as uploaded (null if no column)."),
    Column("status", "string", "status exactly as uploaded (null if no column)."),
    Column("is_fraud", "string", "is_fraud exactly as uploaded (null if no column)."),
)
_UPLOAD_PROBLEM = (
    Column(
        "upload_issue",
        "string",
        "Why the record could not be mapped cleanly at upload (wrong field count, bytes not "
        "valid in the encoding); null for a clean record. The batch quarantines such rows.",
    ),
    Column(
        "raw_record",
        "string",
        "The record's fields joined by the file's delimiter when they could not be mapped to "
        "columns (wrong field count); null otherwise.",
    ),
)

TRANSACTIONS_RAW = TableSpec(
    "transactions.raw",
    "transactions/raw",
    (
        Column("upload_id", "string", "Upload the row arrived in (see transactions.uploads)."),
        Column("file_name", "string", "Name of the uploaded file."),
        Column(
            "row_number", "bigint", "1-based number of the record in its file, header excluded."
        ),
        Column("received_at", "timestamp", "When the upload was received, UTC."),
        *_TRANSACTION_TEXT,
        *_UPLOAD_PROBLEM,
    ),
    # Bronze rows are text as uploaded (the event time may not even parse): partitioned by the
    # day they were received, which is also what the hourly batch reads incrementally.
    "days(received_at)",
    "Bronze: every uploaded transaction record as-is (text), with upload id, file and row number.",
    append_only=True,
)
TRANSACTIONS_UPLOADS = TableSpec(
    "transactions.uploads",
    "transactions/uploads",
    (
        Column("upload_id", "string", "Id of the upload."),
        Column("content_sha256", "string", "SHA-256 of the file's bytes (idempotency key)."),
        Column("file_name", "string", "Name of the uploaded file."),
        Column("size_bytes", "bigint", "Size of the file in bytes."),
        Column("encoding", "string", "Text encoding the file was read with."),
        Column("delimiter", "string", "Field delimiter the file was read with."),
        Column("rows_total", "bigint", "Records written to transactions.raw."),
        Column(
            "rows_flagged", "bigint", "Records with an upload_issue (quarantined by the batch)."
        ),
        Column("received_at", "timestamp", "When the upload was received, UTC."),
    ),
    None,
    "One row per accepted upload; an upload whose content_sha256 is here is a no-op.",
    append_only=True,
)
TRANSACTIONS_VALIDATED = TableSpec(
    "transactions.validated",
    "transactions/validated",
    (
        Column("transaction_id", "string", "Unique transaction id (one row per id)."),
        Column("account_id", "string", "Account (cardholder) the transaction is booked on."),
        Column("card_id", "string", "Card token, null for non-card payments."),
        Column("timestamp", "timestamp", "When the transaction was authorised, UTC."),
        Column("amount", "decimal(18,2)", "Amount in currency units; negative for refunds."),
        Column("currency", "string", "ISO 4217 alphabetic code, upper case."),
        Column("merchant", "string", "Merchant name or id, trimmed."),
        Column("merchant_category", "string", "ISO 18245 MCC, four digits."),
        Column("country", "string", "ISO 3166-1 alpha-2 merchant country, upper case."),
        Column("channel", "string", "pos, ecommerce, atm, transfer or contactless."),
        Column("entry_mode", "string", "chip, swipe, contactless, manual, token or null."),
        Column("status", "string", "approved, declined or null."),
        Column("is_fraud", "boolean", "Fraud label: true, false or null (unknown)."),
        *_TRANSACTION_LINEAGE,
        Column("validated_at", "timestamp", "When the batch validated the row, UTC."),
    ),
    "days(timestamp)",
    "Silver: typed, validated transactions, one per transaction_id (first received wins).",
    append_only=True,
)
TRANSACTIONS_QUARANTINE = TableSpec(
    "transactions.quarantine",
    "transactions/quarantine",
    (
        Column("upload_id", "string", "Upload the row arrived in."),
        Column("file_name", "string", "Name of the uploaded file."),
        Column(
            "row_number", "bigint", "1-based number of the record in its file, header excluded."
        ),
        Column("received_at", "timestamp", "When the upload was received, UTC."),
        *_TRANSACTION_TEXT,
        *_UPLOAD_PROBLEM,
        Column("event_date", "date", "UTC date of the timestamp if it parses, else received date."),
        Column("rule", "string", "The first expectation the row failed."),
        Column("detail", "string", "What the rule checks."),
        Column("quarantined_at", "timestamp", "When the row was quarantined, UTC."),
    ),
    "event_date",
    "Transaction rows that failed a silver expectation, as uploaded, with the rule.",
    append_only=True,
)
TRANSACTIONS_SUMMARY = TableSpec(
    "transactions.summary",
    "transactions/summary",
    (
        Column("account_id", "string", "Account."),
        Column("granularity", "string", "hour or day."),
        Column("window_start", "timestamp", "Start of the hour or day, UTC, inclusive."),
        Column("window_end", "timestamp", "End of the hour or day, UTC, exclusive."),
        Column("currency", "string", "Currency of the amounts (sums never mix currencies)."),
        Column("transaction_count", "bigint", "Validated transactions in the window."),
        Column("amount_sum", "decimal(28,2)", "Sum of amounts (refunds negative)."),
        Column("amount_max", "decimal(18,2)", "Largest amount."),
        Column("declined_count", "bigint", "Transactions with status declined."),
        Column("count_by_category", "map<string,bigint>", "Transactions per merchant category."),
        Column("amount_by_category", "map<string,decimal(28,2)>", "Amount per merchant category."),
        Column("count_by_channel", "map<string,bigint>", "Transactions per channel."),
        Column("amount_by_channel", "map<string,decimal(28,2)>", "Amount per channel."),
        Column("updated_at", "timestamp", "When the window was last recomputed, UTC."),
    ),
    "days(window_start)",
    "Gold: per account, currency and hour or day: counts and sums, by category and channel.",
    # Rewritten a day partition at a time by the batch: no shuffle by day before the write.
    append_only=True,
)
TRANSACTIONS_BATCH_RUNS = TableSpec(
    "transactions.batch_runs",
    "transactions/batch_runs",
    (
        Column("run_id", "string", "Id of the batch run."),
        Column("mode", "string", "incremental (new bronze snapshots) or hour (a re-run)."),
        Column("bronze_from_snapshot", "bigint", "Bronze snapshot read after (exclusive); null."),
        Column("bronze_to_snapshot", "bigint", "Bronze snapshot read up to (inclusive)."),
        Column("hour_start", "timestamp", "For an hour re-run: the receive hour, UTC."),
        Column("rows_in", "bigint", "Bronze rows read."),
        Column("validated_rows", "bigint", "Rows newly written to transactions.validated."),
        Column("duplicate_rows", "bigint", "Rows quarantined as duplicates of a transaction_id."),
        Column("quarantined_rows", "bigint", "Rows newly written to transactions.quarantine."),
        Column("quarantined_by_rule", "map<string,bigint>", "Rows read that failed, per rule."),
        Column("summary_rows", "bigint", "Summary windows recomputed."),
        Column("duration_s", "double", "Run duration in seconds."),
        Column("committed_at", "timestamp", "When the run finished, UTC."),
    ),
    None,
    "One row per successful transactions batch run: what it read and wrote.",
)
TRANSACTIONS_TABLES = (
    TRANSACTIONS_RAW,
    TRANSACTIONS_UPLOADS,
    TRANSACTIONS_VALIDATED,
    TRANSACTIONS_QUARANTINE,
    TRANSACTIONS_SUMMARY,
    TRANSACTIONS_BATCH_RUNS,
)
TRANSACTIONS_PREDICTIONS = TableSpec(
    "transactions.predictions",
    "transactions/predictions",
    (
        Column("transaction_id", "string", "The scored transaction (transactions.validated)."),
        Column("account_id", "string", "Account of the transaction."),
        Column("timestamp", "timestamp", "When the transaction was authorised, UTC."),
        Column("fraud_score", "double", "Model probability that the transaction is fraud."),
        Column("is_fraud_predicted", "boolean", "fraud_score at or above the threshold."),
        Column("threshold", "double", "Threshold the prediction used."),
        Column("model_name", "string", "Registered MLflow model that scored the row."),
        Column("model_version", "string", "Version of that model."),
        Column("scored_at", "timestamp", "When the row was scored, UTC."),
    ),
    "days(timestamp)",
    "Fraud scores of validated transactions, one row per transaction and model version.",
    append_only=True,
)

# --- Alerts flow (DESIGN.md flow 3) ---------------------------------------------------------------

ALERTS_EVENTS = TableSpec(
    "alerts.events",
    "alerts/events",
    (
        Column("event_id", "string", "Deterministic id: rule, rule version, symbol, window."),
        Column("rule", "string", "Name of the AlertRule that fired."),
        Column("kind", "string", "price_cross, percent_move, return_zscore, volume_surge or gap."),
        Column("symbol", "string", "Instrument ticker."),
        Column("severity", "string", "info, warning or critical."),
        Column("window_start", "timestamp", "Start of the bar the rule fired in, UTC."),
        Column("window_end", "timestamp", "End (exclusive) of that bar, UTC."),
        Column("fired_at", "timestamp", "When the detector first emitted the event, UTC."),
        Column("value", "double", "Observed value, in the rule's unit."),
        Column("threshold", "double", "The rule's threshold, in the same unit."),
        Column("message", "string", "One sentence describing the firing."),
        Column("labels", "map<string,string>", "The rule's labels."),
    ),
    "days(window_start)",
    "Every alert event the detector emitted, once per event_id (the history of topic alerts).",
)
ALERTS_TABLES = (ALERTS_EVENTS,)
