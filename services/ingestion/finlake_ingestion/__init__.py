"""finlake ingestion service: market data sources published to Kafka in the Avro contract."""
