"""Data contracts: Avro schemas (source of truth), their pydantic models, serialization, topics."""
