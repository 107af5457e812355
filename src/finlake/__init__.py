"""finlake: a financial lakehouse on Kafka, Spark and Iceberg."""

__version__ = "0.1.0"
